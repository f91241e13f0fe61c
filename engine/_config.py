"""Load and validate the configuration: one TOML file plus ``conf.d/*.toml`` drop-ins.

The engine's own sections are declared here; each plugin declares its own with the
``centralita_add_config_sections`` hook. Problems are reported as
``FILE:LINE: section.key: what is wrong (expected ..., got ...)``, all of them at once.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from ._errors import ConfigError
from ._schema import Problem, build

# ------------------------------------------------------------------------------------- core sections


def _check_listen(value: str) -> str | None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        return f"expected HOST:PORT, got {value!r}"
    return None


@dataclass(frozen=True)
class EngineSettings:
    data_dir: str = "var"
    #: seconds live interactions may take to finish on shutdown before they are cut
    drain_timeout: float = field(default=10.0, metadata={"min": 0})
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    #: per-component levels, e.g. { sip = "debug" }
    log_levels: dict[str, str] = field(default_factory=dict)
    #: first and longest restart delay of a crashed plugin service
    restart_backoff: float = field(default=0.5, metadata={"min": 0})
    restart_backoff_max: float = field(default=30.0, metadata={"min": 0})


@dataclass(frozen=True)
class ConsoleSettings:
    listen: str = field(default="127.0.0.1:8080", metadata={"check": _check_listen})
    #: serve HTTPS; default: only when listening on something other than loopback
    https: bool | None = None


def _check_port_range(value: list[int]) -> str | None:
    if len(value) != 2 or not (1024 <= value[0] < value[1] <= 65535):
        return f"expected [LOW, HIGH] with 1024 <= LOW < HIGH <= 65535, got {value!r}"
    return None


@dataclass(frozen=True)
class MediaSettings:
    """``[media]``: where RTP is received, prompts are found and recordings are kept."""

    #: address RTP sockets bind to and SDP advertises
    host: str = "127.0.0.1"
    #: even/odd RTP/RTCP pairs are taken from this range; empty: the OS picks free ports
    port_range: list[int] = field(default_factory=list, metadata={"check": lambda v: _check_port_range(v) if v else None})
    #: prompt library root (``<prompts>/<language>/<name>.wav``), relative to the data directory
    prompts: str = "prompts"
    language: str = "en"
    recordings: str = "recordings"
    #: recordings older than this many days are deleted (0 keeps them forever)
    retention_days: float = field(default=0.0, metadata={"min": 0})
    #: layout of call recordings: caller left / agent right, or both mixed into one channel
    record_format: Literal["stereo", "mono"] = "stereo"
    #: DTMF method for calls: rfc4733 | inband | info | auto
    dtmf: Literal["rfc4733", "inband", "info", "auto"] = "auto"


@dataclass(frozen=True)
class PluginSettings:
    disable: list[str] = field(default_factory=list)
    required: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AgentSettings:
    """``[[agents]]``: the keys are typed here; their meaning is checked by ``engine.routing``."""

    id: str
    endpoint: str = ""
    name: str = ""
    skills: dict[str, float] = field(default_factory=dict)
    channels: dict[str, int] = field(default_factory=lambda: {"voice": 1})
    auto_login: bool = True
    wrapup: float | None = None
    weight: float = 1.0
    voice_blocks_others: bool = False


@dataclass(frozen=True)
class QueueSettings:
    """``[[queues]]``: typed here; strategies, expressions and schedules are checked by ``engine.routing``."""

    name: str
    strategy: str = "longest-idle"
    members: list[str] = field(default_factory=list)
    timeout: float = field(default=15.0, metadata={"min": 0})
    wrapup: float = field(default=10.0, metadata={"min": 0})
    reservation_timeout: float = field(default=60.0, metadata={"min": 0})
    max_length: int = field(default=0, metadata={"min": 0})
    max_wait: float | None = None
    autopause_after: int = field(default=0, metadata={"min": 0})
    #: seconds an agent who missed an offer sits out for that caller
    retry: float = field(default=5.0, metadata={"min": 0})
    announce_frequency: float = field(default=0.0, metadata={"min": 0})
    announce_position: bool = True
    callback_attempts: int = field(default=3, metadata={"min": 0})
    callback_retry_delay: float = field(default=300.0, metadata={"min": 0})
    service_level_seconds: float = field(default=20.0, metadata={"min": 0})
    priority: int = 0
    join_empty: bool = True
    leave_when_empty: bool = False
    overflow: dict[str, Any] = field(default_factory=dict)
    target: str = ""
    relax: list[dict[str, Any]] = field(default_factory=list)
    hours: Any = None
    weights: dict[str, float] = field(default_factory=dict)
    music_on_hold: str = ""
    #: record every call this queue connects to an agent (``[media] recordings``)
    record: bool = False
    #: this queue's recording layout; empty: ``[media] record_format``
    record_format: Literal["", "stereo", "mono"] = ""


@dataclass(frozen=True)
class RouteSettings:
    match: str
    queue: str | None = None
    flow: str | None = None
    agent: str | None = None
    priority: int = 0


@dataclass(frozen=True)
class DeviceSettings:
    name: str
    driver: str
    port: str = ""
    profile: str = "generic"
    options: dict[str, Any] = field(default_factory=dict)


_MAIL_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+")


def _check_mail_address(value: str) -> str | None:
    # One plain address, nothing a mail header could be smuggled in with (no spaces, <>, quotes, line breaks).
    if value and not _MAIL_ADDRESS.fullmatch(value):
        return f"expected one plain address like name@example.com, got {value!r}"
    return None


def _check_box_name(value: str) -> str | None:
    if not value or len(value) > 64 or value.strip(".") != value or not all(c.isalnum() or c in "-_." for c in value):
        return f"expected up to 64 letters, digits, '-', '_' or '.', got {value!r}"
    return None


def _check_dtmf_keys(value: str) -> str | None:
    if len(value) > 16 or not all(c in "0123456789*#ABCD" for c in value):
        return f"expected DTMF keys (0-9, *, #, A-D), got {value!r}"
    return None


@dataclass(frozen=True)
class VoicemailBoxSettings:
    """``[[voicemail]]``: one box's limits and mail address. Boxes not listed use these defaults."""

    name: str = field(metadata={"check": _check_box_name})
    #: mail each new message here (needs the email plugin's ``[email]`` section)
    email: str = field(default="", metadata={"check": _check_mail_address})
    max_seconds: float = field(default=120.0, metadata={"min": 1, "max": 3600})
    #: this long without speech ends the message
    silence_seconds: float = field(default=5.0, metadata={"min": 0.5, "max": 60})
    #: shorter messages are a hang-up at the beep and are discarded
    min_seconds: float = field(default=1.0, metadata={"min": 0, "max": 60})
    #: pressing one of these keys during the greeting skips to the beep ("" never skips)
    skip_keys: str = field(default="0123456789*#", metadata={"check": _check_dtmf_keys})


#: name -> (schema, is an array of tables)
CORE_SECTIONS: dict[str, tuple[type, bool]] = {
    "engine": (EngineSettings, False),
    "console": (ConsoleSettings, False),
    "plugins": (PluginSettings, False),
    "media": (MediaSettings, False),
    "agents": (AgentSettings, True),
    "queues": (QueueSettings, True),
    "routes": (RouteSettings, True),
    "devices": (DeviceSettings, True),
    "voicemail": (VoicemailBoxSettings, True),
}

#: sections whose schema belongs to another engine component, validated there (raw dicts here)
DEFERRED_SECTIONS = {"flows": True, "campaigns": True}

# ------------------------------------------------------------------------------------- line locating

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+))*)\s*=""")


def _split_key(text: str) -> list[str]:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([A-Za-z0-9_\-]+)', text)
    return [a or b or c for a, b, c in parts]


def locate_lines(text: str) -> dict[str, int]:
    """Map key paths (``queues[1].timeout``) to the 1-based line that defines them.

    A light scan, not a TOML parser: good enough to point a person at the right line, and it never
    fails (unmatched lines are ignored).
    """
    lines: dict[str, int] = {}
    array_counts: dict[str, int] = {}
    prefix = ""
    in_multiline = False
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
                in_multiline = False
            continue
        header = _HEADER.match(line)
        if header:
            keys = _split_key(header.group(2))
            base = ".".join(keys)
            if header.group(1) == "[[":
                index = array_counts.get(base, 0)
                array_counts[base] = index + 1
                prefix = f"{base}[{index}]"
            else:
                # a sub-table of the last array element: [queues.extra] after [[queues]]
                head = keys[0]
                if head in array_counts and len(keys) > 1:
                    prefix = f"{head}[{array_counts[head] - 1}]." + ".".join(keys[1:])
                else:
                    prefix = base
            lines.setdefault(prefix, number)
            continue
        key = _KEY.match(line)
        if key:
            path = ".".join([prefix, *_split_key(key.group(1))]) if prefix else ".".join(_split_key(key.group(1)))
            lines.setdefault(path, number)
            if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
                in_multiline = True
    return lines


# ---------------------------------------------------------------------------------------- loading


@dataclass
class _Source:
    file: str
    lines: dict[str, int]


def default_config_text() -> str:
    return resources.files("engine").joinpath("default.toml").read_text(encoding="utf-8")


def _merge(into: dict[str, Any], new: dict[str, Any], path: str, remap: dict[str, str]) -> None:
    """Merge drop-in ``new`` into ``into``: tables merge, arrays of tables append, values replace."""
    for key, value in new.items():
        sub = f"{path}.{key}" if path else key
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value, sub, remap)
        elif isinstance(value, list) and isinstance(into.get(key), list) and all(isinstance(v, dict) for v in value):
            offset = len(into[key])
            for i in range(len(value)):
                remap[f"{sub}[{i}]"] = f"{sub}[{i + offset}]"
            into[key].extend(value)
        else:
            into[key] = value


@dataclass(frozen=True)
class Config:
    """The validated configuration. Plugin sections are in :meth:`section`."""

    engine: EngineSettings
    console: ConsoleSettings
    plugins: PluginSettings
    media: MediaSettings
    agents: list[AgentSettings]
    queues: list[QueueSettings]
    routes: list[RouteSettings]
    devices: list[DeviceSettings]
    raw: dict[str, Any]
    sections: dict[str, Any]
    source: Path | None
    data_dir: Path
    locations: dict[str, tuple[str, int]] = field(default_factory=dict, repr=False)
    voicemail: list[VoicemailBoxSettings] = field(default_factory=list)

    def section(self, name: str) -> Any:
        """A plugin's validated section (a dataclass instance), or None when absent."""
        return self.sections.get(name)

    def where(self, path: str) -> str:
        """``FILE:LINE`` for a key path, as precise as known."""
        return _where(self.locations, path, str(self.source or "<default>"))


def _where(locations: dict[str, tuple[str, int]], path: str, fallback: str) -> str:
    probe = path
    while probe:
        if probe in locations:
            file, line = locations[probe]
            return f"{file}:{line}"
        probe = re.sub(r"(\.[^.\[\]]+|\[\d+\])$", "", probe) if re.search(r"(\.[^.\[\]]+|\[\d+\])$", probe) else ""
    first = next(iter(locations.values()), None)
    return f"{first[0]}:1" if first else f"{fallback}:1"


def read_sources(path: Path | None) -> tuple[dict[str, Any], dict[str, tuple[str, int]], list[str]]:
    """Parse the main file (or the embedded default) and its ``conf.d`` drop-ins."""
    files: list[tuple[str, str]] = []
    errors: list[str] = []
    if path is None:
        files.append(("<default>", default_config_text()))
    else:
        try:
            files.append((str(path), path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise ConfigError([f"{path}:0: cannot read the file: it does not exist"]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{path}:0: cannot read the file: {exc}"]) from None
        drop_dir = path.parent / "conf.d"
        if drop_dir.is_dir():
            for drop in sorted(drop_dir.glob("*.toml")):
                try:
                    files.append((str(drop), drop.read_text(encoding="utf-8")))
                except (OSError, UnicodeDecodeError) as exc:
                    errors.append(f"{drop}:0: cannot read the file: {exc}")
    merged: dict[str, Any] = {}
    locations: dict[str, tuple[str, int]] = {}
    for name, text in files:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
            line = match.group(1) if match else "1"
            message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
            errors.append(f"{name}:{line}: TOML syntax error: {message} (fix the syntax at that line)")
            continue
        remap: dict[str, str] = {}
        _merge(merged, data, "", remap)
        for key, line in locate_lines(text).items():
            for old, new in remap.items():
                if key == old or key.startswith(old + ".") or key.startswith(old + "["):
                    key = new + key[len(old):]
                    break
            locations.setdefault(key, (name, line))
    if errors:
        raise ConfigError(errors)
    return merged, locations, errors


def load_config(
    path: Path | None,
    *,
    plugin_sections: dict[str, type] | None = None,
    plugin_arrays: set[str] | None = None,
    known_plugin_sections: set[str] = frozenset(),  # type: ignore[assignment]
    data_dir_override: Path | None = None,
    node_types: Any = None,
) -> Config:
    """Load, merge and validate. Raises :class:`ConfigError` listing every problem.

    ``known_plugin_sections`` names sections that belong to plugins which are installed but disabled
    or failed to load: they are accepted unvalidated instead of reported as unknown.
    """
    raw, locations, _ = read_sources(path)
    plugin_sections = plugin_sections or {}
    plugin_arrays = plugin_arrays or set()
    problems: list[Problem] = []
    built: dict[str, Any] = {}
    schemas: dict[str, tuple[type, bool]] = dict(CORE_SECTIONS)
    for name, schema in plugin_sections.items():
        schemas[name] = (schema, name in plugin_arrays)
    known = set(schemas) | set(DEFERRED_SECTIONS) | set(known_plugin_sections)
    for key in raw:
        if key not in known:
            hint = difflib.get_close_matches(key, sorted(known), n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else " (no installed plugin declares it)"
            problems.append(Problem(key, f"unknown section{extra}"))
    for name, (schema, many) in schemas.items():
        if name not in raw and name not in CORE_SECTIONS:
            continue  # a plugin whose section is absent is not configured: it gets None
        value = raw.get(name, [] if many else {})
        if many:
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                problems.append(Problem(name, f"expected an array of tables ([[{name}]]), got {type(value).__name__}"))
                continue
            built[name] = [build(schema, v, f"{name}[{i}]", problems) for i, v in enumerate(value)]
        else:
            if not isinstance(value, dict):
                problems.append(Problem(name, f"expected a table ([{name}]), got {type(value).__name__}"))
                continue
            built[name] = build(schema, value, name, problems)
    data_dir = _data_dir(built.get("engine"), path, data_dir_override)
    problems.extend(_cross_checks(raw))
    problems.extend(_routing_problems(raw, problems, node_types, _prompt_checker(built.get("media"), data_dir)))
    problems.extend(_campaign_problems(raw))
    fallback = str(path) if path else "<default>"
    if problems:
        raise ConfigError([f"{_where(locations, p.path, fallback)}: {p.path}: {p.message}" for p in problems])
    engine: EngineSettings = built["engine"]
    assert data_dir is not None
    return Config(
        engine=engine,
        console=built["console"],
        plugins=built["plugins"],
        media=built["media"],
        agents=built["agents"],
        queues=built["queues"],
        routes=built["routes"],
        devices=built["devices"],
        raw=raw,
        sections={k: v for k, v in built.items() if k in plugin_sections},
        source=path,
        data_dir=data_dir,
        locations=locations,
        voicemail=built["voicemail"],
    )


def _data_dir(engine: EngineSettings | None, path: Path | None, override: Path | None) -> Path | None:
    if override is not None:
        return override.resolve()
    if engine is None:
        return None  # the [engine] section has problems of its own, reported already
    if path is not None:
        return (path.parent / engine.data_dir).resolve()
    return Path(engine.data_dir).resolve()


def _prompt_checker(media: MediaSettings | None, data_dir: Path | None) -> Any:
    """Check each prompt a flow names now, not when a caller reaches it: the file exists in the prompt
    library and decodes (a WAV in a format we cannot play is an error at load, with the reason)."""
    if media is None or data_dir is None:
        return None
    from .media import PromptLibrary

    library = PromptLibrary(data_dir / media.prompts, fallback=(media.language, "en"))

    def check(name: str) -> bool | str:
        try:
            library.load(name)
        except Exception as exc:  # not found, unreadable, unsupported format: the reason is the message
            return f"prompt {name!r} cannot be played: {exc}"
        return True

    return check


def _routing_problems(raw: dict[str, Any], already: list[Problem], node_types: Any,
                      prompt_exists: Any = None) -> list[Problem]:
    """Meaning of queues, agents, routes and flows, checked by the routing core (paths not already reported)."""
    from .routing import validate_routing_config

    seen = {p.path for p in already}
    out: list[Problem] = []
    for path, message in validate_routing_config(raw, node_types=node_types, prompt_exists=prompt_exists):
        if path in seen or any(path.startswith(s + ".") or path.startswith(s + "[") for s in seen):
            continue
        seen.add(path)
        out.append(Problem(path, message))
    return out


def _campaign_problems(raw: dict[str, Any]) -> list[Problem]:
    from .dialing import validate_campaigns

    agents = {a.get("id") for a in raw.get("agents", []) if isinstance(a, dict)}
    queues = {q.get("name") for q in raw.get("queues", []) if isinstance(q, dict)}
    _, problems = validate_campaigns(raw.get("campaigns"), agents=agents, queues=queues)  # type: ignore[arg-type]
    return [Problem(p.path, p.message) for p in problems]


def _cross_checks(raw: dict[str, Any]) -> list[Problem]:
    """References between core sections: members name agents, routes name queues, no duplicates."""
    problems: list[Problem] = []
    agents = [a.get("id") for a in raw.get("agents", []) if isinstance(a, dict)]
    queues = [q.get("name") for q in raw.get("queues", []) if isinstance(q, dict)]
    flows = [f.get("name") for f in raw.get("flows", []) if isinstance(f, dict)]
    boxes = [b.get("name") for b in raw.get("voicemail", []) if isinstance(b, dict)]
    for kind, names, key in (("agents", agents, "id"), ("queues", queues, "name"), ("flows", flows, "name"),
                             ("voicemail", boxes, "name")):
        seen: set[object] = set()
        for i, name in enumerate(names):
            if name in seen:
                problems.append(Problem(f"{kind}[{i}].{key}", f"duplicate {key} {name!r}"))
            seen.add(name)
    for i, box in enumerate(raw.get("voicemail", []) if isinstance(raw.get("voicemail"), list) else []):
        low, high = (box.get("min_seconds", 1.0), box.get("max_seconds", 120.0)) if isinstance(box, dict) else (0, 1)
        if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low >= high:
            problems.append(Problem(f"voicemail[{i}].min_seconds",
                                    f"must be below max_seconds ({high}), or every message is discarded; got {low}"))
    for i, queue in enumerate(raw.get("queues", [])):
        if not isinstance(queue, dict):
            continue
        for j, member in enumerate(queue.get("members", []) if isinstance(queue.get("members"), list) else []):
            if member not in agents:
                problems.append(Problem(f"queues[{i}].members[{j}]", f"no agent with id {member!r} (add it to [[agents]])"))
    for i, route in enumerate(raw.get("routes", [])):
        if not isinstance(route, dict):
            continue
        targets = [k for k in ("queue", "flow", "agent") if k in route]
        if len(targets) != 1:
            problems.append(Problem(f"routes[{i}]", f"expected exactly one of queue, flow, agent, got {len(targets)}"))
        for key, names in (("queue", queues), ("flow", flows), ("agent", agents)):
            if key in route and route[key] not in names:
                problems.append(Problem(f"routes[{i}].{key}", f"no {key} named {route[key]!r}"))
    return problems
