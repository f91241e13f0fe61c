"""Property tests of the sans-IO parts: login rate limiter, CSV neutralisation, hostile requests."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.console import MASTER_CSV_COLUMNS, LoginRateLimiter, cdr_csv, neutralise

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "|", "%")


@given(st.text(max_size=50))
def test_neutralised_cell_never_starts_a_formula_unless_a_plain_number(text):
    cell = neutralise(text)
    if cell.startswith(FORMULA_START):
        float(cell)  # only plain numbers like +34911 or -3 may keep a leading sign
    assert cell.endswith(text) and len(cell) - len(text) in (0, 1)


@given(st.lists(st.dictionaries(st.sampled_from(MASTER_CSV_COLUMNS), st.text(max_size=20)), max_size=5))
def test_csv_always_has_every_column_in_order(rows):
    parsed = list(csv.reader(io.StringIO(cdr_csv(rows))))
    assert len(parsed) == len(rows)
    for row, cells in zip(rows, parsed, strict=True):
        assert len(cells) == len(MASTER_CSV_COLUMNS)
        for column, cell in zip(MASTER_CSV_COLUMNS, cells, strict=True):
            assert cell == neutralise(row.get(column, ""))


def test_backoff_grows_and_success_clears():
    limiter = LoginRateLimiter(free_failures=3, base_delay=1.0, max_delay=60.0)
    now = 0.0
    for _ in range(3):
        assert limiter.check("1.2.3.4", "bob", now) == 0.0
        limiter.failure("1.2.3.4", "bob", now)
    waits = []
    for _ in range(4):
        wait = limiter.check("1.2.3.4", "bob", now)
        waits.append(wait)
        now += wait
        assert limiter.check("1.2.3.4", "bob", now) == 0.0
        limiter.failure("1.2.3.4", "bob", now)
    assert waits == [1.0, 2.0, 4.0, 8.0]
    limiter.success("1.2.3.4", "bob")
    assert limiter.check("1.2.3.4", "bob", now) == 0.0


@settings(max_examples=50)
@given(st.lists(st.tuples(st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3"]), st.sampled_from(["alice", "bob"])), max_size=200))
def test_strangers_never_lock_out_a_user_at_another_source(attempts):
    limiter = LoginRateLimiter(free_failures=2, base_delay=5.0, source_limit=20, window=60.0)
    now = 0.0
    for source, user in attempts:
        now += 0.1
        if limiter.check(source, user, now) == 0.0:
            limiter.failure(source, user, now)
    # the real user's own source never failed, so it is never delayed
    assert limiter.check("192.0.2.7", "alice", now) == 0.0


def test_source_spraying_many_users_is_blocked():
    limiter = LoginRateLimiter(free_failures=100, source_limit=10, window=60.0)
    for n in range(10):
        limiter.failure("10.9.9.9", f"user{n}", float(n))
    assert limiter.check("10.9.9.9", "someone-new", 10.0) > 0
    assert limiter.check("10.9.9.9", "someone-new", 70.0) == 0.0


def test_memory_stays_bounded():
    limiter = LoginRateLimiter(max_entries=100, source_limit=5)
    for n in range(5000):
        limiter.failure(f"10.0.{n // 250}.{n % 250}", f"u{n}", float(n))
    stats = limiter.statistics()
    assert stats["tracked_pairs"] <= 100 and stats["tracked_sources"] <= 100


def test_listen_parsing_and_https_default(tmp_path):
    import pytest

    from engine import EventBus, HttpRouteRegistry, StartupError
    from engine._config import ConsoleSettings
    from engine.console import ConsoleServer, parse_listen

    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for bad in ("8080", "host:", "host:99999", "host:http"):
        with pytest.raises(StartupError):
            parse_listen(bad)

    def server(listen: str, https: bool | None = None) -> ConsoleServer:
        return ConsoleServer(None, EventBus(), None, ConsoleSettings(listen=listen, https=https), HttpRouteRegistry(),  # type: ignore[arg-type]
                             data_dir=tmp_path)

    assert server("127.0.0.1:0").https is False
    assert server("[::1]:0").https is False
    assert server("localhost:0").https is False
    assert server("0.0.0.0:8443").https is True
    assert server("192.0.2.10:8443").https is True
    assert server("0.0.0.0:8080", https=False).https is False
    assert server("127.0.0.1:0", https=True).https is True
