"""Benchmark of spotify-to-plex-mqtt against a real Mosquitto: `python -m bench`.

The benchmark always measures the source tree it sits in: `src/` goes first on `sys.path`
(and on PYTHONPATH for the processes it starts), whatever copy an editable install points
at. The suite's support code (`tests/support/`) follows, so that the benchmark reuses the test
suite's broker runner (`mosquitto.py`) and Plex stand-in (`plex_standin.py`).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
TESTS = REPO / "tests" / "support"

for _path in (TESTS, SRC):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
if "spotify_to_plex_mqtt" in sys.modules and not str(
        sys.modules["spotify_to_plex_mqtt"].__file__).startswith(str(SRC)):
    raise ImportError("spotify_to_plex_mqtt was imported from another copy before bench")
