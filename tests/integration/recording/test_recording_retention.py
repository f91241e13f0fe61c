"""Retention of call recordings, as configured: ``[media] retention_days`` makes the running engine
delete recordings older than that (at start, then hourly) and keep newer ones and other files."""

from __future__ import annotations

import os
import time

from engine.testing import open_test_engine, wait_until


async def test_the_engine_deletes_recordings_past_the_retention_period(tmp_path):
    recordings = tmp_path / "recordings"
    (recordings / "2026-01").mkdir(parents=True)
    now = time.time()
    files = {
        "2026-01/1767225600-old-call.wav": 40,  # days old
        "1790000000-month-old.wav": 31,
        "1795000000-recent.wav": 2,
        "notes.txt": 90,
    }
    for name, age_days in files.items():
        path = recordings / name
        path.write_bytes(b"RIFF")
        os.utime(path, (now - age_days * 86400, now - age_days * 86400))
    async with open_test_engine("[media]\nretention_days = 30\n", data_dir=tmp_path) as engine:
        assert engine.recordings_dir == recordings
        await wait_until(lambda: not (recordings / "1790000000-month-old.wav").exists(), timeout=20)
        await wait_until(lambda: not (recordings / "2026-01/1767225600-old-call.wav").exists(), timeout=20)
        assert (recordings / "1795000000-recent.wav").exists()
        assert (recordings / "notes.txt").exists()  # only recordings are the policy's to delete
