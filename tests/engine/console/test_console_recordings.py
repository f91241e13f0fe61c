"""Recordings and voicemail pages against the real engine: search by date, queue, agent and caller
(through the CDR), audio served as audio/wav with byte ranges, downloads, roles, and hostile input
(path traversal, SQL metacharacters, XSS in names)."""

from __future__ import annotations

import calendar
import time
import wave
from pathlib import Path

import httpx

from engine.console import add_token
from engine.testing import open_test_engine

CONFIG = """
[[agents]]
id = "alice"

[[agents]]
id = "bob"

[[queues]]
name = "support"
members = ["alice", "bob"]

[[queues]]
name = "sales"
members = ["bob"]
"""


def _wav(path: Path, seconds: float = 0.5, value: int = 1000) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(int(value).to_bytes(2, "little", signed=True) * 2 * int(8000 * seconds))
    return path.read_bytes()


async def _cdr(store, uniqueid: str, *, src: str, queue: str, agent: str, start: float) -> None:
    await store.write(
        'INSERT INTO cdr(src, dst, dcontext, clid, dstchannel, start, "end", duration, billsec, disposition, uniqueid) '
        "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (src, "100", queue, f'"" <{src}>', agent, start, start + 60, 60, 42, "ANSWERED", uniqueid),
    )


async def test_search_play_and_download_recordings(tmp_path):
    async with open_test_engine(CONFIG, data_dir=tmp_path) as engine:
        rec = engine.recordings_dir
        day1 = calendar.timegm((2026, 11, 20, 10, 0, 0))
        day2 = day1 + 2 * 86400
        first = _wav(rec / "2026-11" / "call-a.wav")
        _wav(rec / "call-b.wav", value=-500)
        _wav(rec / "1795600000-call-c.wav")  # with a Unix-time prefix, as voicemail names its files
        (rec / "notes.txt").write_text("not audio")
        (rec / "outside.wav").symlink_to(tmp_path / "centralita.toml")
        await _cdr(engine.store, "call-a", src="+34911000111", queue="support", agent="alice", start=day1)
        await _cdr(engine.store, "call-b", src="+34600999888", queue="sales", agent="bob", start=day2)
        await _cdr(engine.store, "call-c", src="' OR 1=1 --", queue="support", agent="bob", start=day2)
        token = await add_token(engine.store, "sup", "supervisor")
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30, headers={"authorization": f"Bearer {token}"}) as client:
            every = (await client.get("/api/v1/recordings")).json()
            assert sorted(r["interaction"] for r in every) == ["call-a", "call-b", "call-c"]

            async def search(**query: str) -> list[str]:
                r = await client.get("/api/v1/recordings", params=query)
                assert r.status_code == 200, r.text
                return sorted(x["interaction"] for x in r.json())

            assert await search(queue="support") == ["call-a", "call-c"]
            assert await search(agent="bob") == ["call-b", "call-c"]
            assert await search(caller="600999") == ["call-b"]
            assert await search(since="2026-11-21") == ["call-b", "call-c"]
            assert await search(until="2026-11-20") == ["call-a"]
            assert await search(queue="support", agent="bob") == ["call-c"]
            # SQL metacharacters are just characters
            assert await search(caller="' OR 1=1 --") == ["call-c"]
            assert await search(queue="support' OR '1'='1") == []
            assert await search(caller="%") == [] and await search(caller="_") == []
            assert (await client.get("/api/v1/recordings", params={"since": "yesterday"})).status_code == 400
            assert (await client.get("/api/v1/recordings", params={"caller": "x" * 101})).status_code == 400

            a = next(r for r in every if r["interaction"] == "call-a")
            assert a["file"] == "2026-11/call-a.wav" and a["queue"] == "support" and a["agent"] == "alice"
            audio = await client.get("/api/v1/recordings/audio", params={"file": a["file"]})
            assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
            assert audio.content == first and audio.headers["accept-ranges"] == "bytes"
            part = await client.get("/api/v1/recordings/audio", params={"file": a["file"]}, headers={"range": "bytes=4-11"})
            assert part.status_code == 206 and part.content == first[4:12]
            assert part.headers["content-range"] == f"bytes 4-11/{len(first)}"
            tail = await client.get("/api/v1/recordings/audio", params={"file": a["file"]}, headers={"range": "bytes=-4"})
            assert tail.content == first[-4:]
            beyond = await client.get("/api/v1/recordings/audio", params={"file": a["file"]}, headers={"range": f"bytes={len(first)}-"})
            assert beyond.status_code == 416
            download = await client.get("/api/v1/recordings/audio", params={"file": a["file"], "download": "1"})
            assert download.headers["content-disposition"] == 'attachment; filename="call-a.wav"'
            for hostile in ("../centralita.toml", "../../etc/passwd", "/etc/passwd", "outside.wav", "notes.txt",
                            "2026-11/../../centralita.db", "call-a.wav\x00.wav", ""):
                r = await client.get("/api/v1/recordings/audio", params={"file": hostile})
                assert r.status_code == 404, hostile

        agent_token = await add_token(engine.store, "ag", "agent")
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30, headers={"authorization": f"Bearer {agent_token}"}) as agent:
            assert (await agent.get("/api/v1/recordings")).status_code == 403
            assert (await agent.get("/api/v1/recordings/audio", params={"file": a["file"]})).status_code == 403


async def test_recordings_and_voicemail_pages_escape_names(tmp_path):
    async with open_test_engine(CONFIG, data_dir=tmp_path) as engine:
        xss = '<img src=x onerror=alert(1)>'
        _wav(engine.recordings_dir / "call-x.wav")
        await _cdr(engine.store, "call-x", src=xss, queue="support", agent="alice", start=time.time())
        await engine.store.write(
            "INSERT INTO voicemail (id, box, caller, caller_name, interaction, created, seconds, file) VALUES (?,?,?,?,?,?,?,?)",
            ("m1", "support", "+34911", xss, "i1", time.time(), 3.0, "voicemail/support/m1.wav"),
        )
        _wav(tmp_path / "voicemail" / "support" / "m1.wav")
        from engine.console import add_user

        one_time = await add_user(engine.store, "sup", "supervisor")
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30) as browser:
            r = await browser.post("/api/v1/login", json={"user": "sup", "password": one_time})
            await browser.post("/api/v1/password", json={"current": one_time, "new": "a long new password"},
                               headers={"x-csrf-token": r.json()["csrf"]})
            page = await browser.get("/recordings", params={"caller": xss})
            assert page.status_code == 200
            assert "<img src=x" not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
            assert '<audio controls preload="none" src="/api/v1/recordings/audio?file=call-x.wav">' in page.text
            vm = await browser.get("/voicemail", params={"box": "support"})
            assert vm.status_code == 200 and "<img src=x" not in vm.text
            assert 'src="/api/v1/voicemail/m1/audio"' in vm.text
            assert (await browser.get("/voicemail", params={"since": "<script>"})).status_code == 400
