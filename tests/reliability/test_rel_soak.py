"""7. A bounded soak: many sync cycles of a changing library in one process.

Each cycle edits the library (every fourth cycle replaces one to three items and relabels
one, writing the three files; the others relabel or unlabel one item, writing the saved
items; the size stays put), reads the directory with `LibrarySource` (the I/O
half), plans the sync (`plan_sync`) against the retained state left by the previous cycle
and applies the plan (`apply_plan`). After a warm-up, resident memory may grow by less than
5 MB and the number of open file descriptors must not move.

One full `run_sync` against Mosquitto costs ~150 ms with a 1k-item library (mostly reading
2k retained messages back), too slow for 10k cycles in CI; and `plan_sync` itself renders
every entity each cycle (~20 ms at 1k items). So the CI size is: 10,000 cycles of a 20-item
library and 200 cycles of a 1,000-item library on the pure+I/O path, plus 120 `run_sync`
cycles against a real broker (a 100-item library, a new connection every 20 cycles), where
the asyncio tasks must stay flat too. RELIABILITY_SCALE multiplies the cycle counts;
RELIABILITY_SOAK_FULL=1 runs 10,000 cycles of the 1,000-item library (over 7 minutes).
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import time
from pathlib import Path

import pytest

from mosquitto import Mosquitto
from plans import apply_plan
from reliability_support import (
    CATEGORIES,
    broker_state,
    expected_state,
    library_from_files,
    make_library,
    open_fds,
    rss_bytes,
    scaled,
    service_settings,
    state_diff,
)
from spotify_to_plex_mqtt.core.discovery import Topics
from spotify_to_plex_mqtt.core.library import SAVED_ITEMS
from spotify_to_plex_mqtt.core.plan import plan_sync
from spotify_to_plex_mqtt.engine.sync import run_sync
from spotify_to_plex_mqtt.inputs.source import LibrarySource
from spotify_to_plex_mqtt.mqtt.session import BrokerSession

FULL = os.environ.get("RELIABILITY_SOAK_FULL", "") not in ("", "0")
RSS_LIMIT = 5 * 1024 * 1024
SIZES = [(20, scaled(10_000)), (1000, 10_000 if FULL else scaled(200))]


def _settled() -> tuple[int, int]:
    gc.collect()
    return rss_bytes(), open_fds()


@pytest.mark.parametrize(("items", "cycles"), SIZES, ids=[f"{i}-items" for i, _ in SIZES])
def test_pure_and_io_sync_path_stays_flat(items: int, cycles: int, tmp_path: Path) -> None:
    rng = random.Random(items)
    lib = make_library(tmp_path / "settings", items, seed=items).write()
    source = LibrarySource(lib.root)
    topics = Topics()
    actual: dict[str, bytes] = {}
    warmup = max(1, cycles // 10)
    started = time.monotonic()
    published = removed = 0
    for cycle in range(cycles):
        if cycle == warmup:
            rss_before, fds_before = _settled()
        if cycle % 4 == 0:
            lib.churn(rng.randint(1, 3))
            lib.write(atomic=cycle % 8 == 0)
        else:  # a relabel: only the saved items change
            rng.choice(lib.items)["label"] = rng.choice((*CATEGORIES, ""))
            lib.write(SAVED_ITEMS)
        snapshot = source.read()
        _, plan = plan_sync(topics, snapshot, actual)
        actual = apply_plan(actual, plan)
        published += len(plan.publish)
        removed += len(plan.clear)
    rss_after, fds_after = _settled()
    took = time.monotonic() - started
    # The last cycle's result is exactly the desired state of the files.
    assert state_diff(actual, expected_state(topics, library_from_files(lib.root)), topics) == {}
    growth = rss_after - rss_before
    print(f"\n[reliability] soak pure+I/O: {cycles} cycles of a {items}-item library "
          f"({len(lib.items)} at the end) in {took:.1f} s, {published} publishes and "
          f"{removed} clears planned, RSS {rss_before / 2**20:.1f} -> "
          f"{rss_after / 2**20:.1f} MiB ({growth / 2**20:+.2f} MiB), fds {fds_before} -> "
          f"{fds_after}")
    assert growth < RSS_LIMIT
    assert fds_after == fds_before


@pytest.mark.broker
async def test_real_broker_sync_path_stays_flat(fresh_mosquitto: Mosquitto,
                                                tmp_path: Path) -> None:
    broker = fresh_mosquitto
    cycles = scaled(120)
    per_connection = 20
    rng = random.Random(71)
    lib = make_library(tmp_path / "settings", 100, seed=71).write()
    source = LibrarySource(lib.root)
    topics = Topics()
    settings = service_settings(broker, lib.root)
    warmup = per_connection  # one whole connection, so that the counts compare like for like
    started = time.monotonic()
    published = 0
    session: BrokerSession | None = None
    try:
        for cycle in range(cycles):
            if cycle % per_connection == 0:
                if session is not None:
                    await session.__aexit__(None, None, None)
                    session = None
                if cycle == warmup:
                    await asyncio.sleep(0)  # let closed connections' tasks finish
                    rss_before, fds_before = _settled()
                    tasks_before = len(asyncio.all_tasks())
                session = await BrokerSession(settings.mqtt).__aenter__()
            assert session is not None
            lib.churn(rng.randint(1, 3))
            lib.write()
            result = await run_sync(session, topics, source.read())
            assert result.ok, result.errors
            published += result.published
    finally:
        if session is not None:
            await session.__aexit__(None, None, None)
    await asyncio.sleep(0)
    rss_after, fds_after = _settled()
    tasks_after = len(asyncio.all_tasks())
    took = time.monotonic() - started
    state = await asyncio.to_thread(broker_state, broker, topics)
    assert state_diff(state, expected_state(topics, library_from_files(lib.root)), topics) == {}
    growth = rss_after - rss_before
    print(f"\n[reliability] soak real broker: {cycles} run_sync cycles "
          f"({cycles // per_connection} connections) in {took:.1f} s, {published} messages "
          f"acknowledged, RSS {growth / 2**20:+.2f} MiB, fds {fds_before} -> {fds_after}, "
          f"tasks {tasks_before} -> {tasks_after}")
    assert growth < RSS_LIMIT
    assert fds_after == fds_before
    assert tasks_after == tasks_before
