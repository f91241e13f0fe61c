"""Media test setup: makes ``media_testkit`` importable under --import-mode=importlib; ``small_disk``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture
def small_disk(tmp_path):
    """A real filesystem that fills up: a 96 KiB tmpfs (the tests run as root, like the appliance's CI)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"mounting a small tmpfs for the full-disk test needs root: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
