"""``WS /api/v1/events``: bus events as JSON, one per message.

A client that reads slowly never slows the engine: its bus subscription has a bounded buffer and the
bus drops for it. Once it has lost events we close it with code 1013 ("try again later") and a reason,
so it knows to reconnect and resynchronise from the REST API instead of trusting a gappy stream. A
client that stops reading altogether cannot even be sent the close frame; the kernel's
``TCP_USER_TIMEOUT`` on the console's sockets then ends the connection (see ``_server.py``).
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

import trio

from .._bus import EventBus
from .._events import Event
from ._auth import Principal
from ._http import Receive, Send

log = logging.getLogger("centralita.console.ws")

CLOSE_TOO_SLOW = 1013
_ids = itertools.count(1)


@dataclass
class WsStatistics:
    connections: int = 0
    open: int = 0
    messages: int = 0
    closed_too_slow: int = 0


async def serve_events(
    receive: Receive,
    send: Send,
    bus: EventBus,
    principal: Principal,
    stats: WsStatistics,
    *,
    buffer: int,
    visible: Callable[[Event], bool] | None = None,
) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    name = f"ws:{principal.name}:{next(_ids)}"
    stats.connections += 1
    stats.open += 1
    try:
        async with bus.subscribe(name, buffer=buffer) as events:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_until_disconnect, receive, nursery.cancel_scope)
                    async for event in events:
                        dropped = bus.statistics().dropped_by_subscriber.get(name, 0)
                        if dropped:
                            log.warning("events client %s too slow: %d events dropped; closing it", name, dropped)
                            reason = f"too slow: {dropped} events dropped; reconnect and resync"
                            await send({"type": "websocket.close", "code": CLOSE_TOO_SLOW, "reason": reason})
                            nursery.cancel_scope.cancel()
                            return
                        if visible is not None and not visible(event):
                            continue
                        await send({"type": "websocket.send", "text": _encode(event.to_json())})
                        stats.messages += 1
            finally:
                # closed by us above, or cut off by the kernel while it was not reading: either way it
                # lost events because it was too slow
                if bus.statistics().dropped_by_subscriber.get(name, 0):
                    stats.closed_too_slow += 1
    finally:
        stats.open -= 1


def _encode(value: dict[str, Any]) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


async def _until_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
    # The events socket is one-way; anything the client sends is read and ignored (hypercorn bounds
    # message size), and its disconnect ends the stream.
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            scope.cancel()
            return
