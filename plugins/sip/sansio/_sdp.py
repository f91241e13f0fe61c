"""SDP (RFC 4566): parse and serialize session descriptions.

Only the structure is interpreted (origin, connection, timing, media, attributes); every other line is
kept in order so re-serializing does not lose what a peer sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._errors import SdpParseError

__all__ = ["SessionDescription", "MediaDescription", "Origin", "Connection", "DIRECTIONS"]

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
MAX_SDP_LINES = 2000


@dataclass
class Origin:
    username: str = "-"
    session_id: str = "0"
    session_version: str = "0"
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "127.0.0.1"

    @classmethod
    def parse(cls, value: str) -> Origin:
        parts = value.split()
        if len(parts) != 6:
            raise SdpParseError(f"bad o= line {value[:60]!r}")
        return cls(*parts)

    def __str__(self) -> str:
        return (f"{self.username} {self.session_id} {self.session_version} {self.nettype} {self.addrtype} "
                f"{self.address}")


@dataclass
class Connection:
    address: str
    addrtype: str = "IP4"
    nettype: str = "IN"

    @classmethod
    def parse(cls, value: str) -> Connection:
        parts = value.split()
        if len(parts) != 3:
            raise SdpParseError(f"bad c= line {value[:60]!r}")
        address = parts[2].split("/")[0]  # drop a multicast TTL / count
        return cls(address, parts[1], parts[0])

    @property
    def is_hold(self) -> bool:
        """RFC 2543-style hold: the connection address is 0.0.0.0 (or :: for IPv6)."""
        return self.address in ("0.0.0.0", "::")

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


Attribute = tuple[str, "str | None"]


@dataclass
class MediaDescription:
    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    connection: Connection | None = None
    attributes: list[Attribute] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)  #: i=, b=, k= lines, in order

    @classmethod
    def parse_m(cls, value: str) -> MediaDescription:
        parts = value.split()
        if len(parts) < 4:
            raise SdpParseError(f"bad m= line {value[:60]!r}")
        media, port_text, proto, *formats = parts
        count = None
        if "/" in port_text:
            port_text, _, count_text = port_text.partition("/")
            if not count_text.isdigit() or len(count_text) > 5:
                raise SdpParseError("bad port count")
            count = int(count_text)
        if not port_text.isdigit() or not port_text.isascii() or len(port_text) > 5 or int(port_text) > 65535:
            raise SdpParseError(f"bad media port {port_text[:20]!r}")
        return cls(media, int(port_text), proto, formats, count)

    # -- attribute helpers -------------------------------------------------------------------------
    def attribute(self, name: str) -> str | None:
        for n, v in self.attributes:
            if n == name:
                return v if v is not None else ""
        return None

    def attribute_values(self, name: str) -> list[str]:
        return [v or "" for n, v in self.attributes if n == name]

    def set_attribute(self, name: str, value: str | None = None) -> None:
        self.attributes = [(n, v) for n, v in self.attributes if n != name] + [(name, value)]

    @property
    def direction(self) -> str | None:
        """The direction attribute at media level, if any."""
        for n, _ in self.attributes:
            if n in DIRECTIONS:
                return n
        return None

    @direction.setter
    def direction(self, value: str) -> None:
        if value not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}")
        self.attributes = [(n, v) for n, v in self.attributes if n not in DIRECTIONS] + [(value, None)]

    def rtpmap(self) -> dict[str, tuple[str, int, int]]:
        """payload type -> (encoding name, clock rate, channels), from a=rtpmap lines."""
        out = {}
        for value in self.attribute_values("rtpmap"):
            pt, _, rest = value.partition(" ")
            name, _, tail = rest.strip().partition("/")
            clock, _, channels = tail.partition("/")
            if pt.isdigit() and clock.isdigit():
                out[pt] = (name, int(clock), int(channels) if channels.isdigit() else 1)
        return out

    def fmtp(self) -> dict[str, str]:
        out = {}
        for value in self.attribute_values("fmtp"):
            pt, _, params = value.partition(" ")
            out[pt] = params.strip()
        return out

    @property
    def ptime(self) -> int | None:
        value = self.attribute("ptime")
        return int(value) if value and value.isdigit() and len(value) < 6 else None

    def lines(self) -> list[str]:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        out = [f"m={self.media} {port} {self.proto} {' '.join(self.formats)}".rstrip()]
        out += [f"{t}={v}" for t, v in self.other if t == "i"]
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out += [f"{t}={v}" for t, v in self.other if t != "i"]
        out += [f"a={n}" if v is None else f"a={n}:{v}" for n, v in self.attributes]
        return out


@dataclass
class SessionDescription:
    origin: Origin = field(default_factory=Origin)
    session_name: str = "-"
    connection: Connection | None = None
    timing: list[str] = field(default_factory=lambda: ["0 0"])
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)  #: i/u/e/p/b/z/k/r lines, in order
    version: int = 0

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        """Parse an SDP body; raises :class:`SdpParseError` (400) on anything malformed."""
        if isinstance(data, bytes):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise SdpParseError("SDP is not valid UTF-8") from None
        else:
            text = data
        lines = [line.rstrip("\r") for line in text.split("\n")]
        while lines and not lines[-1]:
            lines.pop()
        if len(lines) > MAX_SDP_LINES:
            raise SdpParseError("SDP has too many lines")
        if not lines or lines[0].strip() != "v=0":
            raise SdpParseError("SDP must start with v=0")
        sdp = cls()
        seen_origin = seen_name = False
        sdp.timing = []
        current: MediaDescription | None = None
        for line in lines[1:]:
            if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
                raise SdpParseError(f"bad SDP line {line[:60]!r}")
            kind, value = line[0], line[2:]
            if kind == "m":
                current = MediaDescription.parse_m(value)
                sdp.media.append(current)
            elif kind == "a":
                name, colon, val = value.partition(":")
                attr = (name, val if colon else None)
                (current.attributes if current else sdp.attributes).append(attr)
            elif kind == "c":
                conn = Connection.parse(value)
                if current is None:
                    sdp.connection = conn
                else:
                    current.connection = conn
            elif current is not None:
                current.other.append((kind, value))
            elif kind == "o":
                sdp.origin = Origin.parse(value)
                seen_origin = True
            elif kind == "s":
                sdp.session_name = value
                seen_name = True
            elif kind == "t":
                sdp.timing.append(value)
            elif kind == "v":
                raise SdpParseError("second v= line")
            else:
                sdp.other.append((kind, value))
        if not seen_origin:
            raise SdpParseError("SDP has no o= line")
        if not seen_name:
            sdp.session_name = "-"
        if not sdp.timing:
            sdp.timing = ["0 0"]
        for m in sdp.media:
            if m.connection is None and sdp.connection is None and m.port != 0:
                raise SdpParseError("media without a connection address")
        return sdp

    def serialize(self) -> bytes:
        out = ["v=0", f"o={self.origin}", f"s={self.session_name}"]
        out += [f"{t}={v}" for t, v in self.other if t in "iuep"]
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out += [f"{t}={v}" for t, v in self.other if t == "b"]
        out += [f"t={t}" for t in self.timing]
        out += [f"{t}={v}" for t, v in self.other if t not in "iuepb"]
        out += [f"a={n}" if v is None else f"a={n}:{v}" for n, v in self.attributes]
        for m in self.media:
            out += m.lines()
        return ("\r\n".join(out) + "\r\n").encode("utf-8")

    def __bytes__(self) -> bytes:
        return self.serialize()

    @property
    def direction(self) -> str | None:
        for n, _ in self.attributes:
            if n in DIRECTIONS:
                return n
        return None

    def media_direction(self, media: MediaDescription) -> str:
        """The effective direction of a media line (media level, else session level, else sendrecv)."""
        return media.direction or self.direction or "sendrecv"

    def media_connection(self, media: MediaDescription) -> Connection | None:
        return media.connection or self.connection
