"""The configuration editor against the real engine: check with FILE:LINE problems, diff, apply
(reload: a queue appears, the waiting caller keeps its place), history with who/when, roll back,
roles, CSRF, size limits, hostile text."""

from __future__ import annotations

import os

import httpx

from engine import InteractionState, hookimpl
from engine.console import add_token, add_user
from engine.testing import FakeVoiceChannel, open_test_engine, wait_until

CONFIG = """
[[agents]]
id = "alice"
endpoint = "fake:alice"

[[queues]]
name = "support"
members = ["alice"]

[[routes]]
match = "100"
queue = "support"
"""


class VoiceChannel:
    @hookimpl
    def centralita_register_channels(self, registry):
        registry.add("fake", FakeVoiceChannel)


async def _client(engine, role: str = "admin") -> httpx.AsyncClient:
    token = await add_token(engine.store, f"t-{role}", role)
    return httpx.AsyncClient(base_url=engine.console.url, timeout=30, headers={"authorization": f"Bearer {token}"})


def _config_path(engine):
    return engine.config.source


async def test_check_reports_problems_at_their_line_and_changes_nothing(tmp_path):
    async with open_test_engine(CONFIG, data_dir=tmp_path) as engine:
        before = _config_path(engine).read_text()
        async with await _client(engine) as client:
            text = (await client.get("/api/v1/config")).json()["text"]
            assert text == before
            bad = text + '\n[[queues]]\nname = "sales"\nstrategy = "longest-idel"\ntimeout = "soon"\n'
            bad_lines = bad.splitlines()
            r = await client.post("/api/v1/config/check", json={"text": bad})
            assert r.status_code == 422
            problems = r.json()["problems"]
            by_path = {p["message"].split(":")[0]: p for p in problems}
            assert "queues[1].timeout" in by_path, problems
            timeout = by_path["queues[1].timeout"]
            assert timeout["file"] == str(_config_path(engine))  # the real file, not the temporary candidate
            assert bad_lines[timeout["line"] - 1] == 'timeout = "soon"'
            # a TOML syntax error is reported at its line too
            r = await client.post("/api/v1/config/check", json={"text": text + "\n[[queues]\n"})
            (syntax,) = r.json()["problems"]
            assert "TOML syntax error" in syntax["message"] and syntax["line"] == len(text.splitlines()) + 2
            # a valid edit: no problems, and the diff shows the change
            good = text.replace('name = "support"', 'name = "support"\ntimeout = 7')
            r = await client.post("/api/v1/config/check", json={"text": good})
            assert r.status_code == 200 and r.json()["ok"]
            assert "+timeout = 7" in r.json()["diff"]
            # applying a broken text is refused and the file is untouched
            r = await client.put("/api/v1/config", json={"text": bad})
            assert r.status_code == 422 and r.json()["problems"]
        assert _config_path(engine).read_text() == before
        assert not [p for p in os.listdir(_config_path(engine).parent) if ".candidate-" in p or ".saving-" in p]


async def test_apply_reloads_without_dropping_the_waiting_call_and_rolls_back(tmp_path):
    async with open_test_engine(CONFIG, plugins=[VoiceChannel()], data_dir=tmp_path) as engine:
        call = engine.channels["fake"].call("+34911000111", "100")  # alice is not registered: the caller waits
        await wait_until(lambda: call.state is InteractionState.QUEUED)
        async with await _client(engine) as client:
            info = (await client.get("/api/v1/config")).json()
            original = info["text"]
            new = original + '\n[[queues]]\nname = "sales"\nmembers = ["alice"]\n\n[media]\nlanguage = "es"\n'
            r = await client.put("/api/v1/config", json={"text": new, "base_sha256": info["sha256"]})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["applied"] and body["version"]["user"] == "t-admin"
            assert body["restart_needed"] == ["media"]  # queues apply at once; [media] waits for a restart
            assert {q["name"] for q in engine.list_queues()} == {"support", "sales"}
            assert _config_path(engine).read_text() == new
            # the caller who was waiting is still waiting, in the same queue
            assert call.state is InteractionState.QUEUED and call.queue == "support"
            # an editor that started from the old text cannot overwrite this change
            r = await client.put("/api/v1/config", json={"text": original, "base_sha256": info["sha256"]})
            assert r.status_code == 409
            versions = (await client.get("/api/v1/config/versions")).json()
            assert [v["note"] for v in versions] == ["edited in the console", "before the console edit"]
            first = versions[-1]["version"]
            assert (await client.get(f"/api/v1/config/versions/{first}")).json()["text"] == original
            r = await client.post(f"/api/v1/config/versions/{first}/rollback")
            assert r.status_code == 200 and r.json()["applied"]
            assert [q["name"] for q in engine.list_queues()] == ["support"]
            assert _config_path(engine).read_text() == original
            assert (await client.get("/api/v1/config/versions/999")).status_code == 404
            assert (await client.post("/api/v1/config/versions/..%2f..%2fetc/rollback")).status_code == 404


async def test_history_is_bounded(tmp_path, monkeypatch):
    import engine.console._config_admin as admin_module

    monkeypatch.setattr(admin_module, "MAX_VERSIONS", 3)
    async with open_test_engine(CONFIG, data_dir=tmp_path) as engine, await _client(engine) as client:
        text = (await client.get("/api/v1/config")).json()["text"]
        for n in range(5):
            r = await client.put("/api/v1/config", json={"text": text + f"\n# edit {n}\n"})
            assert r.status_code == 200
        versions = (await client.get("/api/v1/config/versions")).json()
        assert [v["version"] for v in versions] == [6, 5, 4]  # the first (file on disk) and 5 edits, 3 kept
        assert len(list((tmp_path / "config-history").iterdir())) == 6  # a .toml and a .json each


async def test_roles_csrf_and_hostile_bodies(tmp_path):
    async with open_test_engine(CONFIG, data_dir=tmp_path) as engine:
        before = _config_path(engine).read_text()
        async with await _client(engine, "supervisor") as supervisor:
            assert (await supervisor.get("/api/v1/config")).status_code == 403
            assert (await supervisor.put("/api/v1/config", json={"text": ""})).status_code == 403
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30) as anonymous:
            assert (await anonymous.get("/api/v1/config")).status_code == 401
            r = await anonymous.get("/config")
            assert r.status_code == 303 and r.headers["location"].startswith("/login")
        # a cookie session without the CSRF token may not apply anything
        one_time = await add_user(engine.store, "tech", "admin")
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30) as browser:
            r = await browser.post("/api/v1/login", json={"user": "tech", "password": one_time})
            csrf = r.json()["csrf"]
            await browser.post("/api/v1/password", json={"current": one_time, "new": "a long new password"},
                               headers={"x-csrf-token": csrf})
            r = await browser.put("/api/v1/config", json={"text": before + "\n# csrf\n"})
            assert r.status_code == 403
            r = await browser.post("/config", data={"text": before + "\n# csrf\n", "action": "apply"})
            assert r.status_code == 403
        async with await _client(engine) as client:
            for body in ({"text": 5}, {"text": ["a"]}, {"text": None}, {}, {"text": "x", "base_sha256": 3}):
                r = await client.put("/api/v1/config", json=body)
                assert r.status_code == 400, body
            assert (await client.put("/api/v1/config", content=b"[1,2]")).status_code == 400
            assert (await client.put("/api/v1/config", content=b"{nope")).status_code == 400
            r = await client.put("/api/v1/config", json={"text": "# " + "x" * (300 * 1024)})
            assert r.status_code == 413
            r = await client.post("/api/v1/config/check", json={"text": "a = 1\x00"})
            assert r.status_code == 400
            r = await client.post("/api/v1/config/check", content=b'{"text": "\\ud800"}',
                                  headers={"content-type": "application/json"})
            assert r.status_code == 400
        assert _config_path(engine).read_text() == before


async def test_the_page_marks_the_line_and_escapes_the_text(tmp_path):
    async with open_test_engine(CONFIG, data_dir=tmp_path) as engine:
        one_time = await add_user(engine.store, "tech", "admin")
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30) as browser:
            r = await browser.post("/api/v1/login", json={"user": "tech", "password": one_time})
            r = await browser.post("/api/v1/password", json={"current": one_time, "new": "a long new password"},
                                   headers={"x-csrf-token": r.json()["csrf"]})
            csrf = r.json()["csrf"]
            text = _config_path(engine).read_text()
            hostile = text + '\n# </textarea><script>alert(1)</script>\n[[queues]]\nname = "<img src=x onerror=alert(1)>"\ntimeout = -1\n'
            r = await browser.post("/config", data={"text": hostile, "action": "check", "csrf_token": csrf})
            assert r.status_code == 422
            assert "<script>alert(1)" not in r.text and "<img src=x" not in r.text
            assert "&lt;/textarea&gt;&lt;script&gt;" in r.text
            line = hostile.splitlines().index("timeout = -1") + 1
            assert f'id="line-{line}" class="error"' in r.text
            assert f'href="#line-{line}"' in r.text


async def test_drop_ins_are_checked_with_the_main_file_and_named_in_their_own_problems(tmp_path):
    (tmp_path / "conf.d").mkdir()
    drop_in = tmp_path / "conf.d" / "sales.toml"
    drop_in.write_text('[[queues]]\nname = "sales"\nmembers = ["alice"]\n')
    async with open_test_engine(CONFIG, data_dir=tmp_path) as engine:
        assert {q["name"] for q in engine.list_queues()} == {"support", "sales"}
        async with await _client(engine) as client:
            info = (await client.get("/api/v1/config")).json()
            assert info["conf_d"] == [str(drop_in)]
            # the main file may now refer to what the drop-in defines...
            text = info["text"] + '\n[[routes]]\nmatch = "200"\nqueue = "sales"\n'
            assert (await client.post("/api/v1/config/check", json={"text": text})).json()["ok"]
            # ...and a drop-in's own problem is reported in the drop-in, at its line
            drop_in.write_text('[[queues]]\nname = "sales"\nmembers = ["alice"]\nwrapup = "long"\n')
            problems = (await client.post("/api/v1/config/check", json={"text": text})).json()["problems"]
            assert [(p["file"], p["line"]) for p in problems] == [(str(drop_in), 4)]
        assert drop_in.read_text().endswith('wrapup = "long"\n')  # never written by the console


async def test_a_reload_the_engine_refuses_puts_the_previous_file_back(tmp_path, monkeypatch):
    async with open_test_engine(CONFIG, data_dir=tmp_path) as engine, await _client(engine) as client:
        before = _config_path(engine).read_text()

        def refuse(config):
            raise RuntimeError("simulated failure inside reload")

        monkeypatch.setattr(engine, "reload", refuse)
        r = await client.put("/api/v1/config", json={"text": before + "\n# changed\n"})
        assert r.status_code == 409 and "put back" in r.json()["error"]
        assert _config_path(engine).read_text() == before
