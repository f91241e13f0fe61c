"""Hook implementations only: the plugin's whole contract with the engine."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from engine import hookimpl

_settings: VipSettings | None = None


@dataclass(frozen=True)
class VipSettings:
    """The ``[vip]`` section of centralita.toml."""

    numbers: list[str] = field(default_factory=list)
    priority: int = field(default=10, metadata={"min": 1})


@hookimpl
def centralita_add_config_sections(registry):
    registry.add("vip", VipSettings)


@hookimpl
def centralita_configure(config):
    global _settings
    _settings = config.section("vip") or VipSettings()


@hookimpl
def centralita_interaction_priority(interaction):
    # A decision hook: pure and fast, no I/O. None means "no opinion".
    if _settings and interaction.from_ in _settings.numbers:
        return _settings.priority
    return None


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE")


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from engine import load_config

    config = load_config(Path(args.config) if args.config else None, plugin_sections={"vip": VipSettings})
    for number in (config.section("vip") or VipSettings()).numbers:
        print(number)
    return 0


@hookimpl
def centralita_register_cli_commands(registry):
    registry.add("vip-list", "list VIP numbers from the configuration", _configure, _run)
