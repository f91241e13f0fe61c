"""Voicemail: greeting, beep, record (bounded length, silence cut-off), store, notify, listen.

A flow's ``voicemail`` node (or a queue's overflow) hands the caller here. The message is a WAV file
in ``<data_dir>/voicemail/<box>/`` with a row in the store; an ``MessageWaiting`` event (Asterisk's
name) tells the console and any plugin (the email channel can mail it) that a box has news.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from ._config import VoicemailBoxSettings
from ._registry import Migration
from .abc import VoiceChannel

if TYPE_CHECKING:
    from ._engine import Engine
    from ._model import Interaction

log = logging.getLogger("centralita.voicemail")

MIGRATIONS = [
    Migration(
        "voicemail",
        1,
        """
        CREATE TABLE voicemail (
            id TEXT PRIMARY KEY, box TEXT NOT NULL, caller TEXT NOT NULL, caller_name TEXT NOT NULL,
            interaction TEXT NOT NULL, created REAL NOT NULL, seconds REAL NOT NULL, file TEXT NOT NULL,
            heard INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX voicemail_box ON voicemail(box, created);
        """,
    )
]

#: Boxes are named by flows and overflows and any safe name is accepted; a box without a ``[[voicemail]]``
#: entry gets these limits (120 s maximum, 5 s of silence ends it, under 1 s is a hang-up at the beep).
DEFAULT_BOX = VoicemailBoxSettings(name="default")


def _safe_box(box: str) -> str:
    cleaned = "".join(c for c in box if c.isalnum() or c in "-_.")[:64].strip(".")
    if not cleaned:
        raise ValueError(f"not a voicemail box name: {box!r}")
    return cleaned


class Voicemail:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.root = engine.config.data_dir / "voicemail"
        self.boxes = {b.name: b for b in getattr(engine.config, "voicemail", [])}
        self._warned_no_mail: set[str] = set()

    def box_settings(self, box: str) -> VoicemailBoxSettings:
        return self.boxes.get(box, DEFAULT_BOX)

    async def record(self, interaction: Interaction, box: str, *, greeting: str | None = None) -> dict[str, Any] | None:
        """Take a message for ``box`` from the caller of ``interaction``; None when nothing was said."""
        box = _safe_box(box)
        channel = self.engine.channels.get(interaction.channel)
        if getattr(type(channel), "record", None) in (None, VoiceChannel.record):
            # Say so before greeting the caller: a greeting with no recording after it misleads them.
            raise NotImplementedError(f"{type(channel).__name__} cannot record voicemail")
        try:
            await channel.answer(interaction)  # type: ignore[union-attr]
        except NotImplementedError:
            pass
        settings = self.box_settings(box)
        prompts = self.engine.prompts
        language = self.engine.config.media.language
        if greeting and prompts.has_prompt(greeting, language):
            play = {"prompt": greeting}
        elif prompts.has_prompt(f"vm-greeting-{box}", language):
            play = {"prompt": f"vm-greeting-{box}"}
        else:
            play = {"text": "Please leave a message after the tone."}
        await self._greet(channel, interaction, play, settings.skip_keys)
        if prompts.has_prompt("beep", language):
            await channel.play(interaction, prompt="beep")  # type: ignore[union-attr]
        message_id = uuid.uuid4().hex[:12]
        path = self.root / box / f"{int(time.time())}-{message_id}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        seconds = await channel.record(  # type: ignore[union-attr]
            interaction, path, max_seconds=settings.max_seconds, silence_seconds=settings.silence_seconds
        )
        if seconds < settings.min_seconds:
            path.unlink(missing_ok=True)
            log.info("voicemail for %s: caller left no message", box)
            await self._hang_up(channel, interaction, "voicemail-empty")
            await self.engine.end_interaction(interaction, cause="voicemail-empty")
            return None
        row = {"id": message_id, "box": box, "caller": interaction.from_, "caller_name": interaction.caller_name,
               "interaction": interaction.id, "created": time.time(), "seconds": round(seconds, 2),
               "file": str(path.relative_to(self.engine.config.data_dir))}
        assert self.engine.store is not None
        await self.engine.store.write(
            "INSERT INTO voicemail(id, box, caller, caller_name, interaction, created, seconds, file) "
            "VALUES (:id, :box, :caller, :caller_name, :interaction, :created, :seconds, :file)", row,
        )
        waiting = await self.engine.store.fetchone("SELECT count(*) AS n FROM voicemail WHERE box = ? AND heard = 0", (box,))
        self.engine.bus.publish("MessageWaiting", interaction=interaction.id, Mailbox=box, Waiting="yes",
                                New=waiting["n"] if waiting else 1, CallerIDNum=interaction.from_, Seconds=row["seconds"],
                                Message=message_id)
        self._note_unmailed(box, settings)
        await self._hang_up(channel, interaction, "voicemail")
        await self.engine.end_interaction(interaction, cause="voicemail")
        return row

    async def _greet(self, channel: Any, interaction: Interaction, play: dict[str, str], skip_keys: str) -> None:
        """Play the greeting; a key in ``skip_keys`` cuts it short (callers who know the drill go to the beep)."""
        if not skip_keys:
            await channel.play(interaction, **play)
            return
        async with self.engine.bus.subscribe(f"voicemail-greeting-{interaction.id}", buffer=64) as events, \
                trio.open_nursery() as nursery:

            async def skip_on_key() -> None:
                async for event in events:
                    if (event.event == "DTMFEnd" and event.interaction == interaction.id
                            and event.fields.get("Direction") == "Received"
                            and str(event.fields.get("Digit")) in skip_keys):
                        log.info("voicemail: caller skipped the greeting with %s", event.fields.get("Digit"))
                        nursery.cancel_scope.cancel()
                        return

            nursery.start_soon(skip_on_key)
            await channel.play(interaction, **play)
            nursery.cancel_scope.cancel()

    def _note_unmailed(self, box: str, settings: VoicemailBoxSettings) -> None:
        # Mailing is the email plugin's job (it listens for MessageWaiting); say once per box when a
        # configured address will get nothing because that plugin is absent or has no [email] section.
        if not settings.email or box in self._warned_no_mail:
            return
        mailer = self.engine.channels.get("email")
        if mailer is None or not getattr(mailer, "configured", False):
            self._warned_no_mail.add(box)
            log.warning("voicemail box %s has email = %r but the email plugin is not configured ([email] section): "
                        "new messages are announced by the MessageWaiting event only", box, settings.email)

    async def _hang_up(self, channel: Any, interaction: Interaction, cause: str) -> None:
        # The message is taken (or the caller went silent): release the line, as a voicemail system does,
        # rather than leave a caller on an answered call with nothing behind it.
        try:
            await channel.hangup(interaction, cause)
        except Exception:
            log.exception("voicemail: hanging up %s failed", interaction.id)

    async def list(self, box: str | None = None) -> list[dict[str, Any]]:
        assert self.engine.store is not None
        if box is None:
            return await self.engine.store.fetchall("SELECT * FROM voicemail ORDER BY created DESC")
        return await self.engine.store.fetchall("SELECT * FROM voicemail WHERE box = ? ORDER BY created DESC", (box,))

    async def audio(self, message_id: str) -> Path:
        """The WAV file of a message (marks it heard). KeyError when there is no such message."""
        assert self.engine.store is not None
        row = await self.engine.store.fetchone("SELECT file FROM voicemail WHERE id = ?", (message_id,))
        if row is None:
            raise KeyError(message_id)
        await self.engine.store.write("UPDATE voicemail SET heard = 1 WHERE id = ?", (message_id,))
        return self.engine.config.data_dir / row["file"]
