"""The common part of every device emulator: the device side of a pseudo-terminal.

The driver under test opens :attr:`PtyDevice.path` (the slave) exactly as it would open
``/dev/ttyACM0``; the emulator reads and writes the master. :attr:`PtyDevice.link` is a stable
symlink to the current slave, like ``/dev/serial/by-id/...``: ``unplug()`` closes the master (the
driver sees EIO/hang-up) and ``replug()`` makes a fresh pty and moves the link, as a USB device that
re-enumerates under a new ``ttyACMn`` does.
"""

from __future__ import annotations

import errno
import os
import tempfile
import tty
from pathlib import Path

import trio

__all__ = ["PtyDevice"]


class PtyDevice:
    """Owns a pty pair and exposes ``read``/``write`` on the master side for one emulator task."""

    def __init__(self, *, link_dir: str | None = None, link_name: str = "emulated-device") -> None:
        self._link_dir = Path(link_dir or tempfile.mkdtemp(prefix="centralita-emu-"))
        self._link_dir.mkdir(parents=True, exist_ok=True)
        self.link = str(self._link_dir / link_name)
        self._master = -1
        self._slave = -1
        self.path = ""
        self.plugged = False
        self.bytes_from_host = 0
        self.bytes_to_host = 0
        self._replugged = trio.Event()
        self._open_pair()

    def _open_pair(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.path = os.ttyname(slave)
        tmp = self.link + ".tmp"
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        os.symlink(self.path, tmp)
        os.replace(tmp, self.link)
        self.plugged = True

    async def read(self, max_bytes: int = 4096) -> bytes:
        """Bytes the host wrote. Waits while unplugged (returns after replug)."""
        while True:
            if not self.plugged:
                await self._replugged.wait()
                continue
            fd = self._master
            try:
                data = os.read(fd, max_bytes)
            except BlockingIOError:
                try:
                    await trio.lowlevel.wait_readable(fd)
                except trio.ClosedResourceError:
                    pass
                continue
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EBADF):
                    # The host has no open fd on the slave (we keep ours, but be safe) or we unplugged.
                    await trio.sleep(0.01)
                    continue
                raise
            if data:
                self.bytes_from_host += len(data)
                return data

    async def write(self, data: bytes) -> None:
        """Send bytes to the host. Silently dropped while unplugged, as a dead USB device would."""
        view = memoryview(data)
        while view and self.plugged:
            fd = self._master
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                try:
                    await trio.lowlevel.wait_writable(fd)
                except trio.ClosedResourceError:
                    return
                continue
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EBADF):
                    return
                raise
            self.bytes_to_host += written
            view = view[written:]
        await trio.lowlevel.checkpoint()

    def unplug(self) -> None:
        """Pull the cable: the host's next read or write fails with EIO."""
        if not self.plugged:
            return
        self.plugged = False
        self._replugged = trio.Event()
        for fd in (self._master, self._slave):
            trio.lowlevel.notify_closing(fd)
            os.close(fd)
        self._master = self._slave = -1
        try:
            os.unlink(self.link)
        except FileNotFoundError:
            pass

    def replug(self) -> None:
        """Plug back in: a new pty (a new path, as after USB re-enumeration), the link follows it."""
        if self.plugged:
            return
        self._open_pair()
        self._replugged.set()

    def close(self) -> None:
        self.unplug()
        self._replugged.set()
