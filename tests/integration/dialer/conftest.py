"""The end-to-end dialer tests import their peer helpers (``dialer_peers``, ``baresip_agent``) by name."""

from __future__ import annotations

import sys
from pathlib import Path

# this folder (dialer_peers) and the SIP tests' folder (baresip_agent, the shared baresip plumbing)
for _helpers in (str(Path(__file__).resolve().parents[1] / "sip"), str(Path(__file__).resolve().parent)):
    if _helpers not in sys.path:
        sys.path.insert(0, _helpers)
