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
import time
import wave
from typing import TYPE_CHECKING, Any

import trio

from .sansio import MediaSession, SdpNegotiationError

if TYPE_CHECKING:
    from ._channel import SipChannel

__all__ = ["MediaLeg", "dtmf_method", "interaction_dtmf_method", "media_engine"]

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


def dtmf_method(channel: SipChannel, *, user: str | None = None, trunk: str | None = None) -> str:
    """The DTMF method of a leg to SIP user ``user`` or through trunk ``trunk``: that user's or trunk's
    ``dtmf`` key, else the engine's ``[media] dtmf``, else auto. ``info`` hears only SIP INFO digits,
    ``inband`` only tones in the audio, ``rfc4733`` only telephone-events."""
    settings = getattr(channel, "settings", None)
    for name, entries in ((trunk, getattr(settings, "trunks", ())), (user, getattr(settings, "users", ()))):
        if name:
            for entry in entries:
                if entry.name == name and getattr(entry, "dtmf", ""):
                    return str(entry.dtmf)
    config = getattr(getattr(channel.context, "engine", None), "config", None)
    return str(getattr(getattr(config, "media", None), "dtmf", "") or "auto")


def interaction_dtmf_method(channel: SipChannel, interaction: Any) -> str:
    """The DTMF method of a call's customer leg, from the trunk or SIP user it came in through."""
    attributes = getattr(interaction, "attributes", None) or {}
    return dtmf_method(channel, user=attributes.get("sip_user"), trunk=attributes.get("trunk"))


class MediaLeg:
    """One of our RTP endpoints and the SDP session that describes it."""

    def __init__(self, media: Any, endpoint: Any, session: MediaSession) -> None:
        self.media = media
        self.endpoint = endpoint
        self.session = session
        #: the looping music-on-hold player of a queued caller (None: silence between prompts)
        self.hold_music: Any = None
        #: prompts being played right now (music on hold waits for them to end)
        self.prompting = 0

    @classmethod
    def answer(
        cls, channel: SipChannel, offer: bytes, *, name: str, on_digit: Any, dtmf: str = "auto"
    ) -> tuple[MediaLeg, bytes] | None:
        """Answer ``offer`` with a new endpoint; None without a media framework. Raises 488-worthy
        :class:`SdpNegotiationError` when nothing in the offer is acceptable."""
        media = media_engine(channel)
        if media is None:
            return None
        endpoint = media.allocate(
            name=name,
            dtmf=dtmf,
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
        cls, channel: SipChannel, *, name: str, codec: str = "PCMU", on_digit: Any = None, dtmf: str = "auto"
    ) -> tuple[MediaLeg, bytes] | None:
        """A new endpoint and our SDP offer for it (the agent leg of an anchored call, or a customer the
        engine calls out to: ``on_digit(digit, duration_ms)`` hears that customer's RFC 4733 digits)."""
        media = media_engine(channel)
        if media is None:
            return None
        if on_digit is None:
            endpoint = media.allocate(codec=codec, name=name, dtmf=dtmf)
        else:
            endpoint = media.allocate(
                codec=codec, name=name, dtmf=dtmf, on_dtmf=lambda ep, event: on_digit(event.digit, event.duration_ms)
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
        await self.play_loaded(loaded)

    async def play_loaded(self, loaded: Any) -> None:
        """Play a loaded :class:`engine.media.Prompt` to the end (or until cancelled); music on hold, if
        the caller has some, pauses meanwhile and goes on where it stopped afterwards."""
        self.prompting += 1
        player = loaded.player()
        endpoint = self.endpoint
        endpoint.play(player)
        try:
            while endpoint.player is player and not endpoint.closed:
                await trio.sleep(0.02)
        finally:
            self.prompting -= 1
            # Only our own prompt is stopped: one started meanwhile (another prompt, an announcement)
            # keeps playing, and it hands the endpoint back to the music when it ends.
            if not endpoint.closed and endpoint.player in (player, None):
                endpoint.play(self.hold_music if not self.prompting else None)

    def set_hold_music(self, player: Any) -> None:
        """Start (a looping player) or stop (None) music on hold. A prompt being played keeps playing;
        the music starts when it ends (``play_loaded`` hands the endpoint back to it)."""
        self.hold_music = player
        if not self.endpoint.closed and not self.prompting:
            self.endpoint.play(player)

    async def record(self, path: Any, *, max_seconds: float, silence_seconds: float, stop: Any = None) -> float:
        """Record what the caller says into an 8 kHz mono WAV (voicemail) until ``max_seconds``, until
        ``silence_seconds`` without speech, until ``stop`` (a trio.Event: the stop key) is set, or until
        the call ends. Trailing silence is cut from the file; returns the seconds kept (0 when the
        caller never spoke)."""
        from engine.media import Recording

        tap = _MessageTap(Recording(path, stereo=False))
        endpoint = self.endpoint
        endpoint.sinks.append(tap)
        started = time.monotonic()
        try:
            while not endpoint.closed and not tap.recording.failed and not (stop is not None and stop.is_set()):
                now = time.monotonic()
                if now - started >= max_seconds:
                    break
                # Wall time, not frames: a caller who stops sending RTP altogether is silent too.
                if now - (tap.last_speech or started) >= silence_seconds:
                    break
                await trio.sleep(0.05)
        finally:
            if tap in endpoint.sinks:
                endpoint.sinks.remove(tap)
            tap.recording.close()
        keep = min(tap.frames_to_keep, int(max_seconds / 0.02))
        _truncate_wav(path, keep * 160)
        return keep * 0.02

    def release(self) -> None:
        try:
            self.media.release(self.endpoint)
        except Exception:
            log.exception("sip: releasing an RTP endpoint failed")


class _MessageTap:
    """A Sink on the caller's decoded audio: writes every frame and notes where speech last was, by the
    media framework's voice activity detector (its hangover keeps pauses between words)."""

    def __init__(self, recording: Any) -> None:
        from engine.media import VoiceActivityDetector

        self.recording = recording
        self.vad = VoiceActivityDetector()
        self.frames = 0
        self.frames_to_keep = 0  # up to the end of the last talk spurt
        self.last_speech: float | None = None

    def write_frame(self, frame: Any) -> None:
        self.recording.write_frame(frame)
        self.frames += 1
        if self.vad.feed(frame):
            self.frames_to_keep = self.frames
            self.last_speech = time.monotonic()


def _truncate_wav(path: Any, samples: int) -> None:
    """Cut a mono 16-bit WAV down to its first ``samples`` samples (rewrites the header)."""
    try:
        with wave.open(str(path), "rb") as source:
            if source.getnframes() <= samples:
                return
            audio = source.readframes(samples)
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(audio)
    except (OSError, wave.Error, EOFError) as exc:
        log.warning("sip: could not trim the silence off %s: %s", path, exc)

