from __future__ import annotations

import sys
from pathlib import Path

# Let the tests here import their shared builders (sip_sansio_helpers.py) by module name.
sys.path.insert(0, str(Path(__file__).resolve().parent))
