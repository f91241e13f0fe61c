"""Media errors. Who is at fault decides the type (DESIGN.md habit 7)."""

from __future__ import annotations

__all__ = ["MediaError", "MalformedPacket", "PromptFormatError", "PromptNotFoundError", "TtsUnavailableError", "MediaUsageError"]


class MediaError(Exception):
    """Base of every media error."""


class MalformedPacket(MediaError):
    """A peer sent an RTP/RTCP datagram that does not add up. The protocol's reply: count it, drop it."""

    def __init__(self, reason: str, size: int) -> None:
        super().__init__(f"{reason} ({size} bytes)")
        self.reason = reason
        self.size = size


class MediaUsageError(MediaError):
    """Local misuse of the media API (an unknown codec, a released endpoint, a bad argument)."""


class PromptFormatError(MediaError):
    """A prompt file cannot be played: raised when the flow is loaded, naming the file and the reason."""


class PromptNotFoundError(MediaError, FileNotFoundError):
    """No file for a prompt in the asked language nor in the fallback languages."""


class TtsUnavailableError(MediaError):
    """Text-to-speech was asked for but espeak-ng is not installed (the rest of media works)."""
