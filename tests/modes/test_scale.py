"""A library past Mosquitto's per-client queue (default ``max_queued_messages 1000``), end to end.

Mosquitto queues at most 1000 outgoing packets per client, QoS 0 included, and silently
drops the rest. A wildcard SUBSCRIBE matching ~16,000 retained messages therefore returns
only part of them (measured on a 2-core machine: the app's read got 6,300-8,600 of 16,008;
below ~10,000 retained messages nothing was dropped, hence the size here). A sync's read of the
broker must still see every retained message of ours, or an unchanged re-sync publishes
again and the topics of deleted items stay on the broker (as sensors in Home Assistant).

The broker's content is checked by reading each topic the app could have published by its
exact name, `CHUNK` topics per SUBSCRIBE (see `read_exact`): never more than `CHUNK` + 1
packets are queued for the reading client, so that read is not cut short itself. The
`retained` helper of tests/support/mosquitto.py cannot be used here: its single ``#``
subscription is cut short by the same limit (measured: ~10,000 of 16,000-24,000 messages;
its end marker is then either lost, a timeout, or delivered after the drops, a silently
short read).

The broker is the test's own (`fresh_mosquitto`, default limits): the shared one would be
left with ~16,000 retained messages, too many for `clean_broker` to clear.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from library_files import SettingsDir, big_library
from mosquitto import Mosquitto, connected_client
from spotify_to_plex_mqtt.core.bridge import bridge_configs
from spotify_to_plex_mqtt.core.discovery import Topics, render
from spotify_to_plex_mqtt.core.entities import Entity, resolve
from spotify_to_plex_mqtt.core.library import LEDGER
from spotify_to_plex_mqtt.core.result import SyncResult
from spotify_to_plex_mqtt.engine.sync import run_sync
from spotify_to_plex_mqtt.modes import oneshot as app
from spotify_to_plex_mqtt.settings.config import Settings, load_settings

pytestmark = pytest.mark.broker

DEFAULT = Topics()
ITEMS = 8_000  # 2 retained messages each: 16,008 in all, with the categories and the bridge
DELETED = 20
CHUNK = 500  # exact topics per SUBSCRIBE in `read_exact`: well below the broker's 1000
SYNC_TIMEOUT = 60.0


# -- reading the broker by exact topic names ------------------------------------------------


class _Round:
    """The retained messages one SUBSCRIBE of exact topics brings, ended by a marker."""

    def __init__(self, topics: Sequence[str], marker: str) -> None:
        self.topics = set(topics)
        self.marker = marker
        self.found: dict[str, bytes] = {}
        self.stray: list[str] = []
        self.done = threading.Event()


def read_exact(broker: Mosquitto, topics: Iterable[str],
               timeout: float = 30.0) -> dict[str, bytes]:
    """The retained messages of `topics`, as ``{topic: payload}``, read by exact name.

    Each round subscribes (QoS 0) to at most `CHUNK` topics and a unique marker topic, waits
    for the SUBACK, then publishes to the marker: the broker queues the retained messages
    while it handles the SUBSCRIBE, i.e. before it sees the marker, so the marker coming back
    ends the round. An exact filter matches one retained message at most: a round queues at
    most `CHUNK` + 1 packets, far below ``max_queued_messages``, and so loses none.
    """
    wanted = list(dict.fromkeys(topics))
    found: dict[str, bytes] = {}
    lock = threading.Lock()
    current: list[_Round] = []
    subacks: dict[int, list[ReasonCode]] = {}
    subacked = threading.Condition(lock)

    def on_message(_client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        with lock:
            now = current[-1]
            if message.topic == now.marker:
                now.done.set()
            elif not message.retain or message.topic not in now.topics:
                now.stray.append(message.topic)
            else:
                now.found[message.topic] = bytes(message.payload)

    def on_subscribe(_client: mqtt.Client, _userdata: Any, mid: int,
                     codes: list[ReasonCode], _properties: Properties | None) -> None:
        with subacked:
            subacks[mid] = codes
            subacked.notify_all()

    deadline = time.monotonic() + timeout

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"reading {len(wanted)} topics by name took over {timeout} s "
                               f"({len(found)} retained messages so far)")
        return left

    with connected_client(broker, timeout=timeout) as client:
        client.on_message = on_message
        client.on_subscribe = on_subscribe
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start:start + CHUNK]
            round_ = _Round(chunk, f"test-exact/{uuid.uuid4().hex}")
            with lock:
                current.append(round_)
            filters = [*chunk, round_.marker]
            rc, mid = client.subscribe([(f, 0) for f in filters])
            assert rc == mqtt.MQTT_ERR_SUCCESS, mqtt.error_string(rc)
            with subacked:
                while mid not in subacks:
                    subacked.wait(remaining())
                codes = subacks.pop(mid)
            assert len(codes) == len(filters)
            assert not [f for f, code in zip(filters, codes, strict=True) if code.is_failure]
            client.publish(round_.marker, b"end-of-round", qos=1)
            while not round_.done.wait(min(remaining(), 1.0)):
                pass
            with lock:
                assert round_.stray == [], "messages outside the round's topics"
                found.update(round_.found)
    return found


# -- the app, in-process, and what it should leave on the broker ----------------------------


@pytest.fixture(autouse=True)
def _no_plex(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs read os.environ for Plex: keep the developer's Plex out of them."""
    for name in ("PLEX_URL", "PLEX_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sync_results(monkeypatch: pytest.MonkeyPatch) -> list[SyncResult]:
    """The `SyncResult` of every `app.one_shot` run in the test, in order."""
    results: list[SyncResult] = []

    async def recording(*args: Any, **kwargs: Any) -> SyncResult:
        result = await run_sync(*args, **kwargs)
        results.append(result)
        return result

    monkeypatch.setattr("spotify_to_plex_mqtt.modes.oneshot.run_sync", recording)
    return results


def settings_for(broker: Mosquitto, lib: SettingsDir) -> Settings:
    return load_settings(["--one-shot", "--settings-dir", str(lib.root)],
                         {"MQTT_BROKER_URL": broker.url, "MQTT_USERNAME": broker.username,
                          "MQTT_PASSWORD": broker.password})


def entities_of(lib: SettingsDir) -> tuple[Entity, ...]:
    return resolve(lib.library()).entities


def desired(lib: SettingsDir) -> dict[str, bytes]:
    """What the broker should hold for `lib`, but the bridge state (it holds a timestamp)."""
    return {**render(DEFAULT, entities_of(lib)), **bridge_configs(DEFAULT),
            DEFAULT.status: b"online"}


def item_topics(entity: Entity) -> list[str]:
    return list(DEFAULT.item_topics(entity.slug))


def assert_holds(got: Mapping[str, bytes], expected: Mapping[str, bytes],
                 published_items: int) -> None:
    """`got` is `expected` plus a bridge state counting `published_items`, with a readable
    diff (only the first topics of each kind, so that thousands of them stay readable)."""
    rest = dict(got)
    bridge = rest.pop(DEFAULT.bridge_state, None)
    missing = sorted(set(expected) - set(rest))
    unexpected = sorted(set(rest) - set(expected))
    assert not missing, f"{len(missing)} topics missing, e.g. {missing[:10]}"
    assert not unexpected, f"{len(unexpected)} unexpected topics, e.g. {unexpected[:10]}"
    wrong = sorted(t for t in expected if rest[t] != expected[t])
    assert not wrong, f"{len(wrong)} topics with the wrong payload, e.g. {wrong[:10]}"
    assert bridge is not None, "no bridge state"
    state = json.loads(bridge)
    assert state["published_items"] == published_items
    assert state["problems"] == []


async def one_shot(settings: Settings, results: list[SyncResult]) -> SyncResult:
    """`app.one_shot` (exit code 0), and the `SyncResult` of its sync."""
    before = len(results)
    async with asyncio.timeout(SYNC_TIMEOUT):
        assert await app.one_shot(settings) == 0
    assert len(results) == before + 1
    return results[-1]


def spread(ids: Sequence[str], count: int) -> list[str]:
    """`count` ids evenly spread over `ids` (none at either end)."""
    step = len(ids) // count
    return [ids[index * step + step // 2] for index in range(count)]


# -- the test --------------------------------------------------------------------------------


@pytest.mark.parametrize("ledger", [True, False], ids=["with-ledger", "without-ledger"])
async def test_a_library_past_the_broker_queue_syncs_exactly(
        fresh_mosquitto: Mosquitto, tmp_path: Path, sync_results: list[SyncResult],
        ledger: bool) -> None:
    # `ledger`: whether `mqtt_published_items.json` (the record of what earlier runs
    # published) is there for the next run. Without it, deleted items' topics that the
    # broker's cut-short answer left out cannot be found; the run must warn of it then, and
    # must never remove anything else.
    broker = fresh_mosquitto
    lib = big_library(tmp_path / "settings", ITEMS).write()
    settings = settings_for(broker, lib)
    first_desired = desired(lib)
    assert len(first_desired) == 2 * ITEMS + 2 + len(bridge_configs(DEFAULT)) + 1

    def prepare_run() -> None:
        if not ledger:
            (lib.root / LEDGER).unlink(missing_ok=True)

    # 1. A full sync publishes everything (the empty broker is read in one round).
    prepare_run()
    first = await one_shot(settings, sync_results)
    # What the sync publishes is `first_desired` with the bridge state for the status.
    assert (first.published, first.removed) == (len(first_desired), 0)
    after_first = read_exact(broker, [*first_desired, DEFAULT.bridge_state])
    assert_holds(after_first, first_desired, ITEMS)

    # 2. An unchanged re-sync: the read of ~16,000 retained messages must see all of them.
    prepare_run()
    second = await one_shot(settings, sync_results)
    assert (second.published, second.removed) == (0, 0)
    assert second.plan.unchanged == len(first_desired)
    assert read_exact(broker, after_first) == after_first  # the bridge state did not move

    # 3. Delete items spread over the library: exactly their config and state topics go.
    entities = {e.id: e for e in entities_of(lib)}
    deleted = spread(lib.labelled_ids, DELETED)
    gone = sorted(t for item_id in deleted for t in item_topics(entities[item_id]))
    assert len(gone) == 2 * DELETED
    for item_id in deleted:
        lib.items.remove(lib.item(item_id))
    lib.write_saved_items()
    last_desired = desired(lib)
    assert not set(gone) & set(last_desired)
    # The categories state changes (fewer items in some categories), and the bridge state
    # (the published items' count); nothing else of what stays.
    changed = sorted({t for t, p in last_desired.items() if first_desired.get(t) != p}
                     | {DEFAULT.bridge_state})
    assert changed == sorted([DEFAULT.categories_state, DEFAULT.bridge_state])

    prepare_run()
    third = await one_shot(settings, sync_results)

    # Every topic the app was ever asked to publish, read back by name.
    after_third = read_exact(broker, [*first_desired, DEFAULT.bridge_state])
    left = sorted(set(gone) & set(after_third))
    if ledger:
        assert left == [], f"{len(left)} of the deleted items' {len(gone)} topics are " \
            f"still retained: {left}"
    elif left:
        # Without a record of what was published, topics the broker left out of its answer
        # cannot be asked for by name: the run must say so, never stay silent.
        assert any("max_queued_messages" in w for w in third.warnings), third.warnings
    assert_holds({t: p for t, p in after_third.items() if t not in left}, last_desired,
                 ITEMS - DELETED)
    assert sorted(third.plan.clear) == sorted(set(gone) - set(left))
    assert sorted(t for t, _ in third.plan.publish) == changed
    assert (third.published, third.removed) == (len(changed), len(gone) - len(left))
    assert third.plan.unchanged == len(last_desired) - len(changed)
