"""The ``[chat]`` section."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ChatSettings:
    address: str = "webchat"  # routed with [[routes]] match = this
    max_message_chars: int = 2000
    rate: float = 2.0  # messages per second a visitor may send on average...
    burst: int = 8  # ...with this burst
    max_violations: int = 20  # invalid frames / over-rate messages before the socket is closed
    send_timeout: float = 10.0  # a visitor socket that does not take a frame within this is closed
    queue_update_interval: float = 5.0  # how often waiting visitors get their position and wait
    assumed_handle_time: float = 180.0  # seconds per chat, for the wait estimate until real data exists
    history_limit: int = 200  # messages sent back on reconnect
    max_connections_per_session: int = 5  # tabs of one visitor
    max_upload_bytes: int = 5 * 1024 * 1024  # a file a visitor sends (POST /chat/upload)
    upload_types: list[str] = field(default_factory=lambda: [
        "image/png", "image/jpeg", "image/gif", "application/pdf", "text/plain"])
    transcript_interval: float = 60.0  # at most one transcript mail per session per this many seconds
    reoffer_after: float = 120.0  # an active conversation unanswered this long goes back to its queue (0: never)
    retry_first: float = 1.0
    retry_max: float = 30.0
