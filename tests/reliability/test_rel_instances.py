"""9. Instances on one broker: other prefixes are left alone, a second instance on the same
prefix is refused, a dead one does not block the next, a stray `offline` is repaired.

Real Mosquitto, the real command line in subprocesses (or an in-process `Service`). The
oracle is the pure code (`expected_state` of each instance's files), compared topic by
topic with what an independent client reads; ownership is never judged by the code under
test (`Topics.is_ours`) here.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mosquitto import Mosquitto, publish_retained, retained
from reliability_support import (
    broker_env,
    cli_argv,
    cli_env,
    expected_state,
    library_from_files,
    make_library,
    running_service,
    service_settings,
)
from spotify_to_plex_mqtt.core.discovery import Topics
from spotify_to_plex_mqtt.modes.oneshot import one_shot
from spotify_to_plex_mqtt.settings.config import Settings, load_settings

pytestmark = pytest.mark.broker


def _missing(broker: Mosquitto, topics: Topics, root: Path) -> list[str]:
    """Topics of the instance's desired state that the broker lacks or holds otherwise
    (the bridge state, which carries a timestamp, only by presence)."""
    want = expected_state(topics, library_from_files(root))
    got = retained(broker, ["#"])
    return sorted(t for t, p in want.items() if t not in got or (
        t != topics.bridge_state and got[t] != p))


def _settings(broker: Mosquitto, root: Path, prefix: str) -> Settings:
    env = {**broker_env(broker), "MQTT_TOPIC_PREFIX": prefix}
    return load_settings(["--settings-dir", str(root), "--one-shot", "--no-http"], env)


@pytest.mark.parametrize("other", ["spotify-to-plex/kids", "spotify_to_plex"])
async def test_instances_with_overlapping_prefixes_keep_each_others_entities(
        clean_broker: Mosquitto, tmp_path: Path, other: str) -> None:
    # Two libraries, two prefixes, one broker: each run must leave the other's entities.
    first, second = tmp_path / "default", tmp_path / "other"
    make_library(first, 20, seed=1).write()
    make_library(second, 20, seed=2).write()
    default, others = Topics(), Topics(other)
    assert default.node_id != others.node_id  # else both publish the same config topics
    ran: list[tuple[Topics, Path]] = []
    for root, topics in [(first, default), (second, others)] * 2:
        assert await one_shot(_settings(clean_broker, root, topics.topic_prefix)) == 0
        ran.append((topics, root))
        # After every run, the entities of every instance that ran are there, intact.
        for instance, library in ran:
            assert _missing(clean_broker, instance, library) == [], instance


def _start_cli(broker: Mosquitto, root: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            cli_argv("--settings-dir", str(root), "--interval", "0", "--no-http",
                     "--debounce", "0.05", "--min-gap", "0.05", *args),
            env=cli_env(broker_env(broker)), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT)


async def _wait_status(broker: Mosquitto, topics: Topics, value: bytes,
                       deadline: float = 15.0) -> None:
    started = time.monotonic()
    while (got := (await asyncio.to_thread(retained, broker, [topics.status])).get(
            topics.status)) != value:
        if time.monotonic() - started > deadline:
            pytest.fail(f"status is {got!r}, not {value!r}, after {deadline} s")
        await asyncio.sleep(0.05)


async def _exit_code(process: subprocess.Popen[bytes], deadline: float) -> int | None:
    try:
        return await asyncio.to_thread(process.wait, deadline)
    except subprocess.TimeoutExpired:
        return None


@pytest.mark.parametrize("same_library", [False, True])
async def test_a_second_instance_on_the_same_prefix_is_refused(
        clean_broker: Mosquitto, tmp_path: Path, same_library: bool) -> None:
    topics = Topics()
    first = tmp_path / "first"
    make_library(first, 20, seed=1).write()
    second = first if same_library else tmp_path / "second"
    if not same_library:
        make_library(second, 20, seed=2).write()
    log = tmp_path / "second.log"
    async with running_service(service_settings(clean_broker, first)) as run:
        process = _start_cli(clean_broker, second, log)
        try:
            code = await _exit_code(process, 30.0)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        text = log.read_text()
        assert code == 2, f"the second instance did not stop with exit code 2:\n{text}"
        me = run.service.presence.me
        assert me.instance in text, text
        assert "MQTT_TOPIC_PREFIX" in text, text
        # The first instance's entities are intact and still available.
        assert _missing(clean_broker, topics, first) == []
        got = retained(clean_broker, [topics.status])
        assert got == {topics.status: b"online"}


async def test_a_stopped_or_crashed_instance_does_not_block_the_next(
        clean_broker: Mosquitto, tmp_path: Path) -> None:
    topics = Topics()
    root = tmp_path / "lib"
    make_library(root, 20, seed=3).write()
    timings = {}
    for ending in ("SIGTERM", "SIGKILL", "SIGKILL, then a stale online"):
        process = _start_cli(clean_broker, root, tmp_path / "first.log")
        await _wait_status(clean_broker, topics, b"online")
        process.send_signal(signal.SIGTERM if ending == "SIGTERM" else signal.SIGKILL)
        process.wait(timeout=15)
        await _wait_status(clean_broker, topics, b"offline")
        if ending.endswith("stale online"):
            # As after a broker that died with the instance: its Last Will was never sent.
            publish_retained(clean_broker, {topics.status: b"online"})
        started = time.monotonic()
        nxt = _start_cli(clean_broker, root, tmp_path / "next.log")
        try:
            await _wait_status(clean_broker, topics, b"online")
            owner = retained(clean_broker, [topics.owner])
            while json.loads(owner.get(topics.owner, b"{}")).get("pid") != nxt.pid:
                assert nxt.poll() is None, (tmp_path / "next.log").read_text()
                assert time.monotonic() - started < 20, "the next instance never took over"
                await asyncio.sleep(0.05)
                owner = retained(clean_broker, [topics.owner])
            timings[ending] = time.monotonic() - started
            assert _missing(clean_broker, topics, root) == []
        finally:
            nxt.send_signal(signal.SIGTERM)
            assert nxt.wait(timeout=15) == 0
    print(f"took over after: {timings}")


async def test_a_stray_offline_on_the_status_topic_is_repaired(
        clean_broker: Mosquitto, tmp_path: Path) -> None:
    topics = Topics()
    make_library(tmp_path, 10, seed=4).write()
    async with running_service(service_settings(clean_broker, tmp_path)) as run:
        for _ in range(3):
            publish_retained(clean_broker, {topics.status: b"offline"})  # by hand
            await _wait_status(clean_broker, topics, b"online", deadline=5.0)
        await run.wait_for(lambda: run.service.presence.repairs >= 3, "three repairs")
        assert run.service.status.healthy


async def test_two_instances_started_at_once_leave_one(
        clean_broker: Mosquitto, tmp_path: Path) -> None:
    # Both may find the prefix free; the one with the lower instance id keeps it.
    topics = Topics()
    roots = [tmp_path / "a", tmp_path / "b"]
    for seed, root in enumerate(roots):
        make_library(root, 20, seed=20 + seed).write()
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    processes = [_start_cli(clean_broker, root, log) for root, log in zip(roots, logs,
                                                                          strict=True)]
    try:
        started = time.monotonic()
        while sum(p.poll() is None for p in processes) > 1:
            assert time.monotonic() - started < 30, [log.read_text() for log in logs]
            await asyncio.sleep(0.05)
        survivor = next(i for i, p in enumerate(processes) if p.poll() is None)
        loser = processes[1 - survivor]
        assert loser.returncode == 2, logs[1 - survivor].read_text()
        await _wait_status(clean_broker, topics, b"online")
        owner = json.loads(retained(clean_broker, [topics.owner])[topics.owner])
        assert owner["pid"] == processes[survivor].pid
        # The survivor's library wins: its next sync (a file change) makes it whole.
        make_library(roots[survivor], 20, seed=20 + survivor).write()
        deadline = time.monotonic() + 15
        while _missing(clean_broker, topics, roots[survivor]):
            assert time.monotonic() < deadline, _missing(clean_broker, topics, roots[survivor])
            await asyncio.sleep(0.1)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=15)


async def test_a_one_shot_on_a_served_prefix_is_refused(
        clean_broker: Mosquitto, tmp_path: Path) -> None:
    topics = Topics()
    first, other = tmp_path / "first", tmp_path / "other"
    make_library(first, 20, seed=30).write()
    make_library(other, 20, seed=31).write()
    async with running_service(service_settings(clean_broker, first)) as run:
        # In a thread: the service under test runs in this loop and must answer the ping.
        done = await asyncio.to_thread(
            subprocess.run, cli_argv("--settings-dir", str(other), "--one-shot"),
            env=cli_env(broker_env(clean_broker)), capture_output=True, text=True, timeout=60,
            check=False)
        assert done.returncode == 2, done.stderr
        assert run.service.presence.me.instance in done.stderr
        assert _missing(clean_broker, topics, first) == []
