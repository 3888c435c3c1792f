"""One full sync in a fresh process, for the scaling curve (P7):
`python -m bench.worker --settings-dir DIR` with MQTT_BROKER_URL/MQTT_USERNAME/MQTT_PASSWORD
(and optionally PLEX_URL/PLEX_TOKEN) set. Prints one JSON line: times and memory.

Peak memory is the process's high-water RSS (`VmHWM` in /proc/self/status; not `ru_maxrss`,
which Linux carries over from the parent across fork+exec), so it includes the interpreter
and the imports (the high-water mark after the imports is reported as `baseline_mib`).
`--tracemalloc` adds the peak of Python allocations during the sync (slower).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

from spotify_to_plex_mqtt.public import (
    BrokerSession,
    LibrarySource,
    PlexLink,
    Topics,
    load_settings,
    run_sync,
)


def _max_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


async def _sync(settings_dir: Path) -> dict[str, Any]:
    settings = load_settings(["--settings-dir", str(settings_dir), "--no-http"], os.environ)
    started = time.perf_counter()
    snapshot = LibrarySource(settings.settings_dir).read()
    read = time.perf_counter()
    plex = PlexLink(settings.settings_dir, os.environ)
    try:
        async with BrokerSession(settings.mqtt) as session:
            result = await run_sync(session, Topics(), snapshot, plex)
            await session.set_status(True)
    finally:
        await plex.aclose()
    done = time.perf_counter()
    return {"seconds": done - started, "read_seconds": read - started,
            "entities": len(result.entities), "published": result.published,
            "errors": list(result.errors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settings-dir", type=Path, required=True)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()
    baseline = _max_rss_mib()
    if args.tracemalloc:
        tracemalloc.start()
    report = asyncio.run(_sync(args.settings_dir))
    if args.tracemalloc:
        report["tracemalloc_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    report["baseline_mib"] = baseline
    report["peak_rss_mib"] = _max_rss_mib()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
