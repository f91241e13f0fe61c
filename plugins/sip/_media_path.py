"""The engine in the media path of SIP calls: one RTP endpoint per leg from ``engine.media``.

Each leg gets its own endpoint and SDP identity (:class:`LegMedia`); the engine answers with its own
address, so it can play prompts, hear DTMF (RFC 4733, in-band, or SIP INFO), bridge two legs packet by
packet and record them. :class:`CallMedia` holds a call's legs and its bridge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from .sansio import MediaSession, Negotiated

log = logging.getLogger("centralita.sip.media")

#: How often a playback's end is checked: one media frame.
_FRAME = 0.02


class LegMedia:
    """One leg's RTP endpoint and its offer/answer state."""

    def __init__(self, media: Any, host: str, *, dtmf: str = "auto",
                 on_digit: Callable[[str, int], None] | None = None, name: str = "") -> None:
        self.media = media
        self.on_digit = on_digit
        self.endpoint = media.allocate(telephone_event=101, dtmf=dtmf, on_dtmf=self._dtmf, name=name or None)
        self.session = MediaSession(host, self.endpoint.local_address[1])
        self.negotiated: Negotiated | None = None
        self.released = False

    def _dtmf(self, endpoint: Any, event: Any) -> None:
        if self.on_digit is not None and getattr(event.direction, "value", "Received") == "Received":
            self.on_digit(event.digit, event.duration_ms)

    def answer(self, remote_offer: bytes) -> bytes:
        """Answer the peer's SDP offer (raises ``SdpNegotiationError`` -> 488)."""
        answer, negotiated = self.session.answer(remote_offer)
        self._apply(negotiated)
        return answer.serialize()

    def offer(self) -> bytes:
        return self.session.make_offer().serialize()

    def accept_answer(self, remote_answer: bytes) -> None:
        self._apply(self.session.accept_answer(remote_answer))

    def _apply(self, negotiated: Negotiated) -> None:
        self.negotiated = negotiated
        if negotiated.remote_port and negotiated.remote_address not in ("0.0.0.0", "::"):
            self.endpoint.set_remote((negotiated.remote_address, negotiated.remote_port))
        self.endpoint.negotiate(codec=negotiated.codec.name, payload_type=negotiated.codec.payload_type,
                                telephone_event=negotiated.telephone_event_pt)

    def info_digit(self, digit: str, duration_ms: int) -> None:
        """A digit that came in a SIP INFO on this leg."""
        self.endpoint.receive_info_dtmf(digit, duration_ms)

    async def play(self, source: Any) -> None:
        """Play ``source`` to the peer and return when it has finished (cancel to stop it)."""
        self.endpoint.play(source)
        try:
            while self.endpoint.playing:
                await trio.sleep(_FRAME)
        finally:
            if self.endpoint.playing:
                self.endpoint.play(None)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.media.release(self.endpoint)


class CallMedia:
    """A call's legs and, once an agent answers, the bridge between them (and its recording)."""

    def __init__(self, media: Any) -> None:
        self.media = media
        self.caller: LegMedia | None = None
        self.agents: dict[Any, LegMedia] = {}  # agent SIP leg -> its media
        self.bridge: Any = None

    def connect(self, agent_leg: Any, *, record_to: Path | None = None, stereo: bool = True) -> None:
        """Bridge the caller with the agent leg's media; optionally start recording the bridge."""
        agent = self.agents.get(agent_leg)
        if self.caller is None or agent is None:
            return
        self.caller.endpoint.play(None)
        if self.bridge is not None:
            self.media.unbridge(self.bridge)
        self.bridge = self.media.bridge(self.caller.endpoint, agent.endpoint)
        if record_to is not None:
            record_to.parent.mkdir(parents=True, exist_ok=True)
            self.bridge.start_recording(record_to, stereo=stereo)

    def drop_agent(self, agent_leg: Any) -> None:
        media = self.agents.pop(agent_leg, None)
        if media is not None:
            if self.bridge is not None:
                self.media.unbridge(self.bridge)
                self.bridge = None
            media.release()

    def release(self) -> None:
        if self.bridge is not None:
            try:
                self.bridge.stop_recording()
            except Exception:
                log.exception("closing a recording failed")
            self.media.unbridge(self.bridge)
            self.bridge = None
        for media in [self.caller, *self.agents.values()]:
            if media is not None:
                media.release()
        self.agents.clear()


async def prompt_source(prompts: Any, tts: Any, *, prompt: str | None, text: str | None, language: str | None) -> Any:
    """The audio for an IVR ``play``: a prompt file by name, or speech synthesised from ``text``."""
    if prompt:
        return prompts.load(prompt, language).player()
    if text and tts is not None:
        return (await tts.synthesize(text, voice=language or "en")).player()
    return None
