"""A trio-native serial stream: a non-blocking tty file descriptor, configured with termios.

Why not pyserial in a worker thread: ``benchmarks/serial.py`` measures both on a pty; the fd stream
answers a request/response round trip several times faster, cancels instantly (no thread stuck in
``read()`` until its timeout) and costs no thread per port. pyserial is still used for discovery.

Exclusive open: ``TIOCEXCL`` makes the kernel refuse other opens of the tty (except by root), and an
advisory ``flock`` on the device node stops a second *root* process too (NOTES.md). Either failing
means another process owns the port, and :class:`engine.DeviceBusyError` says which one when it can.

VMIN=1/VTIME=0 on purpose: with VMIN=0 a non-blocking tty ``read`` returns ``b""`` instead of
``EAGAIN`` when nothing is waiting (python-trio/trio#549), which is indistinguishable from a hang-up.
With VMIN=1 an empty read really means the line hung up (USB unplug, pty master closed).
"""

from __future__ import annotations

import errno
import fcntl
import os
import termios
from dataclasses import dataclass
from pathlib import Path

import trio

from engine import DeviceBusyError, DeviceError

__all__ = [
    "SerialDisconnected",
    "SerialSettings",
    "SerialStatistics",
    "SerialStream",
    "open_serial_stream",
]

_BAUD_RATES = {
    rate: getattr(termios, f"B{rate}")
    for rate in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
    if hasattr(termios, f"B{rate}")
}


class SerialDisconnected(DeviceError):
    """The port went away (USB unplug, emulator closed): reopen later with backoff."""


@dataclass(frozen=True)
class SerialSettings:
    baudrate: int = 115200
    #: Hardware flow control. Voice modems need it: XON/XOFF would eat 0x11/0x13 audio bytes.
    rtscts: bool = False
    exclusive: bool = True

    def __post_init__(self) -> None:
        if self.baudrate not in _BAUD_RATES:
            raise ValueError(f"unsupported baud rate {self.baudrate} (supported: {sorted(_BAUD_RATES)})")


@dataclass
class SerialStatistics:
    bytes_received: int = 0
    bytes_sent: int = 0
    reads: int = 0
    writes: int = 0


def _owner_of(path: str) -> str:
    """Best effort: which process holds ``path`` open (scans /proc; bounded, never raises)."""
    try:
        target = os.path.realpath(path)
        me = os.getpid()
        for pid_dir in list(Path("/proc").iterdir())[:4096]:
            if not pid_dir.name.isdigit() or int(pid_dir.name) == me:
                continue
            try:
                for fd in (pid_dir / "fd").iterdir():
                    if os.path.realpath(fd) == target:
                        cmd = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                        return f" (pid {pid_dir.name}: {cmd.strip()[:80]})"
            except OSError:
                continue
    except OSError:
        pass
    return ""


def _configure(fd: int, settings: SerialSettings) -> None:
    attrs = termios.tcgetattr(fd)
    iflag, oflag, cflag, lflag, _ispeed, _ospeed, cc = attrs
    # Raw mode (cfmakeraw): no echo, no line editing, no CR/LF translation, no software flow control.
    iflag &= ~(
        termios.IGNBRK
        | termios.BRKINT
        | termios.PARMRK
        | termios.ISTRIP
        | termios.INLCR
        | termios.IGNCR
        | termios.ICRNL
        | termios.IXON
        | termios.IXOFF
        | termios.IXANY
    )
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag &= ~(termios.CSIZE | termios.PARENB | termios.CSTOPB)
    cflag |= termios.CS8 | termios.CREAD | termios.CLOCAL
    if settings.rtscts:
        cflag |= termios.CRTSCTS
    else:
        cflag &= ~termios.CRTSCTS
    cc = list(cc)
    cc[termios.VMIN] = 1
    cc[termios.VTIME] = 0
    speed = _BAUD_RATES[settings.baudrate]
    termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, speed, speed, cc])


class _OneAtATime:
    """Two tasks reading (or writing) one port at once is a bug: say so instead of interleaving."""

    def __init__(self, message: str) -> None:
        self._message = message
        self._held = False

    def __enter__(self) -> None:
        if self._held:
            raise trio.BusyResourceError(self._message)
        self._held = True

    def __exit__(self, *exc: object) -> None:
        self._held = False


class SerialStream(trio.abc.Stream):
    """A serial port as a :class:`trio.abc.Stream`. Create it with :func:`open_serial_stream`."""

    def __init__(self, fd: int, path: str) -> None:
        self._fd = fd
        self.path = path
        self._stats = SerialStatistics()
        self._send_conflict = _OneAtATime("another task is already writing to this port")
        self._receive_conflict = _OneAtATime("another task is already reading this port")

    def fileno(self) -> int:
        return self._fd

    def statistics(self) -> SerialStatistics:
        return SerialStatistics(**vars(self._stats))

    def _check_open(self) -> None:
        if self._fd < 0:
            raise trio.ClosedResourceError(f"serial port {self.path} is closed")

    def _lost(self, exc: OSError | None) -> SerialDisconnected:
        reason = os.strerror(exc.errno) if exc is not None and exc.errno else "hang-up"
        return SerialDisconnected(f"serial port {self.path} disconnected ({reason})")

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        with self._receive_conflict:
            self._check_open()
            size = max_bytes or 4096
            while True:
                try:
                    data = os.read(self._fd, size)
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(self._fd)
                    self._check_open()
                    continue
                except OSError as exc:
                    if exc.errno == errno.EBADF:
                        raise trio.ClosedResourceError(f"serial port {self.path} is closed") from None
                    raise self._lost(exc) from None
                if not data:
                    raise self._lost(None)
                self._stats.bytes_received += len(data)
                self._stats.reads += 1
                await trio.lowlevel.checkpoint()
                return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        with self._send_conflict:
            self._check_open()
            view = memoryview(data)
            while view:
                try:
                    written = os.write(self._fd, view)
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(self._fd)
                    self._check_open()
                    continue
                except OSError as exc:
                    if exc.errno == errno.EBADF:
                        raise trio.ClosedResourceError(f"serial port {self.path} is closed") from None
                    raise self._lost(exc) from None
                self._stats.bytes_sent += written
                self._stats.writes += 1
                view = view[written:]
            await trio.lowlevel.checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        self._check_open()
        await trio.lowlevel.wait_writable(self._fd)

    def discard_input(self) -> None:
        """Drop whatever the kernel buffered (resynchronising after line noise)."""
        if self._fd >= 0:
            try:
                termios.tcflush(self._fd, termios.TCIFLUSH)
            except termios.error:
                pass

    def close(self) -> None:
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        trio.lowlevel.notify_closing(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            pass
        os.close(fd)

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()


def _open_exclusive(path: str, settings: SerialSettings) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SerialDisconnected(f"serial port {path} does not exist (unplugged?)") from None
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise DeviceBusyError(
                f"serial port {path} is already open by another process{_owner_of(path)}"
            ) from None
        raise DeviceError(f"cannot open serial port {path}: {exc.strerror}") from None
    try:
        if not os.isatty(fd):
            raise DeviceError(f"{path} is not a serial port (not a tty)")
        if settings.exclusive:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DeviceBusyError(
                    f"serial port {path} is already open by another process{_owner_of(path)}"
                ) from None
            fcntl.ioctl(fd, termios.TIOCEXCL)
        _configure(fd, settings)
        termios.tcflush(fd, termios.TCIOFLUSH)
    except BaseException:
        os.close(fd)
        raise
    return fd


async def open_serial_stream(path: str, settings: SerialSettings | None = None) -> SerialStream:
    """Open ``path`` exclusively, raw 8N1 at ``settings.baudrate``.

    Raises :class:`engine.DeviceBusyError` when another process has it, :class:`SerialDisconnected`
    when it does not exist, :class:`engine.DeviceError` for anything else.
    """
    settings = settings or SerialSettings()
    fd = _open_exclusive(path, settings)
    await trio.lowlevel.checkpoint()
    return SerialStream(fd, path)
