"""2. The service process is killed (SIGKILL) in the middle of its first sync, then restarted.

`python -m spotify_to_plex_mqtt` publishes a 3k-item library (6k+ retained messages); an
independent client kills it when the first item message reaches the broker. The broker's
Last Will must then mark the service `offline`; the library is edited while the service is
dead (some half-published items are removed, others added); the restarted service must
converge to the desired state of the files, with status `online`, and SIGTERM must end it
with exit code 0 and status `offline`. No ledger was ever written: the broker is the truth.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from mosquitto import Mosquitto, collect, retained
from reliability_support import (
    broker_env,
    cli_argv,
    cli_env,
    expected_state,
    library_from_files,
    make_library,
    scaled,
    state_diff,
    wait_converged,
)
from spotify_to_plex_mqtt.core.discovery import Topics
from spotify_to_plex_mqtt.core.library import LEDGER

pytestmark = pytest.mark.broker

LIBRARY = scaled(3000)


def start_service(broker: Mosquitto, settings_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            cli_argv("--settings-dir", str(settings_dir), "--interval", "0", "--no-http",
                     "--debounce", "0.05", "--min-gap", "0.05"),
            env=cli_env(broker_env(broker)), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT)


async def wait_status(broker: Mosquitto, topics: Topics, value: bytes,
                      deadline: float = 15.0) -> float:
    started = time.monotonic()
    while True:
        got = await asyncio.to_thread(retained, broker, (topics.status,))
        if got.get(topics.status) == value:
            return time.monotonic() - started
        if time.monotonic() - started > deadline:
            pytest.fail(f"status is {got.get(topics.status)!r}, not {value!r}, "
                        f"after {deadline} s")
        await asyncio.sleep(0.05)


async def test_service_killed_mid_sync_then_restarted(fresh_mosquitto: Mosquitto,
                                                      tmp_path: Path) -> None:
    broker = fresh_mosquitto
    topics = Topics()
    lib = make_library(tmp_path / "settings", LIBRARY, seed=21).write()
    log = tmp_path / "service.log"
    process: subprocess.Popen[bytes] | None = None
    kill_at: list[float] = []

    def start_then_kill_at_first_item() -> None:
        nonlocal process

        def spawn() -> None:
            nonlocal process
            process = start_service(broker, lib.root, log)

        collect(broker, f"{topics.topic_prefix}/items/#", bool, timeout=60.0, qos=0,
                after_subscribe=spawn)
        assert process is not None
        process.kill()
        kill_at.append(time.monotonic())
        process.wait(10)

    try:
        await asyncio.to_thread(start_then_kill_at_first_item)
        assert process is not None
        assert process.returncode == -9
        offline_after = await wait_status(broker, topics, b"offline")
        # It was cut off: only part of the library reached the broker.
        partial = {t: p for t, p in (await asyncio.to_thread(retained, broker)).items()
                   if topics.is_ours(t, p)}
        published_items = sum(t.startswith(topics.item_state("")) for t in partial)
        assert published_items < LIBRARY, "the kill came after the whole sync"
        assert not (lib.root / LEDGER).exists()

        # Edit while it is dead: drop some items (some of them are on the broker), add some.
        for item in lib.items[: LIBRARY // 10]:
            lib.remove(item["id"])
        lib.add_many(LIBRARY // 20)
        lib.write()

        process = start_service(broker, lib.root, log)
        state, took = await wait_converged(
            broker, topics, lambda: expected_state(topics, library_from_files(lib.root)),
            deadline=60.0)
        assert state_diff(state, expected_state(topics, library_from_files(lib.root)),
                          topics) == {}
        process.terminate()
        code = await asyncio.to_thread(process.wait, 15)
        assert code == 0, log.read_text()
        await wait_status(broker, topics, b"offline", deadline=5.0)
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)
    print(f"\n[reliability] service SIGKILL mid-sync: {published_items} of {LIBRARY} items "
          f"on the broker at the kill, Last Will offline after {offline_after:.2f} s, "
          f"restart converged ({len(lib.items)} items) in {took:.2f} s; lost 0, ghosts 0")
