"""Anchoring calls on the engine's media framework (``engine.media``), when it is running.

A call the engine answers itself (an IVR) gets an RTP endpoint of the engine's: prompts are played on
it and RFC 4733 digits heard on it go to the engine (``dtmf_received``). When such a caller then
reaches an agent, the agent is offered a second endpoint of ours and the media framework bridges the
two (relaying packets when both speak G.711). Without a media framework, SDP simply passes between the
legs; every function here returns None then and the caller falls back to that.
"""

from __future__ import annotations

import logging
import random
import secrets
from typing import TYPE_CHECKING, Any

import trio

from .sansio import MediaSession, SdpNegotiationError

if TYPE_CHECKING:
    from ._channel import SipChannel

__all__ = ["MediaLeg", "media_engine"]

log = logging.getLogger("centralita.sip.media")
_random = random.Random(secrets.randbits(64))


def session_id() -> str:
    """An SDP o= session id: unique, not secret (a getrandom() call per call is costly on a busy box)."""
    return str(_random.getrandbits(31))


def media_engine(channel: SipChannel) -> Any:
    engine = getattr(channel.context, "engine", None)
    media = getattr(engine, "media", None)
    ready = getattr(media, "ready", None)
    return media if media is not None and ready is not None and ready() else None


class MediaLeg:
    """One of our RTP endpoints and the SDP session that describes it."""

    def __init__(self, media: Any, endpoint: Any, session: MediaSession) -> None:
        self.media = media
        self.endpoint = endpoint
        self.session = session

    @classmethod
    def answer(cls, channel: SipChannel, offer: bytes, *, name: str, on_digit: Any) -> tuple[MediaLeg, bytes] | None:
        """Answer ``offer`` with a new endpoint; None without a media framework. Raises 488-worthy
        :class:`SdpNegotiationError` when nothing in the offer is acceptable."""
        media = media_engine(channel)
        if media is None:
            return None
        endpoint = media.allocate(
            name=name,
            on_dtmf=lambda ep, event: on_digit(event.digit, event.duration_ms),
        )
        try:
            host, port = endpoint.local_address[:2]
            session = MediaSession(host, port, session_id=session_id())
            answer, negotiated = session.answer(offer)
            endpoint.negotiate(
                codec=negotiated.codec.name,
                payload_type=negotiated.codec.payload_type,
                telephone_event=negotiated.telephone_event_pt,
            )
        except BaseException:
            media.release(endpoint)
            raise
        if negotiated.remote_port and negotiated.remote_address not in ("0.0.0.0", "::"):
            endpoint.set_remote((negotiated.remote_address, negotiated.remote_port))
        return cls(media, endpoint, session), answer.serialize()

    @classmethod
    def offer(
        cls, channel: SipChannel, *, name: str, codec: str = "PCMU", on_digit: Any = None
    ) -> tuple[MediaLeg, bytes] | None:
        """A new endpoint and our SDP offer for it (the agent leg of an anchored call, or a customer the
        engine calls out to: ``on_digit(digit, duration_ms)`` hears that customer's RFC 4733 digits)."""
        media = media_engine(channel)
        if media is None:
            return None
        if on_digit is None:
            endpoint = media.allocate(codec=codec, name=name)
        else:
            endpoint = media.allocate(
                codec=codec, name=name, on_dtmf=lambda ep, event: on_digit(event.digit, event.duration_ms)
            )
        host, port = endpoint.local_address[:2]
        session = MediaSession(host, port, codecs=(codec, *(c for c in ("PCMU", "PCMA") if c != codec)), session_id=session_id())
        return cls(media, endpoint, session), session.make_offer().serialize()

    def accept_answer(self, answer: bytes) -> bool:
        try:
            negotiated = self.session.accept_answer(answer)
        except SdpNegotiationError as exc:
            log.warning("sip: unusable SDP answer: %s", exc.reason)
            return False
        self.endpoint.negotiate(
            codec=negotiated.codec.name,
            payload_type=negotiated.codec.payload_type,
            telephone_event=negotiated.telephone_event_pt,
        )
        if negotiated.remote_port and negotiated.remote_address not in ("0.0.0.0", "::"):
            self.endpoint.set_remote((negotiated.remote_address, negotiated.remote_port))
        return True

    def reanswer(self, offer: bytes) -> bytes:
        """Answer a re-INVITE's offer (hold, unhold, a new address) on the same endpoint."""
        answer, negotiated = self.session.answer(offer)
        if negotiated.remote_port and negotiated.remote_address not in ("0.0.0.0", "::"):
            self.endpoint.set_remote((negotiated.remote_address, negotiated.remote_port))
        return answer.serialize()

    def bridge(self, other: MediaLeg) -> None:
        self.media.bridge(self.endpoint, other.endpoint)

    async def play(self, prompts: Any, prompt: str | None) -> None:
        """Play a prompt from the engine's library to the end (or until cancelled)."""
        if not prompt or prompts is None:
            return
        try:
            loaded = prompts.load(prompt)
        except Exception as exc:
            log.warning("sip: prompt %r cannot be played: %s", prompt, exc)
            return
        self.endpoint.play(loaded.player())
        try:
            while self.endpoint.playing and not self.endpoint.closed:
                await trio.sleep(0.02)
        finally:
            if not self.endpoint.closed:
                self.endpoint.play(None)

    def release(self) -> None:
        try:
            self.media.release(self.endpoint)
        except Exception:
            log.exception("sip: releasing an RTP endpoint failed")
