"""The ``centralita`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import trio

from . import __version__
from ._config import Config, load_config
from ._errors import ConfigError, EngineError
from ._logging import setup_logging
from ._plugins import PluginManager
from ._registry import CliRegistry, ConfigSectionRegistry, IvrNodeRegistry

log = logging.getLogger("centralita.cli")


def discover_plugins(disabled: list[str] | tuple[str, ...] = ()) -> PluginManager:
    manager = PluginManager()
    manager.load_entry_points(disabled=disabled)
    return manager


def load_with_plugins(path: Path | None, manager: PluginManager, data_dir: Path | None = None) -> Config:
    """Validate the file against the core schema plus every loaded plugin's section schema."""
    sections = manager.hooks.add_config_sections(ConfigSectionRegistry())
    nodes = manager.hooks.register("centralita_register_ivr_nodes", IvrNodeRegistry())
    known = {name for name, info in manager.infos.items() if not info.loaded}
    return load_config(
        path,
        plugin_sections=dict(sections.items()),
        plugin_arrays=sections.arrays,
        known_plugin_sections=known,
        data_dir_override=data_dir,
        node_types=dict(nodes.items()),
    )


def _disabled_from(path: Path | None) -> list[str]:
    """Read ``[plugins] disable`` before full validation, so disabled plugins are never imported."""
    if path is None:
        return []
    import tomllib

    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []  # the full load reports the problem properly
    disable = raw.get("plugins", {}).get("disable", []) if isinstance(raw.get("plugins"), dict) else []
    return [d for d in disable if isinstance(d, str)] if isinstance(disable, list) else []


def settle_startup_heap(*, raise_threshold: bool = False) -> None:
    """Once the engine is up (plugins loaded, services started): collect, then move every object alive
    now into the collector's permanent generation (``gc.freeze``). Those objects -- modules, plugins,
    configuration, compiled flows -- live as long as the process, and a full collection no longer
    walks them, which shortens its pause on the media clock (docs/performance/media.md). Only the
    ``run`` command does this: an engine in a test process is not forever.
    ``raise_threshold`` also collects the young generation less often (measured there too)."""
    import gc

    gc.collect()
    gc.freeze()
    if raise_threshold:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


#: young-generation threshold tried with ``raise_threshold`` (CPython's default is 700)
GC_YOUNG_THRESHOLD = 10_000


# -------------------------------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace) -> int:
    from ._engine import Engine

    path = Path(args.config) if args.config else None
    if path is None and args.demo:
        from ._demo import demo_config_text, write_demo_prompts

        # the demo desk's configuration, written where the user can read and copy it
        demo_dir = Path(args.data_dir or "var/demo").resolve()
        demo_dir.mkdir(parents=True, exist_ok=True)
        path = demo_dir / "centralita-demo.toml"
        path.write_text(demo_config_text().replace('data_dir = "var/demo"', 'data_dir = "."'), encoding="utf-8")
        write_demo_prompts(demo_dir)
    manager = discover_plugins(_disabled_from(path))
    config = load_with_plugins(path, manager, Path(args.data_dir) if args.data_dir else None)
    setup_logging(args.log_format, config.engine.log_level, config.engine.log_levels)
    manager.check_required(config.plugins.required)
    manager.hooks.configure(config)
    engine = Engine(config, manager, demo=args.demo)

    def reload() -> None:
        try:
            new = load_with_plugins(path, manager, Path(args.data_dir) if args.data_dir else None)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload refused: %s", problem)
            return
        engine.reload(new)

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async with trio.open_nursery() as nursery:
                async def stop_on_signal() -> None:
                    async for signum in signals:
                        if signum == signal.SIGHUP:
                            log.warning("received SIGHUP; reloading the configuration")
                            reload()
                            continue
                        log.warning("received %s; shutting down", signal.Signals(signum).name)
                        engine.request_stop()

                nursery.start_soon(stop_on_signal)

                async def run_engine(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                    await engine.run(task_status=task_status)
                    # everything is closed; stop listening for signals
                    nursery.cancel_scope.cancel()

                await nursery.start(run_engine)
                settle_startup_heap()

    trio.run(main)
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    path = Path(args.file)
    manager = discover_plugins(_disabled_from(path))
    load_with_plugins(path, manager)
    print(f"{path}: ok")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    path = Path(args.config) if args.config else None
    manager = discover_plugins(_disabled_from(path))
    infos = [i.to_json() for i in manager.plugin_list()]
    if args.json:
        print(json.dumps(infos, indent=2))
        return 0
    print(f"{'NAME':<14} {'KIND':<8} {'VERSION':<9} {'ENABLED':<8} ERROR")
    for info in infos:
        print(f"{info['name']:<14} {info['kind']:<8} {info['version']:<9} {('yes' if info['enabled'] else 'no'):<8} {info['error'] or ''}")
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    print(f"centralita {__version__}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    if args.what == "acd":
        from .routing.simulate import run_cli
    else:
        from .dialing.simulate import run_cli
    argv = [args.scenario] + (["--json"] if args.json else []) + list(args.extra)
    return run_cli(argv)


def _store_command(args: argparse.Namespace, action: Any) -> int:
    from ._registry import MigrationRegistry
    from .store import open_store

    path = Path(args.config) if args.config else None
    manager = discover_plugins(_disabled_from(path))
    config = load_with_plugins(path, manager, Path(args.data_dir) if args.data_dir else None)

    async def main() -> Any:
        from . import console

        migrations = MigrationRegistry()
        manager.hooks.register("centralita_register_migrations", migrations)
        async with open_store(config.data_dir / "centralita.db", [*migrations.migrations, *console.MIGRATIONS]) as store:
            return await action(store)

    print(trio.run(main))
    return 0


def cmd_import_leads(args: argparse.Namespace) -> int:
    """``centralita import-leads FILE --campaign NAME``: leads go to the store; a running engine picks them up."""
    import time as _time

    from ._dialer import MIGRATIONS as DIALER_MIGRATIONS
    from ._dialer import StoreLeadSink
    from ._registry import Migration
    from .dialing import run_import_cli
    from .store import open_store

    path = Path(args.config) if args.config else None
    manager = discover_plugins(_disabled_from(path))
    config = load_with_plugins(path, manager, Path(args.data_dir) if args.data_dir else None)
    campaigns = [c.get("name") for c in config.raw.get("campaigns", []) if isinstance(c, dict)]
    if args.campaign not in campaigns:
        print(f"centralita: no campaign named {args.campaign!r} in the configuration (have: {', '.join(campaigns) or 'none'})",
              file=sys.stderr)
        return 2
    db = config.data_dir / "centralita.db"
    migrations: list[Migration] = [*DIALER_MIGRATIONS]

    async def existing() -> set[str]:
        async with open_store(db, migrations) as store:
            rows = await store.fetchall("SELECT number FROM dialer_numbers WHERE campaign = ?", (args.campaign,))
        return {r["number"] for r in rows}

    sink = StoreLeadSink(args.campaign, trio.run(existing))
    argv = [args.file, "--campaign", args.campaign, "--region", args.region, *sum((["--map", m] for m in args.map), [])]
    if args.json:
        argv.append("--json")
    code = run_import_cli(argv, sink_factory=lambda campaign, fields: sink)

    async def save() -> None:
        async with open_store(db, migrations) as store:
            await store.write_many(sink.statements(_time.time()))

    if sink.leads:
        trio.run(save)
    return code


def cmd_user_add(args: argparse.Namespace) -> int:
    from .console import add_user

    return _store_command(args, lambda store: add_user(store, args.name, args.role))


def cmd_token_add(args: argparse.Namespace) -> int:
    from .console import add_token

    return _store_command(args, lambda store: add_token(store, args.name, args.role))


def cmd_backup(args: argparse.Namespace) -> int:
    from .console._backup import BackupRefused, _data_dir_of, cli_backup

    path = Path(args.config) if args.config else None
    if path is not None:
        config = load_with_plugins(path, discover_plugins(_disabled_from(path)), Path(args.data_dir) if args.data_dir else None)
        data_dir = config.data_dir
    else:
        data_dir = _data_dir_of(None, None, Path(args.data_dir) if args.data_dir else None)
    try:
        print(cli_backup(Path(args.file), config_path=path, data_dir=data_dir, engine_version=__version__))
    except BackupRefused as exc:
        print(f"centralita: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from .console._backup import BackupRefused, cli_restore

    path = Path(args.config) if args.config else None

    def load(candidate: Path, data_dir: Path) -> Config:
        return load_with_plugins(candidate, discover_plugins(_disabled_from(candidate)), data_dir)

    try:
        lines = cli_restore(Path(args.file), config_path=path, data_dir=Path(args.data_dir) if args.data_dir else None, load=load)
    except BackupRefused as exc:
        print(f"centralita: not restored: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


# ------------------------------------------------------------------------------------- the parser


def _config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="configuration file (default: the embedded one)")
    parser.add_argument("--data-dir", metavar="DIR", help="data directory (overrides [engine] data_dir)")


def build_parser(manager: PluginManager | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="centralita", description="Centralita contact-center engine")
    parser.add_argument("--log-format", choices=["auto", "human", "json"], default="auto")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the engine")
    _config_args(run)
    run.add_argument("--demo", action="store_true", help="attach emulated devices and simulated callers/agents")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file")
    check.set_defaults(func=cmd_check_config)

    plugins = sub.add_parser("plugins", help="list discovered plugins")
    plugins.add_argument("--config", metavar="FILE")
    plugins.add_argument("--json", action="store_true")
    plugins.set_defaults(func=cmd_plugins)

    version = sub.add_parser("version", help="print the version")
    version.set_defaults(func=cmd_version)

    simulate = sub.add_parser("simulate", help="run the routing or dialing code on a virtual clock")
    simulate.add_argument("what", choices=["acd", "dialer"])
    simulate.add_argument("scenario", metavar="SCENARIO.toml")
    simulate.add_argument("--json", action="store_true")
    simulate.add_argument("extra", nargs=argparse.REMAINDER)
    simulate.set_defaults(func=cmd_simulate)

    leads = sub.add_parser("import-leads", help="import a CSV of leads into a campaign")
    leads.add_argument("file")
    leads.add_argument("--campaign", required=True)
    leads.add_argument("--map", action="append", default=[], metavar="COLUMN=FIELD")
    leads.add_argument("--region", default="US")
    leads.add_argument("--json", action="store_true")
    _config_args(leads)
    leads.set_defaults(func=cmd_import_leads)

    user = sub.add_parser("user", help="manage console users")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    user_add = user_sub.add_parser("add", help="add a user; prints a one-time password")
    user_add.add_argument("name")
    user_add.add_argument("--role", choices=["admin", "supervisor", "agent"], required=True)
    _config_args(user_add)
    user_add.set_defaults(func=cmd_user_add)

    token = sub.add_parser("token", help="manage API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    token_add = token_sub.add_parser("add", help="add a bearer token; prints only the token")
    token_add.add_argument("name")
    token_add.add_argument("--role", choices=["admin", "supervisor", "agent"], default="admin")
    _config_args(token_add)
    token_add.set_defaults(func=cmd_token_add)

    backup = sub.add_parser("backup", help="write the configuration and a database snapshot to one zip file")
    backup.add_argument("file", metavar="FILE")
    _config_args(backup)
    backup.set_defaults(func=cmd_backup)

    restore = sub.add_parser("restore", help="restore a backup zip (stop the engine first)")
    restore.add_argument("file", metavar="FILE")
    _config_args(restore)
    restore.set_defaults(func=cmd_restore)

    if manager is not None:
        commands = manager.hooks.register("centralita_register_cli_commands", CliRegistry())
        for name, command in commands.items():
            if name in sub.choices:
                continue
            extra = sub.add_parser(name, help=command.help)
            command.configure(extra)
            extra.set_defaults(func=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    manager = discover_plugins()
    parser = build_parser(manager)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (EngineError, BaseExceptionGroup) as exc:
        lines = _user_errors(exc)
        if lines is None:
            raise
        for line in lines:
            print(line, file=sys.stderr)
        return 2


def _user_errors(exc: BaseException) -> list[str] | None:
    """The lines to print for an error that is the user's to fix; None for a bug (re-raised)."""
    if isinstance(exc, BaseExceptionGroup):
        lines: list[str] = []
        for inner in exc.exceptions:
            sub = _user_errors(inner)
            if sub is None:
                return None
            lines.extend(sub)
        return lines
    if isinstance(exc, ConfigError):
        return list(exc.problems)
    if isinstance(exc, EngineError):
        return [f"centralita: {exc}"]
    return None
