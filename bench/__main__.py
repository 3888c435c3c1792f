"""`python -m bench`: see bench/README.md; the orchestration lives in `bench/run.py`."""

from __future__ import annotations

from .run import main

raise SystemExit(main())
