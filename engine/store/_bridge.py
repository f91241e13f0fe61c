"""Run asyncio coroutines on a private event loop in one dedicated thread, awaited from trio.

Why not trio-asyncio: it swaps asyncio's event-loop policy for the whole process, which breaks other
asyncio users in the same process (NOTES.md). Here asyncio lives in one thread we own; completions are
handed back to trio through its token, so no trio worker thread is blocked while SQLite works.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio

T = TypeVar("T")


class AsyncioThread:
    """An asyncio loop running forever in a daemon thread until :meth:`stop`."""

    def __init__(self, name: str = "centralita-asyncio") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._started = threading.Event()
        self._thread.start()
        self._started.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._started.set)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def submit(self, factory: Callable[[], Awaitable[T]]) -> concurrent.futures.Future[T]:
        async def runner() -> T:
            return await factory()

        return asyncio.run_coroutine_threadsafe(runner(), self._loop)

    async def run(self, factory: Callable[[], Awaitable[T]], *, shield: bool = False) -> T:
        """Await ``factory()`` on the asyncio loop from trio.

        With ``shield=True`` the trio caller keeps waiting for the result even if cancelled (writes:
        an acknowledged write must really be durable, and a cancelled caller must not leave doubt).
        Without it, a cancelled caller returns at once and the coroutine finishes in the background.
        """
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        future = self.submit(factory)
        future.add_done_callback(lambda _f: _wake(token, done))
        with trio.CancelScope(shield=shield):
            await done.wait()
        return future.result()

    def stop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


def _wake(token: trio.lowlevel.TrioToken, event: trio.Event) -> None:
    try:
        token.run_sync_soon(event.set)
    except trio.RunFinishedError:
        pass

