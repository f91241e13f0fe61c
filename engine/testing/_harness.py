"""Run the real engine inside a test, with chosen plugins, on loopback ports picked by the OS."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from types import ModuleType

import trio

from .._config import Config
from .._engine import Engine
from .._plugins import PluginManager

#: Appended to a test config unless it has its own [console]: port 0, so parallel runs never collide.
TEST_CONSOLE = '\n[console]\nlisten = "127.0.0.1:0"\n'


def make_manager(plugins: Iterable[ModuleType | object] = (), *, entry_points: bool = False) -> PluginManager:
    """A plugin manager with exactly ``plugins`` registered (and entry points only if asked)."""
    manager = PluginManager()
    if entry_points:
        manager.load_entry_points()
    for index, plugin in enumerate(plugins):
        # a module's name, or the class name of a plugin object (so config can name it in [plugins])
        name = getattr(plugin, "__name__", None) or type(plugin).__name__
        if name in manager.infos:
            name = f"{name}-{index}"
        manager.register(plugin, name)
    return manager


def load_test_config(text: str, manager: PluginManager, directory: Path) -> Config:
    """Write ``text`` to ``directory/centralita.toml`` and load it as ``centralita run --config`` would."""

    if "[console]" not in text:
        text += TEST_CONSOLE
    from .._cli import load_with_plugins

    path = directory / "centralita.toml"
    path.write_text(text, encoding="utf-8")
    return load_with_plugins(path, manager)


@contextlib.asynccontextmanager
async def open_test_engine(
    config_text: str = "",
    *,
    plugins: Iterable[ModuleType | object] = (),
    data_dir: Path | None = None,
    entry_points: bool = False,
    demo: bool = False,
    demo_rate: float = 6.0,
) -> AsyncIterator[Engine]:
    """Start a real :class:`Engine` with ``plugins`` and stop it gracefully on exit.

    Example::

        async def test_my_channel(tmp_path):
            async with open_test_engine("[mychannel]\\nport = 0\\n", plugins=[my_plugin], data_dir=tmp_path) as engine:
                assert engine.ready()[0]
    """
    manager = make_manager(plugins, entry_points=entry_points)
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="centralita-test-")))
        text = f'[engine]\ndata_dir = "{data_dir.as_posix()}"\ndrain_timeout = 1\n' + config_text if "[engine]" not in config_text else config_text
        config = load_test_config(text, manager, data_dir)
        manager.hooks.configure(config)
        engine = Engine(config, manager, demo=demo)
        engine.demo_rate = demo_rate
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run)
            try:
                yield engine
            finally:
                engine.request_stop()


async def wait_until(predicate: Callable[[], object], *, timeout: float = 20.0, poll: float = 0.01) -> None:
    """Wait until ``predicate()`` is true; fail the test with ``TooSlowError`` after ``timeout`` seconds.

    For conditions that nothing signals (an interaction's state, a counter); prefer an event when one
    exists. The timeout is generous on purpose: it bounds a hang, it is not a performance assertion.
    """
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(poll)
