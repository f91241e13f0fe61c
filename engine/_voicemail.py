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

#: Limits of one message; boxes are named by flows and overflows, any safe name is accepted.
MAX_SECONDS = 180.0
SILENCE_SECONDS = 5.0
MIN_SECONDS = 1.0  # shorter than this is a hang-up at the beep, not a message


def _safe_box(box: str) -> str:
    cleaned = "".join(c for c in box if c.isalnum() or c in "-_.")[:64].strip(".")
    if not cleaned:
        raise ValueError(f"not a voicemail box name: {box!r}")
    return cleaned


class Voicemail:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.root = engine.config.data_dir / "voicemail"

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
        prompts = self.engine.prompts
        language = self.engine.config.media.language
        if greeting and prompts.has_prompt(greeting, language):
            await channel.play(interaction, prompt=greeting)  # type: ignore[union-attr]
        elif prompts.has_prompt(f"vm-greeting-{box}", language):
            await channel.play(interaction, prompt=f"vm-greeting-{box}")  # type: ignore[union-attr]
        else:
            await channel.play(interaction, text="Please leave a message after the tone.")  # type: ignore[union-attr]
        if prompts.has_prompt("beep", language):
            await channel.play(interaction, prompt="beep")  # type: ignore[union-attr]
        message_id = uuid.uuid4().hex[:12]
        path = self.root / box / f"{int(time.time())}-{message_id}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        seconds = await channel.record(  # type: ignore[union-attr]
            interaction, path, max_seconds=MAX_SECONDS, silence_seconds=SILENCE_SECONDS
        )
        if seconds < MIN_SECONDS:
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
                                New=waiting["n"] if waiting else 1, CallerIDNum=interaction.from_, Seconds=row["seconds"])
        await self._hang_up(channel, interaction, "voicemail")
        await self.engine.end_interaction(interaction, cause="voicemail")
        return row

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
