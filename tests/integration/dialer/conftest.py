"""The end-to-end dialer tests import their peer helpers (``dialer_peers``) by name."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
