"""Configuration: every problem reported with file, line, key, expected and got; defaults work."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from engine import ConfigError, load_config
from engine._config import locate_lines

GOOD = """
[engine]
data_dir = "data"

[[agents]]
id = "alice"
endpoint = "sip:1001"
skills = { es = 80, billing = 50 }

[[agents]]
id = "bob"
auto_login = false

[[queues]]
name = "support"
members = ["alice", "bob"]
timeout = 15

[[routes]]
match = "100"
queue = "support"
"""


def write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems_of(path: Path, **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, **kwargs)  # type: ignore[arg-type]
    return info.value.problems


def test_embedded_default_loads_with_contract_defaults() -> None:
    config = load_config(None)
    assert config.console.listen == "127.0.0.1:8080"
    assert config.data_dir == (Path.cwd() / "var").resolve()


def test_good_file_and_relative_data_dir_is_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.data_dir == (tmp_path / "data").resolve()
    assert [a.id for a in config.agents] == ["alice", "bob"]
    assert config.agents[0].channels == {"voice": 1}  # omitted channels means one voice call
    assert config.agents[1].auto_login is False
    assert config.queues[0].members == ["alice", "bob"]


def test_unknown_key_names_file_line_and_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("timeout = 15", "timout = 15"))
    (line,) = problems_of(path)
    lineno = GOOD.replace("timeout = 15", "timout = 15").splitlines().index("timout = 15") + 1
    assert line == f"{path}:{lineno}: queues[0].timout: unknown key; did you mean 'timeout'?"


def test_wrong_type_says_expected_and_got(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("timeout = 15", 'timeout = "soon"'))
    (line,) = problems_of(path)
    assert "queues[0].timeout: expected a number, got string 'soon'" in line
    assert line.startswith(f"{path}:")


def test_negative_timeout_and_bad_member_reported_together(tmp_path: Path) -> None:
    text = GOOD.replace("timeout = 15", "timeout = -3").replace('["alice", "bob"]', '["alice", "carol"]')
    problems = problems_of(write(tmp_path, text))
    assert any("queues[0].timeout: expected at least 0, got integer -3" in p for p in problems)
    assert any("queues[0].members[1]: no agent with id 'carol'" in p for p in problems)


def test_broken_toml_gives_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[engine]\ndata_dir = "x\n')
    (line,) = problems_of(path)
    assert line.startswith(f"{path}:2: TOML syntax error")


def test_unknown_section_did_you_mean(tmp_path: Path) -> None:
    (line,) = problems_of(write(tmp_path, "[consle]\nlisten = '127.0.0.1:1'\n"))
    assert line == f"{tmp_path / 'c.toml'}:1: consle: unknown section; did you mean 'console'?"


def test_plugin_section_validated_with_its_schema(tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class Mail:
        imap: str
        port: int = 143
        folders: list[str] = field(default_factory=list)

    path = write(tmp_path, "[mail]\nport = 'x'\n")
    problems = problems_of(path, plugin_sections={"mail": Mail})
    assert any("mail.port: expected an integer, got string 'x'" in p for p in problems)
    assert any("mail.imap: missing required key (expected a string)" in p for p in problems)
    ok = load_config(write(tmp_path, "[mail]\nimap = 'imap://x'\n"), plugin_sections={"mail": Mail})
    assert ok.section("mail") == Mail(imap="imap://x")


def test_conf_d_drop_ins_append_arrays_and_point_at_their_own_file(tmp_path: Path) -> None:
    main = write(tmp_path, GOOD)
    (tmp_path / "conf.d").mkdir()
    drop = tmp_path / "conf.d" / "10-more.toml"
    drop.write_text('[[queues]]\nname = "sales"\nstrategy = "ring-all"\nmembers = ["alice"]\nwrapup = "x"\n')
    problems = problems_of(main)
    assert problems == [f"{drop}:5: queues[1].wrapup: expected a number, got string 'x'"]
    drop.write_text('[[queues]]\nname = "sales"\nmembers = ["alice"]\n')
    assert [q.name for q in load_config(main).queues] == ["support", "sales"]


def test_route_must_name_an_existing_target(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, GOOD.replace('queue = "support"', 'queue = "nope"')))
    assert any("routes[0].queue: no queue named 'nope'" in p for p in problems)


def test_locate_lines_handles_sub_tables_and_dotted_keys() -> None:
    text = '[[flows]]\nname = "a"\n[flows.nodes.start]\ntype = "menu"\n[x]\ny.z = 1\n'
    lines = locate_lines(text)
    assert lines["flows[0].name"] == 2
    assert lines["flows[0].nodes.start.type"] == 4
    assert lines["x.y.z"] == 6


def test_check_config_cli_exit_codes(tmp_path: Path) -> None:
    good = write(tmp_path, GOOD, "good.toml")
    bad = write(tmp_path, GOOD.replace("timeout = 15", "timout = 15"), "bad.toml")
    ok = subprocess.run([sys.executable, "-m", "engine", "check-config", str(good)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    fail = subprocess.run([sys.executable, "-m", "engine", "check-config", str(bad)], capture_output=True, text=True)
    assert fail.returncode == 2
    assert "did you mean 'timeout'" in fail.stderr
    assert fail.stderr.strip().splitlines()[0].startswith(f"{bad}:")


def test_absent_plugin_section_is_not_validated_and_reads_as_none(tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class Mail:
        imap: str  # required, but only when [mail] is written at all

    config = load_config(write(tmp_path, GOOD), plugin_sections={"mail": Mail})
    assert config.section("mail") is None


FLOW = """
[engine]
data_dir = "."

[[queues]]
name = "support"

[[flows]]
name = "main"
start = "hello"

[flows.nodes.hello]
type = "play"
prompt = "hello"
next = "queue"

[flows.nodes.queue]
type = "queue"
queue = "support"
"""


def test_a_prompt_that_cannot_be_played_is_refused_at_load_not_when_a_caller_reaches_it(tmp_path: Path) -> None:
    path = write(tmp_path, FLOW)
    line = FLOW.splitlines().index('prompt = "hello"') + 1
    missing = problems_of(path)
    assert any(f"c.toml:{line}: flows[0].nodes.hello.prompt" in p and "'hello'" in p and "not found" in p for p in missing)

    folder = tmp_path / "prompts" / "en"
    folder.mkdir(parents=True)
    (folder / "hello.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk that is not a format chunk")
    unsupported = problems_of(path)
    assert any("flows[0].nodes.hello.prompt" in p and "cannot be played" in p for p in unsupported)

    from engine.testing import write_prompts

    write_prompts(tmp_path, "hello")
    assert [f["name"] for f in load_config(path).raw["flows"]] == ["main"]
