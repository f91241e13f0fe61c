"""SDP offer/answer (RFC 3264) for one audio stream with G.711 and telephone-event (RFC 4733).

:class:`MediaSession` is our side of one call: it makes offers, answers the peer's offers, reads the peer's
answers, and reports what was agreed as a :class:`Negotiated` (codec, payload types, where to send RTP,
directions, whether the peer holds us).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from ._errors import SdpNegotiationError, SdpParseError
from ._sdp import Connection, MediaDescription, Origin, SessionDescription

__all__ = ["MediaSession", "Negotiated", "Codec", "STATIC_CODECS", "reverse_direction", "is_hold_offer"]

# RFC 3551 static payload types we can use.
STATIC_CODECS = {"PCMU": 0, "PCMA": 8}
_STATIC_BY_PT = {"0": "PCMU", "8": "PCMA"}
_RTP_PROFILES = ("RTP/AVP", "RTP/AVPF")

_REVERSE = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}
_SENDS = {"sendrecv": True, "sendonly": True, "recvonly": False, "inactive": False}
_RECEIVES = {"sendrecv": True, "sendonly": False, "recvonly": True, "inactive": False}


def reverse_direction(direction: str) -> str:
    return _REVERSE[direction]


def _combine(sends: bool, receives: bool) -> str:
    return {(True, True): "sendrecv", (True, False): "sendonly", (False, True): "recvonly"}.get(
        (sends, receives), "inactive"
    )


@dataclass(frozen=True)
class Codec:
    name: str
    payload_type: int
    clock_rate: int = 8000


@dataclass(frozen=True)
class Negotiated:
    """The outcome of one offer/answer exchange, from our point of view."""

    codec: Codec
    telephone_event_pt: int | None
    remote_address: str
    remote_port: int
    direction: str  #: what we do: sendrecv, sendonly (we hold), recvonly (we are held), inactive
    remote_hold: bool  #: the peer put us on hold (sendonly/inactive or c=0.0.0.0)
    ptime: int | None = None

    @property
    def we_send(self) -> bool:
        return _SENDS[self.direction]

    @property
    def we_receive(self) -> bool:
        return _RECEIVES[self.direction]


def _audio(sdp: SessionDescription) -> tuple[int, MediaDescription]:
    for index, m in enumerate(sdp.media):
        if m.media == "audio" and m.port != 0 and m.proto.upper() in _RTP_PROFILES:
            return index, m
    raise SdpNegotiationError("no usable RTP/AVP audio stream in the offer")


def _codec_of(m: MediaDescription, pt: str, rtpmap: dict[str, tuple[str, int, int]] | None = None) -> tuple[str, int] | None:
    if rtpmap is None:
        rtpmap = m.rtpmap()
    if pt in rtpmap:
        name, clock, _ = rtpmap[pt]
        return name, clock
    if pt in _STATIC_BY_PT:
        return _STATIC_BY_PT[pt], 8000
    return None


class MediaSession:
    """Our SDP identity and preferences for one call.

    ``codecs`` are in our order of preference (used when we offer); when answering, the offerer's order
    wins among the codecs we support (RFC 3264 §6.1).
    """

    def __init__(
        self,
        address: str,
        port: int,
        *,
        codecs: tuple[str, ...] = ("PCMU", "PCMA"),
        telephone_event_pt: int | None = 101,
        ptime: int = 20,
        username: str = "centralita",
        session_id: str | None = None,
    ) -> None:
        for c in codecs:
            if c.upper() not in STATIC_CODECS:
                raise ValueError(f"unsupported codec {c!r}")
        self.address = address
        self.port = port
        self.codecs = tuple(c.upper() for c in codecs)
        self.telephone_event_pt = telephone_event_pt
        self.ptime = ptime
        self.origin = Origin(username, session_id or str(secrets.randbelow(2**31)), "0",
                             "IN", "IP6" if ":" in address else "IP4", address)
        self._version = 0
        self._last_body: bytes | None = None
        self.negotiated: Negotiated | None = None
        self._pending_offer: SessionDescription | None = None
        self._last_answer: SessionDescription | None = None

    # -- building our descriptions -------------------------------------------------------------------
    def _describe(self, media: list[MediaDescription]) -> SessionDescription:
        sdp = SessionDescription(
            origin=Origin(self.origin.username, self.origin.session_id, str(self._version),
                          self.origin.nettype, self.origin.addrtype, self.origin.address),
            session_name="centralita",
            connection=Connection(self.address, self.origin.addrtype),
            media=media,
        )
        body = sdp.serialize()
        if self._last_body is not None and body != self._last_body:
            # RFC 3264 §8: a changed description gets a higher version.
            self._version += 1
            sdp.origin.session_version = str(self._version)
            body = sdp.serialize()
        self._last_body = body
        return sdp

    def _audio_line(self, codecs: list[Codec], te_pt: int | None, direction: str) -> MediaDescription:
        formats = [str(c.payload_type) for c in codecs] + ([str(te_pt)] if te_pt is not None else [])
        m = MediaDescription("audio", self.port, "RTP/AVP", formats)
        for c in codecs:
            m.attributes.append(("rtpmap", f"{c.payload_type} {c.name}/{c.clock_rate}"))
        if te_pt is not None:
            m.attributes.append(("rtpmap", f"{te_pt} telephone-event/8000"))
            m.attributes.append(("fmtp", f"{te_pt} 0-16"))
        m.attributes.append(("ptime", str(self.ptime)))
        m.attributes.append((direction, None))
        return m

    def make_offer(self, direction: str = "sendrecv") -> SessionDescription:
        """An offer with all our codecs; ``direction="sendonly"`` puts the peer on hold (RFC 3264 §8.4)."""
        codecs = [Codec(c, STATIC_CODECS[c]) for c in self.codecs]
        offer = self._describe([self._audio_line(codecs, self.telephone_event_pt, direction)])
        self._pending_offer = offer
        return offer

    def hold_offer(self) -> SessionDescription:
        return self.make_offer("sendonly")

    def resume_offer(self) -> SessionDescription:
        return self.make_offer("sendrecv")

    def _pick(self, audio: MediaDescription, *, clock_rate: int | None) -> tuple[Codec | None, int | None]:
        """The first of ``audio``'s formats that is one of our codecs, and its telephone-event payload
        type (``clock_rate``: only formats at that rate count; None: any)."""
        codec = None
        te_pt = None
        rtpmap = audio.rtpmap()  # once, not once per payload type
        for pt in audio.formats:
            found = _codec_of(audio, pt, rtpmap)
            if found is None or not pt.isdigit():
                continue
            name, clock = found
            if clock_rate is not None and clock != clock_rate:
                continue
            if name.lower() == "telephone-event":
                te_pt = int(pt) if te_pt is None else te_pt
            elif codec is None and name.upper() in self.codecs:
                codec = Codec(name.upper(), int(pt))
        return codec, te_pt

    # -- answering the peer's offer -------------------------------------------------------------------
    def answer(self, offer: SessionDescription | bytes, *, direction: str = "sendrecv") -> tuple[
        SessionDescription, Negotiated
    ]:
        """Answer an offer. ``direction`` is what we would like (``sendonly`` while we hold the peer).

        Raises :class:`SdpNegotiationError` (488) when no audio stream or no codec is acceptable.
        """
        if isinstance(offer, bytes):
            try:
                offer = SessionDescription.parse(offer)
            except SdpParseError as exc:
                raise SdpNegotiationError(f"unparseable offer: {exc.reason}") from None
        index, audio = _audio(offer)
        # The offerer's order wins among what we support, at 8 kHz only (RFC 3264 §6.1).
        codec, te_pt = self._pick(audio, clock_rate=8000)
        if codec is None:
            raise SdpNegotiationError("no common audio codec (we support " + ", ".join(self.codecs) + ")")
        if self.telephone_event_pt is None:
            te_pt = None
        conn = offer.media_connection(audio)
        assert conn is not None  # parse() guarantees a connection for an active stream
        remote_direction = offer.media_direction(audio)
        remote_hold = remote_direction in ("sendonly", "inactive") or conn.is_hold
        peer_sends = _SENDS[remote_direction] and not conn.is_hold
        peer_receives = _RECEIVES[remote_direction] and not conn.is_hold
        ours = _combine(_SENDS[direction] and peer_receives, _RECEIVES[direction] and peer_sends)
        media = []
        for i, m in enumerate(offer.media):
            if i == index:
                media.append(self._audio_line([codec], te_pt, ours))
            else:  # RFC 3264 §6: reject other streams with port 0, keeping the line
                media.append(MediaDescription(m.media, 0, m.proto, m.formats[:1] or ["0"]))
        answer = self._describe(media)
        negotiated = Negotiated(codec, te_pt, conn.address, audio.port, ours, remote_hold, audio.ptime)
        self.negotiated = negotiated
        return answer, negotiated

    # -- reading the peer's answer to our offer ----------------------------------------------------------
    def accept_answer(self, answer: SessionDescription | bytes) -> Negotiated:
        """Read the answer to our last offer; raises :class:`SdpNegotiationError` if it is unusable."""
        if isinstance(answer, bytes):
            try:
                answer = SessionDescription.parse(answer)
            except SdpParseError as exc:
                raise SdpNegotiationError(f"unparseable answer: {exc.reason}") from None
        offer = self._pending_offer
        if offer is None:
            if self._last_answer is not None and answer == self._last_answer and self.negotiated is not None:
                return self.negotiated  # the same answer again (a retransmitted 2xx): nothing changes
            raise SdpNegotiationError("an answer arrived but we made no offer", 400)
        _, audio = _audio(answer)
        codec, te_pt = self._pick(audio, clock_rate=None)
        if codec is None:
            raise SdpNegotiationError("the answer picked no codec we offered")
        conn = answer.media_connection(audio)
        assert conn is not None
        our_offer_dir = offer.media_direction(offer.media[0])
        remote_direction = answer.media_direction(audio)
        remote_hold = remote_direction in ("sendonly", "inactive") or conn.is_hold
        ours = _combine(
            _SENDS[our_offer_dir] and _RECEIVES[remote_direction] and not conn.is_hold,
            _RECEIVES[our_offer_dir] and _SENDS[remote_direction],
        )
        negotiated = Negotiated(codec, te_pt, conn.address, audio.port, ours, remote_hold, audio.ptime)
        self.negotiated = negotiated
        self._pending_offer = None
        self._last_answer = answer
        return negotiated


def is_hold_offer(sdp: SessionDescription) -> bool:
    """Whether a (re-)offer puts us on hold: its audio is sendonly/inactive or its address is 0.0.0.0."""
    _, audio = _audio(sdp)
    conn = sdp.media_connection(audio)
    return sdp.media_direction(audio) in ("sendonly", "inactive") or bool(conn and conn.is_hold)
