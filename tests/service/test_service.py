"""The long-running service against a real Mosquitto.

Most tests run `Service` in-process as an asyncio task and watch its event bus; the signal
tests run `python -m spotify_to_plex_mqtt` as a subprocess. Nothing synchronises by
sleeping: every wait is for an event, a message, a process exit or (for state of another
component) a polled condition, always with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest
import watchfiles

from mosquitto import Mosquitto, collect, connected_client, publish_retained, retained
from plex_standin import PlexStandIn
from spotify_to_plex_mqtt.core.discovery import Topics
from spotify_to_plex_mqtt.core.entities import item_slug
from spotify_to_plex_mqtt.core.library import LEDGER, PLAYLISTS, SAVED_ITEMS, TRACK_LINKS
from spotify_to_plex_mqtt.core.plan import plan_sync
from spotify_to_plex_mqtt.engine.events import (
    Connected,
    Disconnected,
    Event,
    EventBus,
    FileChanged,
    FileError,
    FileRecovered,
    SyncFinished,
    SyncStarted,
)
from spotify_to_plex_mqtt.inputs import inotify
from spotify_to_plex_mqtt.inputs.source import LibrarySource
from spotify_to_plex_mqtt.service.service import Service
from spotify_to_plex_mqtt.settings.config import Settings, load_settings

pytestmark = pytest.mark.broker

T = TypeVar("T")
E = TypeVar("E", bound=Event)
Write = Literal["atomic", "in_place"]

DEBOUNCE = 0.3
GRACE = 5.0

# -- the settings directory -------------------------------------------------------------------


def _saved_items(labels: Mapping[str, str]) -> bytes:
    return json.dumps([
        {"type": "spotify-playlist", "uri": f"spotify:playlist:{item_id}", "id": item_id,
         "title": f"Playlist {item_id}", "image": "", "label": label, "user": "demo"}
        for item_id, label in labels.items()
    ], indent=2).encode()


def _playlists(ids: list[str]) -> bytes:
    return json.dumps({"data": [
        {"type": "spotify-playlist", "id": item_id, "plex": str(1001 + n)}
        for n, item_id in enumerate(ids)
    ]}).encode()


def write_file(path: Path, data: bytes, how: Write = "atomic") -> None:
    """Replace `path` by rename (as the app does for playlists.json) or rewrite it in place
    (as it does for the saved items)."""
    if how == "in_place":
        with path.open("wb") as handle:
            handle.write(data)
        return
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_library(directory: Path, labels: Mapping[str, str], how: Write = "atomic") -> None:
    """All three input files; every id is a Spotify playlist with a Plex playlist."""
    directory.mkdir(parents=True, exist_ok=True)
    write_file(directory / PLAYLISTS, _playlists(sorted(labels)), how)
    write_file(directory / TRACK_LINKS, b"[]", how)
    write_file(directory / SAVED_ITEMS, _saved_items(labels), how)


def write_labels(directory: Path, labels: Mapping[str, str], how: Write = "in_place") -> None:
    write_file(directory / SAVED_ITEMS, _saved_items(labels), how)


# -- settings, broker views ---------------------------------------------------------------------


def broker_env(broker: Mosquitto, prefix: str, discovery: str) -> dict[str, str]:
    return {
        "MQTT_BROKER_URL": broker.url,
        "MQTT_USERNAME": broker.username,
        "MQTT_PASSWORD": broker.password,
        "MQTT_TOPIC_PREFIX": prefix,
        "MQTT_DISCOVERY_PREFIX": discovery,
    }


def unique_prefixes() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"svc-{tag}", f"ha-{tag}"


def service_settings(broker: Mosquitto, directory: Path, *, prefix: str | None = None,
                     discovery: str | None = None, **overrides: Any) -> Settings:
    own_prefix, own_discovery = unique_prefixes()
    env = broker_env(broker, prefix or own_prefix, discovery or own_discovery)
    settings = load_settings(["--settings-dir", str(directory), "--debounce", str(DEBOUNCE),
                              "--min-gap", "0", "--interval", "0", "--no-http"], env)
    return dataclasses.replace(settings, **overrides)


def topics_of(settings: Settings) -> Topics:
    return Topics(settings.mqtt.topic_prefix, settings.mqtt.discovery_prefix)


def ours(broker: Mosquitto, settings: Settings) -> dict[str, bytes]:
    """The retained messages under our prefixes, without the availability topic and the
    owner record (see `presence`)."""
    topics = topics_of(settings)
    found = retained(broker, [f"{topics.topic_prefix}/#", f"{topics.discovery_prefix}/#"])
    found.pop(topics.status, None)
    found.pop(topics.owner, None)
    return found


async def ours_async(broker: Mosquitto, settings: Settings) -> dict[str, bytes]:
    return await asyncio.to_thread(ours, broker, settings)


async def assert_in_step(broker: Mosquitto, settings: Settings) -> dict[str, bytes]:
    """The broker holds what the files say (no Plex configured here: no artwork), checked
    with the project's own pure planner: nothing to publish, nothing to clear."""
    actual = await ours_async(broker, settings)
    snapshot = LibrarySource(settings.settings_dir).read()
    _, plan = plan_sync(topics_of(settings), snapshot, actual, bridge=settings.bridge_entities)
    assert [t for t, _ in plan.publish] == [], "retained messages differ from the files"
    assert list(plan.clear) == [], "retained messages that should be gone"
    return actual


def label_of(payload: bytes) -> str | None:
    if not payload:
        return None
    category = json.loads(payload).get("category")
    return category if isinstance(category, str) else None


def state_topic(settings: Settings, item_id: str) -> str:
    return topics_of(settings).item_state(item_slug(item_id))


async def time_until_label(broker: Mosquitto, topic: str, label: str,
                           write: Callable[[], None], within: float = 10.0) -> float:
    """Seconds from `write()` to `topic` carrying `label`, watched by a subscriber."""
    times: dict[str, float] = {}

    def after_subscribe() -> None:
        times["write"] = time.monotonic()
        write()

    def until(messages: list[tuple[str, bytes]]) -> bool:
        if any(label_of(payload) == label for _, payload in messages):
            times.setdefault("seen", time.monotonic())
            return True
        return False

    await asyncio.to_thread(collect, broker, topic, until, within,
                            after_subscribe=after_subscribe)
    return times["seen"] - times["write"]


def publish(broker: Mosquitto, topic: str, payload: bytes, *, retain: bool = False) -> None:
    with connected_client(broker) as client:
        client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5.0)


# -- the in-process service ---------------------------------------------------------------------


class Harness:
    """A `Service` running as a task, with every event it emitted, and ways to wait."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = topics_of(settings)
        self.events: list[Event] = []
        self._changed = asyncio.Event()
        bus = EventBus()
        bus.listen(self._record)
        self.service = Service(settings, bus)
        self.task: asyncio.Task[int] = asyncio.create_task(self.service.run())
        self._stopped = False

    def _record(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    def mark(self) -> int:
        return len(self.events)

    def of(self, kind: type[E], since: int = 0) -> list[E]:
        return [e for e in self.events[since:] if isinstance(e, kind)]

    def syncs(self, since: int = 0) -> list[SyncFinished]:
        return self.of(SyncFinished, since)

    def describe(self) -> str:
        return "\n  ".join(repr(e) for e in self.events)

    async def until(self, predicate: Callable[[], T | None], what: str,
                    within: float = 10.0) -> T:
        """Wait until `predicate()` is not None (re-checked on every event)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            found = predicate()
            if found is not None:
                return found
            if self.task.done():
                raise AssertionError(f"the service ended while waiting for {what}: "
                                     f"{self.task!r}\n  {self.describe()}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no {what} within {within} s; events:\n  "
                                     f"{self.describe()}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def sync(self, reason: str, since: int = 0, within: float = 10.0,
                   where: Callable[[SyncFinished], bool] = lambda _: True) -> SyncFinished:
        """The first sync (after event `since`) answering `reason` for which `where` holds."""
        def found() -> SyncFinished | None:
            return next((s for s in self.syncs(since) if reason in s.reasons and where(s)),
                        None)
        return await self.until(found, f"sync for {reason!r} after event #{since}", within)

    async def started(self) -> SyncFinished:
        """The first sync is done and the watcher watches."""
        first = await self.sync("start")
        await asyncio.wait_for(self.service.watcher.ready.wait(), 5.0)
        return first

    async def probe(self) -> SyncFinished:
        """One more sync, requested with a 1 s delay; a stray trigger would join it."""
        since = self.mark()
        self.service.request_sync("probe", delay=1.0)
        return await self.sync("probe", since)

    @property
    def stopped(self) -> bool:
        return self._stopped

    async def stop(self) -> int:
        """Stop the service (once) and return what `run()` returned."""
        if not self._stopped:
            self._stopped = True
            self.service.stop("test")
        return await asyncio.wait_for(asyncio.shield(self.task), GRACE + 10.0)


@pytest.fixture
async def start_service() -> AsyncIterator[Callable[[Settings], Harness]]:
    harnesses: list[Harness] = []

    def start(settings: Settings) -> Harness:
        harness = Harness(settings)
        harnesses.append(harness)
        return harness

    yield start
    for harness in harnesses:
        if not harness.stopped:
            await harness.stop()


@pytest.fixture(autouse=True)
def _no_plex_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PLEX_URL", "PLEX_TOKEN", "PLEX_VERIFY_TLS"):
        monkeypatch.delenv(name, raising=False)


Start = Callable[[Settings], Harness]

# -- file changes -------------------------------------------------------------------------------


@pytest.mark.parametrize("poll", [False, True], ids=["inotify", "poll"])
@pytest.mark.parametrize("how", ["atomic", "in_place"])
async def test_an_edit_is_republished_within_the_debounce_plus_1_s(
        mosquitto: Mosquitto, tmp_path: Path, start_service: Start, how: Write,
        poll: bool) -> None:
    write_library(tmp_path, {"jazz1": "Jazz", "rock1": "Rock"})
    # The files were written 10 s ago: the edit is in another second than the last write
    # (a write in the same second has its own test below).
    for name in (SAVED_ITEMS, PLAYLISTS, TRACK_LINKS):
        then = time.time() - 10
        os.utime(tmp_path / name, (then, then))
    h = start_service(service_settings(mosquitto, tmp_path, poll=poll))
    await h.started()
    since = h.mark()

    elapsed = await time_until_label(
        mosquitto, state_topic(h.settings, "jazz1"), "Blues",
        lambda: write_labels(tmp_path, {"jazz1": "Blues", "rock1": "Rock"}, how))

    assert elapsed <= DEBOUNCE + 1.0, f"republished {elapsed:.2f} s after the write"
    synced = await h.sync("file", since)
    assert synced.published >= 2  # at least the item's state and the categories
    await assert_in_step(mosquitto, h.settings)


@pytest.mark.parametrize("poll", [False, True], ids=["inotify", "poll"])
async def test_a_rewrite_in_the_same_second_as_the_last_one_is_seen(
        mosquitto: Mosquitto, tmp_path: Path, start_service: Start, poll: bool) -> None:
    # Two writes of a file within one second: on a loaded host or a mount with coarse
    # timestamps both carry the same whole-second mtime. Made deterministic by giving the
    # rewritten file its previous mtime plus 1 ns, as such a write would have.
    write_library(tmp_path, {"jazz1": "Jazz", "rock1": "Rock"})
    h = start_service(service_settings(mosquitto, tmp_path, poll=poll))
    await h.started()
    path = tmp_path / SAVED_ITEMS
    previous = path.stat()
    since = h.mark()

    write_labels(tmp_path, {"jazz1": "Blues", "rock1": "Rock"})
    os.utime(path, ns=(previous.st_atime_ns, previous.st_mtime_ns + 1))

    await h.sync("file", since, within=DEBOUNCE + 3.0)
    state = (await ours_async(mosquitto, h.settings))[state_topic(h.settings, "jazz1")]
    assert label_of(state) == "Blues"


async def test_a_burst_of_50_writes_gives_one_sync(
        mosquitto: Mosquitto, tmp_path: Path, start_service: Start) -> None:
    write_library(tmp_path, {"jazz1": "Jazz", "rock1": "Rock"})
    # A 1 s debounce: the coalescing window, wide enough for a slow machine's burst.
    h = start_service(service_settings(mosquitto, tmp_path, debounce=1.0))
    await h.started()
    since = h.mark()

    def burst() -> None:
        for n in range(50):
            write_labels(tmp_path, {"jazz1": f"Label {n}", "rock1": "Rock"},
                         "atomic" if n % 2 else "in_place")
            time.sleep(0.004)  # pacing of the stimulus (about 0.2 s in all), not a wait

    await asyncio.to_thread(burst)
    synced = await h.sync("file", since)
    probe = await h.probe()

    assert probe.reasons == ("probe",)
    file_syncs = [s for s in h.syncs(since) if "file" in s.reasons]
    assert file_syncs == [synced], h.describe()
    state = (await ours_async(mosquitto, h.settings))[state_topic(h.settings, "jazz1")]
    assert label_of(state) == "Label 49"


async def test_a_change_during_a_sync_gives_exactly_one_more_sync(
        mosquitto: Mosquitto, tmp_path: Path, start_service: Start) -> None:
    # The first sync is held honestly: Plex (a stand-in over HTTP) does not answer until
    # released, and a sync fetches artwork while it reads the broker.
    labels = {"jazz1": "Jazz", "rock1": "Rock"}
    write_library(tmp_path, labels)
    async with PlexStandIn(playlists={"1001": "/thumb/1001", "1002": "/thumb/1002"}) as plex:
        write_file(tmp_path / "plex.json", json.dumps(
            {"uri": plex.url, "token": plex.token, "id": plex.machine_id}).encode())
        plex.hang()
        h = start_service(service_settings(mosquitto, tmp_path))
        first = await h.until(lambda: next(iter(h.of(SyncStarted)), None), "the first sync")
        assert first.reasons == ("start",)
        await asyncio.wait_for(h.service.watcher.ready.wait(), 5.0)

        since = h.mark()
        write_labels(tmp_path, {**labels, "jazz1": "Blues"})
        await h.until(lambda: next(iter(h.of(FileChanged, since)), None), "the file change")
        assert h.syncs() == [], "the first sync should still be held by Plex"
        assert h.service.status.syncing
        plex.release()

        second = await h.sync("file")
        probe = await h.probe()
        assert [s.reasons for s in h.syncs()] == [("start",), ("file",), ("probe",)]
        assert [s.id for s in h.syncs()] == [first.id, first.id + 1, first.id + 2]
        assert second.published >= 1
        state = (await ours_async(mosquitto, h.settings))[state_topic(h.settings, "jazz1")]
        assert label_of(state) == "Blues"
        assert json.loads(state)["thumb"].endswith("/thumb/1001")
        assert probe.published == 0
        await h.stop()


async def test_files_created_after_start_are_picked_up(
        mosquitto: Mosquitto, tmp_path: Path, start_service: Start) -> None:
    directory = tmp_path / "settings"
    directory.mkdir()
    h = start_service(service_settings(mosquitto, directory))
    first = await h.started()
    assert first.entities == 0
    assert {e.file for e in h.of(FileError)} == {SAVED_ITEMS, PLAYLISTS, TRACK_LINKS}
    since = h.mark()

    write_library(directory, {"jazz1": "Jazz", "rock1": "Rock"})

    await h.sync("file", since, where=lambda s: s.entities == 2)
    assert {e.file for e in h.of(FileRecovered, since)} == {SAVED_ITEMS, PLAYLISTS, TRACK_LINKS}
    await assert_in_step(mosquitto, h.settings)


@pytest.mark.parametrize("depth", [1, 3])
async def test_a_settings_directory_created_after_start_is_picked_up(
        mosquitto: Mosquitto, tmp_path: Path, start_service: Start, depth: int) -> None:
    directory = tmp_path.joinpath(*[f"level{n}" for n in range(depth - 1)], "settings")
    h = start_service(service_settings(mosquitto, directory))
    await h.started()
    assert not directory.exists()
    since = h.mark()

    write_library(directory, {"jazz1": "Jazz", "rock1": "Rock"})

    await h.sync("file", since, where=lambda s: s.entities == 2)
    await assert_in_step(mosquitto, h.settings)
    # And the new directory is watched from then on.
    since = h.mark()
    write_labels(directory, {"jazz1": "Blues", "rock1": "Rock"})
    await h.sync("file", since)
    state = (await ours_async(mosquitto, h.settings))[state_topic(h.settings, "jazz1")]
    assert label_of(state) == "Blues"


@pytest.mark.parametrize("half", ["truncated", "empty"])
async def test_a_half_written_file_removes_nothing_and_the_next_good_write_wins(
        mosquitto: Mosquitto, tmp_path: Path, start_service: Start, half: str) -> None:
    write_library(tmp_path, {"jazz1": "Jazz", "rock1": "Rock"})
    h = start_service(service_settings(mosquitto, tmp_path))
    await h.started()
    before = await assert_in_step(mosquitto, h.settings)
    since = h.mark()

    full = _saved_items({"jazz1": "Jazz"})
    write_file(tmp_path / SAVED_ITEMS, full[: len(full) // 2] if half == "truncated" else b"",
               "in_place")

    synced = await h.sync("file", since)
    assert [e.file for e in h.of(FileError, since)] == [SAVED_ITEMS]
    assert synced.errors
    assert synced.removed == 0
    during = await ours_async(mosquitto, h.settings)
    # The bridge's problem sensor tells; everything else is as it was.
    problems = json.loads(during.pop(h.topics.bridge_state, b'{"problems": []}'))["problems"]
    assert [p for p in problems if p.startswith(SAVED_ITEMS)] == list(synced.errors)
    before.pop(h.topics.bridge_state, None)
    assert during == before

    since = h.mark()
    write_labels(tmp_path, {"jazz1": "Blues"})
    synced = await h.sync("file", since)
    assert [e.file for e in h.of(FileRecovered, since)] == [SAVED_ITEMS]
    assert synced.entities == 1
    assert synced.removed == 2  # rock1's state and config
    after = await assert_in_step(mosquitto, h.settings)
    assert state_topic(h.settings, "rock1") not in after
    assert label_of(after[state_topic(h.settings, "jazz1")]) == "Blues"


async def test_a_broken_file_is_reported_once_per_change(
        mosquitto: Mosquitto, tmp_path: Path, start_service: Start) -> None:
    write_library(tmp_path, {"jazz1": "Jazz"})
    h = start_service(service_settings(mosquitto, tmp_path))
    await h.started()

    async def write_then_sync(content: bytes) -> None:
        since = h.mark()
        write_file(tmp_path / SAVED_ITEMS, content, "in_place")
        await h.sync("file", since)

    def errors() -> list[str]:
        return [e.error for e in h.of(FileError) if e.file == SAVED_ITEMS]

    await write_then_sync(b'[{"type": "spotify-playlist", "id": ')
    assert len(errors()) == 1
    assert "line 1, column" in errors()[0]
    await h.probe()  # a sync for another reason: the same error is not reported again
    assert len(errors()) == 1
    await write_then_sync(b"[\n  {\n")  # another breakage: reported
    assert len(errors()) == 2
    assert errors()[0] != errors()[1]
    await write_then_sync(_saved_items({"jazz1": "Jazz"}))
    assert [e.file for e in h.of(FileRecovered)] == [SAVED_ITEMS]
    await write_then_sync(b'[{"type": "spotify-playlist", "id": ')  # broken again: reported
    assert len(errors()) == 3


# -- triggers from the broker -------------------------------------------------------------------


async def test_refresh_command_triggers_a_sync(
        mosquitto: Mosquitto, tmp_path: Path, start_service: Start) -> None:
    write_library(tmp_path, {"jazz1": "Jazz", "rock1": "Rock"})
    h = start_service(service_settings(mosquitto, tmp_path))
    await h.started()
    # Someone removed an entity behind our back; the refresh puts it back.
    topic = state_topic(h.settings, "rock1")
    await asyncio.to_thread(publish_retained, mosquitto, {topic: b""})
    since = h.mark()

    await asyncio.to_thread(publish, mosquitto, f"{h.topics.command_prefix}/refresh",
                            b"refresh")

    synced = await h.sync("command", since)
    assert synced.published >= 1
    await assert_in_step(mosquitto, h.settings)


async def test_home_assistant_birth_message_triggers_a_republish(
        clean_broker: Mosquitto, tmp_path: Path, start_service: Start) -> None:
    write_library(tmp_path, {"jazz1": "Jazz", "rock1": "Rock"})
    h = start_service(service_settings(clean_broker, tmp_path, discovery="homeassistant"))
    await h.started()
    lost = {state_topic(h.settings, "jazz1"): b"",
            h.topics.config(h.topics.item_object_id(item_slug("jazz1"))): b""}
    await asyncio.to_thread(publish_retained, clean_broker, lost)
    since = h.mark()

    birth_at = time.time()
    await asyncio.to_thread(publish, clean_broker, "homeassistant/status", b"online")

    synced = await h.sync("homeassistant", since, within=8.0)
    started = next(s for s in h.of(SyncStarted, since) if s.id == synced.id)
    assert 1.0 - 0.05 <= started.at - birth_at <= 5.0 + 0.5
    assert synced.published >= len(lost)
    await assert_in_step(clean_broker, h.settings)


# -- the broker comes and goes ------------------------------------------------------------------


async def test_broker_down_at_start_then_up(
        fresh_mosquitto: Mosquitto, tmp_path: Path, start_service: Start) -> None:
    write_library(tmp_path, {"jazz1": "Jazz", "rock1": "Rock"})
    settings = service_settings(fresh_mosquitto, tmp_path)
    await asyncio.to_thread(fresh_mosquitto.stop)
    h = start_service(settings)
    down = await h.until(lambda: next(iter(h.of(Disconnected)), None), "a failed connect")
    assert "Cannot reach the MQTT broker" in down.reason
    assert fresh_mosquitto.password not in down.reason
    assert h.syncs() == []

    await asyncio.to_thread(fresh_mosquitto.start)

    await h.until(lambda: next(iter(h.of(Connected)), None), "a connection", within=15.0)
    synced = await h.sync("start", within=10.0)
    assert synced.entities == 2
    await assert_in_step(fresh_mosquitto, settings)
    status = await asyncio.to_thread(retained, fresh_mosquitto, [h.topics.status])
    assert status == {h.topics.status: b"online"}


async def test_broker_restart_losing_retained_messages_republishes_everything(
        fresh_mosquitto: Mosquitto, tmp_path: Path, start_service: Start) -> None:
    assert not fresh_mosquitto.persistence
    write_library(tmp_path, {"jazz1": "Jazz", "rock1": "Rock", "kids1": "Kids"})
    h = start_service(service_settings(fresh_mosquitto, tmp_path))
    await h.started()
    before = await assert_in_step(fresh_mosquitto, h.settings)
    since = h.mark()

    await asyncio.to_thread(fresh_mosquitto.restart)

    synced = await h.sync("reconnect", since, within=15.0)
    assert h.of(Disconnected, since)
    after = await assert_in_step(fresh_mosquitto, h.settings)
    assert synced.published == len(after)  # everything, the broker had nothing
    # The same messages as before the restart (the bridge's timestamp aside).
    assert {t: p for t, p in after.items() if t != h.topics.bridge_state} == \
        {t: p for t, p in before.items() if t != h.topics.bridge_state}
    status = await asyncio.to_thread(retained, fresh_mosquitto, [h.topics.status])
    assert status == {h.topics.status: b"online"}


# -- robustness ---------------------------------------------------------------------------------


async def test_a_ledger_that_cannot_be_written_does_not_stop_the_syncs(
        mosquitto: Mosquitto, tmp_path: Path, start_service: Start) -> None:
    # The ledger is a courtesy file: a read-only mount, a full disk or (here, since tests
    # may run as root) a directory in its place must not end the sync loop. (It did, until
    # write_ledger learnt to warn instead of raising.)
    (tmp_path / LEDGER).mkdir()
    write_library(tmp_path, {"jazz1": "Jazz", "rock1": "Rock"})
    h = start_service(service_settings(mosquitto, tmp_path))
    await h.started()
    since = h.mark()

    write_labels(tmp_path, {"jazz1": "Blues", "rock1": "Rock"})

    # Both symptoms are checked before failing: no more syncs, and a crash on stopping.
    no_sync: AssertionError | None = None
    try:
        await h.sync("file", since, within=DEBOUNCE + 3.0)
    except AssertionError as exc:
        no_sync = exc
    stopped = list(await asyncio.gather(h.stop(), return_exceptions=True))
    assert (no_sync, stopped) == (None, [0]), (
        f"after the ledger write failed: {no_sync}\nand Service.run() ended with {stopped!r}")
    state = (await ours_async(mosquitto, h.settings))[state_topic(h.settings, "jazz1")]
    assert label_of(state) == "Blues"


async def test_an_absurdly_nested_file_is_an_input_error_not_the_end_of_syncing(
        mosquitto: Mosquitto, tmp_path: Path, start_service: Start) -> None:
    # A corrupt file ("[[[[..." 100,000 deep) makes json.loads raise RecursionError, which
    # is not a JSONDecodeError: it must be reported like any invalid file.
    write_library(tmp_path, {"jazz1": "Jazz", "rock1": "Rock"})
    h = start_service(service_settings(mosquitto, tmp_path))
    await h.started()
    since = h.mark()

    write_file(tmp_path / SAVED_ITEMS, b"[" * 100_000, "in_place")

    no_sync: AssertionError | None = None
    try:
        await h.sync("file", since, within=DEBOUNCE + 3.0)
    except AssertionError as exc:
        no_sync = exc
    stopped = list(await asyncio.gather(h.stop(), return_exceptions=True))
    assert (no_sync, stopped) == (None, [0]), (
        f"after a deeply nested file: {no_sync}\nand Service.run() ended with {stopped!r}")
    assert [e.file for e in h.of(FileError, since)] == [SAVED_ITEMS]


async def test_a_settings_directory_removed_and_created_again_is_watched_again(
        mosquitto: Mosquitto, tmp_path: Path, start_service: Start) -> None:
    directory = tmp_path / "settings"
    write_library(directory, {"jazz1": "Jazz", "rock1": "Rock"})
    h = start_service(service_settings(mosquitto, directory))
    await h.started()
    before = await assert_in_step(mosquitto, h.settings)
    since = h.mark()

    shutil.rmtree(directory)

    gone = await h.sync("file", since)
    assert {e.file for e in h.of(FileError, since)} == {SAVED_ITEMS, PLAYLISTS, TRACK_LINKS}
    assert gone.removed == 0
    during = await ours_async(mosquitto, h.settings)
    assert {t for t in during if t != h.topics.bridge_state} == \
        {t for t in before if t != h.topics.bridge_state}
    since = h.mark()

    write_library(directory, {"jazz1": "Blues", "rock1": "Rock"})

    await h.sync("file", since, where=lambda s: not s.errors)
    after = await assert_in_step(mosquitto, h.settings)
    assert label_of(after[state_topic(h.settings, "jazz1")]) == "Blues"


async def test_a_restart_of_a_persistent_broker_republishes_nothing(
        make_mosquitto: Callable[..., Mosquitto], tmp_path: Path, start_service: Start) -> None:
    broker = make_mosquitto(persistence=True)
    write_library(tmp_path, {"jazz1": "Jazz", "rock1": "Rock"})
    h = start_service(service_settings(broker, tmp_path))
    await h.started()
    before = await assert_in_step(broker, h.settings)
    since = h.mark()

    await asyncio.to_thread(broker.restart)

    synced = await h.sync("reconnect", since, within=15.0)
    assert synced.published == 0
    assert await assert_in_step(broker, h.settings) == before
    status = await asyncio.to_thread(retained, broker, [h.topics.status])
    assert status == {h.topics.status: b"online"}


async def test_a_failing_os_watcher_does_not_freeze_the_service(
        mosquitto: Mosquitto, tmp_path: Path, start_service: Start,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # Fault injection: watchfiles raises OSError("OS file watch limit reached ...") when
    # inotify's limits are exhausted, synchronously, when the watch is set up. (Exhausting
    # the real per-user limit would break every other process of this user.)
    setups = 0
    valve = 50  # after this many attempts the fake blocks, so that a frozen loop recovers

    def failing_awatch(*_paths: Path, stop_event: asyncio.Event,
                       **_options: Any) -> AsyncIterator[set[tuple[Any, str]]]:
        nonlocal setups
        setups += 1

        async def changes() -> AsyncIterator[set[tuple[Any, str]]]:
            if setups > valve:
                await stop_event.wait()
                return
            raise OSError("OS file watch limit reached. about [\"...\"]")
            yield set()  # an async generator, like watchfiles.awatch

        return changes()

    monkeypatch.setattr(watchfiles, "awatch", failing_awatch)
    # The same failure from the inotify watch that replaces watchfiles on Linux
    # (inotify_add_watch fails with ENOSPC at the limit).
    real_enter = inotify.DirectoryEvents.__enter__

    def failing_enter(self: inotify.DirectoryEvents) -> inotify.DirectoryEvents:
        nonlocal setups
        setups += 1
        if setups > valve:
            return real_enter(self)
        raise OSError(errno.ENOSPC, "inotify_add_watch: No space left on device")

    monkeypatch.setattr(inotify.DirectoryEvents, "__enter__", failing_enter)
    caplog.set_level(logging.ERROR, logger="spotify_to_plex_mqtt.inputs.watch")  # one line per try
    write_library(tmp_path, {"jazz1": "Jazz"})
    started = time.monotonic()
    h = start_service(service_settings(mosquitto, tmp_path))
    await h.sync("start")
    took = time.monotonic() - started

    assert setups <= 10, (f"{setups} attempts to watch in {took:.2f} s: the retry loop never "
                          "yields to the event loop (nothing else runs meanwhile)")


# -- signals (a real process) -------------------------------------------------------------------


@contextlib.contextmanager
def service_process(broker: Mosquitto, directory: Path, prefix: str, discovery: str,
                    log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, **broker_env(broker, prefix, discovery)}
    for name in ("PLEX_URL", "PLEX_TOKEN", "SETTINGS_DIR", "STORAGE_DIR", "DEBUG"):
        env.pop(name, None)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "spotify_to_plex_mqtt", "--settings-dir", str(directory),
             "--debounce", str(DEBOUNCE), "--min-gap", "0", "--interval", "0", "--http-port", "0"],
            env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def wait_for_retained(broker: Mosquitto, topic: str, payload: bytes | None,
                      timeout: float = 15.0) -> None:
    """Until `topic` has a retained message (equal to `payload`, if given)."""
    collect(broker, topic,
            lambda messages: any(p == payload if payload is not None else bool(p)
                                 for _, p in messages),
            timeout)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_service_cleanly(
        mosquitto: Mosquitto, tmp_path: Path, sig: signal.Signals) -> None:
    directory = tmp_path / "settings"
    write_library(directory, {"jazz1": "Jazz", "rock1": "Rock"})
    prefix, discovery = unique_prefixes()
    log = tmp_path / "service.log"
    with service_process(mosquitto, directory, prefix, discovery, log) as process:
        wait_for_retained(mosquitto, f"{prefix}/status", b"online")
        wait_for_retained(mosquitto, f"{prefix}/categories", None)

        sent = time.monotonic()
        process.send_signal(sig)
        code = process.wait(GRACE + 5.0)
        took = time.monotonic() - sent

    output = log.read_text(errors="replace")
    assert code == 0, output
    assert took < GRACE, f"exited {took:.1f} s after {sig.name}"
    assert retained(mosquitto, [f"{prefix}/status"]) == {f"{prefix}/status": b"offline"}
    assert f"stopped ({sig.name})" in output
    assert "Traceback" not in output
    assert mosquitto.password not in output


async def test_sigterm_during_a_held_sync_exits_0_after_the_grace(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    directory = tmp_path / "settings"
    write_library(directory, {"jazz1": "Jazz"})
    prefix, discovery = unique_prefixes()
    log = tmp_path / "service.log"
    async with PlexStandIn(playlists={"1001": "/thumb/1001"}) as plex:
        write_file(directory / "plex.json", json.dumps(
            {"uri": plex.url, "token": plex.token, "id": plex.machine_id}).encode())
        plex.hang()
        with service_process(mosquitto, directory, prefix, discovery, log) as process:
            await asyncio.to_thread(wait_for_retained, mosquitto, f"{prefix}/status", b"online")
            await _until(lambda: bool(plex.log), "the sync to ask Plex")

            sent = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(process.wait, GRACE + 10.0)
            took = time.monotonic() - sent

    output = log.read_text(errors="replace")
    assert code == 0, output
    assert GRACE - 0.5 <= took < GRACE + 3.0, f"exited {took:.1f} s after SIGTERM"
    assert retained(mosquitto, [f"{prefix}/status"]) == {f"{prefix}/status": b"offline"}
    assert "Traceback" not in output


async def test_a_second_signal_abandons_the_held_sync_and_still_publishes_offline(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    directory = tmp_path / "settings"
    write_library(directory, {"jazz1": "Jazz"})
    prefix, discovery = unique_prefixes()
    log = tmp_path / "service.log"
    async with PlexStandIn(playlists={"1001": "/thumb/1001"}) as plex:
        write_file(directory / "plex.json", json.dumps(
            {"uri": plex.url, "token": plex.token, "id": plex.machine_id}).encode())
        plex.hang()
        with service_process(mosquitto, directory, prefix, discovery, log) as process:
            await asyncio.to_thread(wait_for_retained, mosquitto, f"{prefix}/status", b"online")
            await _until(lambda: bool(plex.log), "the sync to ask Plex")

            sent = time.monotonic()
            # Two different signals: two of the same may merge into one while pending.
            process.send_signal(signal.SIGTERM)
            process.send_signal(signal.SIGINT)
            code = await asyncio.to_thread(process.wait, GRACE + 10.0)
            took = time.monotonic() - sent

    output = log.read_text(errors="replace")
    assert code == 1, output
    assert took < 2.5, f"exited {took:.1f} s after the second signal (grace {GRACE} s)"
    assert retained(mosquitto, [f"{prefix}/status"]) == {f"{prefix}/status": b"offline"}
    assert "stopping at once" in output
    # An orderly end (not `os._exit`, whose offline would be the broker's Last Will).
    assert "stopped (SIGTERM)" in output or "stopped (SIGINT)" in output, output
    assert "Traceback" not in output


async def _until(condition: Callable[[], bool], what: str, within: float = 10.0) -> None:
    """For state outside the service's event bus (the Plex stand-in's request log)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"no {what} within {within} s")
        await asyncio.sleep(0.02)  # polling a condition with a deadline

