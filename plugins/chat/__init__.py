"""The web chat channel: an embeddable widget served by the console, visitors over WebSocket.

Paste ``<script src="https://YOUR-CONSOLE/chat/widget.js" async></script>`` into a page (also served
at ``/chat/snippet``). Pure parts: :func:`parse_frame` (the visitor protocol) and :class:`TokenBucket`.
"""

from __future__ import annotations

from ._channel import ChatChannel, VisitorSession
from ._protocol import TokenBucket, VisitorError, estimate_wait, frame, parse_frame
from ._settings import ChatSettings
from ._web import ChatWeb

__all__ = [
    "ChatChannel",
    "ChatSettings",
    "ChatWeb",
    "TokenBucket",
    "VisitorError",
    "VisitorSession",
    "estimate_wait",
    "frame",
    "parse_frame",
]
