"""One-shot sync against a real Mosquitto: the broker's retained state is the contract.

Every test compares the broker's final retained messages with the desired state computed by
the pure code (`discovery.render` over `entities.resolve` of the files written), plus the
`online` status. Tests that check what a user sees (exit codes, messages) run the CLI as a
subprocess; the others call `app.one_shot` in-process.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from library_files import (
    COLLIDING_IDS,
    VARIED_PUBLISHED,
    Message,
    SettingsDir,
    big_library,
    run_cli,
    varied_library,
    watch,
)
from mosquitto import Mosquitto, publish_retained, retained
from spotify_to_plex_mqtt.core.bridge import bridge_configs
from spotify_to_plex_mqtt.core.discovery import Topics, render
from spotify_to_plex_mqtt.core.entities import Entity, resolve
from spotify_to_plex_mqtt.core.ledger import LedgerEntry
from spotify_to_plex_mqtt.core.library import LEDGER
from spotify_to_plex_mqtt.core.result import SyncResult
from spotify_to_plex_mqtt.engine.sync import run_sync
from spotify_to_plex_mqtt.inputs.ledger import read_ledger
from spotify_to_plex_mqtt.inputs.source import LibrarySource
from spotify_to_plex_mqtt.modes.oneshot import one_shot
from spotify_to_plex_mqtt.mqtt import _paho as paho_hooks
from spotify_to_plex_mqtt.mqtt import session as mqtt_module
from spotify_to_plex_mqtt.mqtt.session import BrokerSession
from spotify_to_plex_mqtt.settings.config import Settings, load_settings

pytestmark = pytest.mark.broker

DEFAULT = Topics()


# -- helpers ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_plex(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs read os.environ for Plex: keep the developer's Plex out of them."""
    for name in ("PLEX_URL", "PLEX_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def library(tmp_path: Path) -> SettingsDir:
    return varied_library(tmp_path / "settings").write()


def broker_env(broker: Mosquitto, url: str | None = None, **extra: str) -> dict[str, str]:
    return {"MQTT_BROKER_URL": url or broker.url, "MQTT_USERNAME": broker.username,
            "MQTT_PASSWORD": broker.password, **extra}


def settings_for(broker: Mosquitto, lib: SettingsDir, **env: str) -> Settings:
    return load_settings(["--one-shot", "--settings-dir", str(lib.root)],
                         broker_env(broker, **env))


def entities_of(lib: SettingsDir) -> tuple[Entity, ...]:
    return resolve(lib.library()).entities


def desired(lib: SettingsDir, topics: Topics = DEFAULT) -> dict[str, bytes]:
    """What the broker should hold for `lib`: the rendered entities, the bridge entities'
    configs and `online`; all but the bridge state, whose timestamp `assert_broker` checks."""
    return {**render(topics, entities_of(lib)), **bridge_configs(topics),
            topics.status: b"online"}


def assert_retained(actual: Mapping[str, bytes], expected: Mapping[str, bytes]) -> None:
    """Equal, with a readable diff: missing and unexpected topics first, then payloads."""
    assert {"missing": sorted(set(expected) - set(actual)),
            "unexpected": sorted(set(actual) - set(expected))} == {"missing": [],
                                                                   "unexpected": []}
    wrong = {t: (actual[t], expected[t]) for t in expected if actual[t] != expected[t]}
    assert wrong == {}


def check_bridge_state(payload: bytes | None, lib: SettingsDir | None,
                       problems: Sequence[str] = ()) -> dict[str, Any]:
    """The bridge state counts the published items of `lib` (if given) and names each file
    with a problem."""
    assert payload is not None, "no bridge state"
    state: dict[str, Any] = json.loads(payload)
    if lib is not None:
        assert state["published_items"] == len(entities_of(lib))
    assert len(state["problems"]) == len(problems)
    for problem, name in zip(state["problems"], problems, strict=True):
        assert name in problem
    datetime.fromisoformat(state["last_sync"])
    return state


def assert_broker(got: Mapping[str, bytes], *instances: tuple[SettingsDir, Topics],
                  others: Mapping[str, bytes] | None = None) -> None:
    """The broker holds exactly the desired state of each (library, topics) instance, plus
    `others` (retained messages of other publishers)."""
    rest = dict(got)
    expected = dict(others or {})
    for lib, topics in instances:
        check_bridge_state(rest.pop(topics.bridge_state, None), lib)
        expected.update(desired(lib, topics))
    assert_retained(rest, expected)


def ours(messages: list[Message], topics: Topics = DEFAULT) -> list[Message]:
    """Messages seen during a run, without the scan's markers and probes, and the status."""
    scan = (f"{topics.scan_marker_prefix}/", topics.scan_probe_prefix)
    return [(t, p) for t, p in messages if t != topics.status and not t.startswith(scan)]


@dataclass(frozen=True, slots=True)
class Summary:
    entities: int
    categories: int
    published: int
    unchanged: int
    removed: int
    skipped: int


_SUMMARY = re.compile(r"(\d+) entities in (\d+) categories: (\d+) messages published, "
                      r"(\d+) unchanged, (\d+) removed, (\d+) skipped")


def parse_summary(stdout: str) -> Summary:
    match = _SUMMARY.search(stdout)
    assert match is not None, f"no summary line in {stdout!r}"
    return Summary(*(int(g) for g in match.groups()))


async def sync_result(settings: Settings) -> SyncResult:
    """One sync like `one_shot`, returning the `SyncResult` itself."""
    topics = Topics(settings.mqtt.topic_prefix, settings.mqtt.discovery_prefix)
    async with BrokerSession(settings.mqtt) as session:
        return await run_sync(session, topics, LibrarySource(settings.settings_dir).read())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def config(unique_id: str, **extra: object) -> bytes:
    return json.dumps({"unique_id": unique_id, **extra}).encode()


# -- 1-3: publish everything once, then only what changed ----------------------------------


def test_first_run_publishes_every_item_and_the_categories(clean_broker: Mosquitto,
                                                           library: SettingsDir) -> None:
    result = run_cli("--one-shot", "--settings-dir", str(library.root),
                     env=broker_env(clean_broker))

    assert result.returncode == 0, result.output
    entities = entities_of(library)
    assert len(entities) == VARIED_PUBLISHED
    got = retained(clean_broker)
    assert_broker(got, (library, DEFAULT))
    assert got["spotify-to-plex/status"] == b"online"
    for entity in entities:
        assert DEFAULT.item_state(entity.slug) in got
        assert DEFAULT.config(DEFAULT.item_object_id(entity.slug)) in got
    assert {DEFAULT.categories_state, DEFAULT.config(DEFAULT.categories_object_id)} <= set(got)
    # Ids differing only by case both get an entity of their own.
    assert {e.id for e in entities} >= set(COLLIDING_IDS)

    summary = parse_summary(result.stdout)
    categories = {e.category for e in entities}
    assert summary == Summary(entities=len(entities), categories=len(categories),
                              published=len(got) - 1, unchanged=0, removed=0,
                              skipped=1)
    assert "Not Yet Matched In Plex" in result.stdout  # the skipped item, with its reason
    assert "track_links.json" in result.stdout


async def test_second_run_publishes_nothing(clean_broker: Mosquitto, library: SettingsDir,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    settings = settings_for(clean_broker, library)
    assert await one_shot(settings) == 0
    first = parse_summary(capsys.readouterr().out)

    code, during = await watch(clean_broker, lambda: one_shot(settings))

    assert code == 0
    second = parse_summary(capsys.readouterr().out)
    assert (second.published, second.removed) == (0, 0)
    assert second.unchanged == first.published
    assert DEFAULT.status in {t for t, _ in during}  # the watcher saw the run
    assert ours(during) == []
    assert_broker(retained(clean_broker), (library, DEFAULT))


async def test_relabelling_one_item_publishes_its_state_and_the_categories(
        clean_broker: Mosquitto, library: SettingsDir) -> None:
    settings = settings_for(clean_broker, library)
    assert await one_shot(settings) == 0
    before = desired(library)

    library.relabel("liked-demo", "Jazz")
    after = desired(library)
    changed = {t for t, p in after.items() if before.get(t) != p}
    slug = next(e.slug for e in entities_of(library) if e.id == "liked-demo")
    assert changed == {DEFAULT.item_state(slug), DEFAULT.categories_state}

    code, during = await watch(clean_broker, lambda: one_shot(settings))

    assert code == 0
    # The bridge state's `last_sync` (to the second) may move too, since something changed.
    published = [(t, p) for t, p in ours(during) if t != DEFAULT.bridge_state]
    assert 2 <= len(ours(during)) <= 4
    assert Counter(t for t, _ in published) == Counter(changed)  # each once
    assert all(p == after[t] for t, p in published)
    assert json.loads(after[DEFAULT.item_state(slug)])["category"] == "Jazz"
    assert_broker(retained(clean_broker), (library, DEFAULT))


# -- 4-6: removal, the original service's leftovers, and what is not ours -------------------


async def test_removed_items_lose_config_and_state_even_without_a_ledger(
        clean_broker: Mosquitto, library: SettingsDir) -> None:
    settings = settings_for(clean_broker, library)
    assert await one_shot(settings) == 0
    before = desired(library)
    slugs = {e.id: e.slug for e in entities_of(library)}

    library.delete("liked-demo")  # the only "Favourites" item: that category goes too
    library.unlabel("1weenld61qoidwYuZ1GESA")
    library.unlabel(COLLIDING_IDS[0])  # its twin keeps its (hashed) slug
    (library.root / LEDGER).unlink()  # the broker, not the ledger, says what is ours
    assert await one_shot(settings) == 0

    got = retained(clean_broker)
    assert_broker(got, (library, DEFAULT))
    for gone in ("liked-demo", "1weenld61qoidwYuZ1GESA", COLLIDING_IDS[0]):
        assert DEFAULT.item_state(slugs[gone]) in before
        assert DEFAULT.item_state(slugs[gone]) not in got
        assert DEFAULT.config(DEFAULT.item_object_id(slugs[gone])) not in got
    # The twin no longer collides: it keeps its entity (unique_id) under its plain slug.
    twin = next(e for e in entities_of(library) if e.id == COLLIDING_IDS[1])
    assert twin.slug != slugs[COLLIDING_IDS[1]]
    assert DEFAULT.item_state(twin.slug) in got
    assert DEFAULT.item_state(slugs[COLLIDING_IDS[1]]) not in got
    assert "Favourites" not in json.loads(got[DEFAULT.categories_state])["categories"]


def _original_service_leftovers() -> dict[str, bytes]:
    """What the TypeScript service left on a broker, in its first layout (topics by the id
    after its last `/`, state under `spotify-to-plex/items/`) and its newer one (state under
    `spotify_to_plex/items/<raw id>/state`, configs by sanitised entity id)."""
    kept, gone = "37i9dQZF1DXbITWG1ZJKYt", "3cEYpjA9oz9GiPac4AsH4n"  # kept: still labelled
    guid = "plex://album/5d07c17e403c640290856b9b"  # a kept plex-media item
    guid_tail = guid.rsplit("/", 1)[1]

    def item_config(unique: str, object_id: str, state_topic: str) -> bytes:
        return config(f"spotify_to_plex_item_{unique}", name=f"Item {unique}",
                      object_id=f"spotify_to_plex_item_{object_id}", state_topic=state_topic,
                      json_attributes_topic=state_topic, value_template="{{ value_json.name }}",
                      icon="mdi:playlist-music")

    def item_state(item_id: str) -> bytes:
        return json.dumps({"id": item_id, "name": f"Item {item_id}", "category": "Jazz",
                           "category_id": "jazz"}).encode()

    def newer(item_id: str) -> dict[str, bytes]:
        state_topic = f"spotify_to_plex/items/{item_id}/state"
        object_id = re.sub(r"[^a-z0-9]", "", item_id.lower())
        return {f"homeassistant/sensor/spotify_to_plex_item_{object_id}/config":
                item_config(item_id, object_id, state_topic),
                state_topic: item_state(item_id)}

    first = {
        **{f"homeassistant/sensor/item_{i}/config":
           item_config(i, i, f"spotify-to-plex/items/{i}") for i in (kept, gone, guid_tail)},
        **{f"spotify-to-plex/items/{i}": item_state(i) for i in (kept, gone, guid_tail)},
        "homeassistant/sensor/categories/config": config(
            "spotify_to_plex_categories", name="Music Categories",
            object_id="spotify_to_plex_categories", state_topic="spotify-to-plex/categories",
            value_template="{{ value_json.categories | join(',') }}", icon="mdi:music"),
        "spotify-to-plex/categories": b'{"categories":["Jazz"]}',
    }
    return {**first, **newer(kept), **newer(gone), **newer(guid),
            "spotify_to_plex/categories/state": b'{"categories":["Jazz"]}'}


async def test_leftovers_of_the_original_service_are_cleaned(clean_broker: Mosquitto,
                                                             library: SettingsDir) -> None:
    leftovers = _original_service_leftovers()
    publish_retained(clean_broker, leftovers)

    code, during = await watch(clean_broker,
                               lambda: one_shot(settings_for(clean_broker, library)))

    assert code == 0
    got = retained(clean_broker)
    assert_broker(got, (library, DEFAULT))
    # Topics the original shares with us (the categories state, the newer layout's config
    # topics of kept items) now hold our payloads (checked above); the rest is gone.
    shared = set(leftovers) & set(desired(library))
    assert "spotify-to-plex/categories" in shared
    assert set(leftovers) & set(got) == shared
    # Home Assistant ignores a config whose unique_id another config topic still holds: the
    # original's config of a kept item is cleared before ours (same unique_id) is published.
    kept = next(e for e in entities_of(library) if e.id == "37i9dQZF1DXbITWG1ZJKYt")
    order = [t for t, _ in during]
    old_config = f"homeassistant/sensor/item_{kept.id}/config"
    assert (old_config, b"") in during
    assert order.index(old_config) < order.index(DEFAULT.config(DEFAULT.item_object_id(kept.slug)))


OTHERS = {
    "homeassistant/sensor/zigbee_temp/config": config(
        "0x00158d_temp", name="Temperature", state_topic="zigbee2mqtt/0x00158d",
        device={"identifiers": ["0x00158d"], "name": "Hall sensor"}),
    "homeassistant/light/kitchen/config": config(
        "kitchen_light", name="Kitchen", command_topic="zigbee2mqtt/kitchen/set"),
    "homeassistant/sensor/spotify_to_plex_stats/config": config(
        "my_spotify_to_plex_stats", name="spotify_to_plex stats",
        state_topic="stats/spotify_to_plex"),
    "homeassistant/sensor/weird/config": b"spotify_to_plex_item_x, but not JSON",
    "homeassistant/status": b"online",
    "zigbee2mqtt/0x00158d": b'{"temperature":21.5}',
}


async def test_other_publishers_retained_messages_are_untouched(clean_broker: Mosquitto,
                                                                library: SettingsDir) -> None:
    publish_retained(clean_broker, OTHERS)
    settings = settings_for(clean_broker, library)

    assert await one_shot(settings) == 0
    library.delete("liked-demo")  # a second run that clears something of ours
    assert await one_shot(settings) == 0

    assert_broker(retained(clean_broker), (library, DEFAULT), others=OTHERS)


async def test_two_instances_with_overlapping_prefixes_leave_each_other_alone(
        clean_broker: Mosquitto, tmp_path: Path) -> None:
    # The README says: give each instance its own MQTT_TOPIC_PREFIX. A natural choice for a
    # second one is an extension of the default.
    default_lib = varied_library(tmp_path / "default").write()
    kids_lib = varied_library(tmp_path / "kids").write()
    kids_lib.delete("liked-demo")
    kids = Topics("spotify-to-plex-kids")
    kids_settings = settings_for(clean_broker, kids_lib, MQTT_TOPIC_PREFIX=kids.topic_prefix)

    assert await one_shot(kids_settings) == 0
    assert await one_shot(settings_for(clean_broker, default_lib)) == 0

    assert_broker(retained(clean_broker), (kids_lib, kids), (default_lib, DEFAULT))
    code, during = await watch(clean_broker, lambda: one_shot(kids_settings))
    assert code == 0
    assert ours(during, kids) == []


# -- 7-9: failures a user must understand, and that lose nothing ----------------------------


def test_wrong_password_is_reported_without_the_password(clean_broker: Mosquitto,
                                                         library: SettingsDir) -> None:
    wrong = "Wr0ng-Pw-7f3a9c"
    env = {**broker_env(clean_broker), "MQTT_PASSWORD": wrong}

    # --debug: paho's packet log is the likeliest place for a leak.
    result = run_cli("--one-shot", "--debug", "--settings-dir", str(library.root), env=env)

    assert result.returncode == 1, result.output
    assert f"{clean_broker.host}:{clean_broker.port}" in result.output
    assert "credential" in result.output.lower()
    assert wrong not in result.output
    assert "Traceback" not in result.stderr


def test_unreachable_broker_is_reported_by_host_and_port(library: SettingsDir) -> None:
    port = free_port()  # nothing listens there

    result = run_cli("--one-shot", "--settings-dir", str(library.root),
                     env={"MQTT_BROKER_URL": f"mqtt://127.0.0.1:{port}"})

    assert result.returncode == 1, result.output
    assert f"127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("plex_json", "env", "named"), [
    ("{", {}, "plex.json"),
    (None, {"PLEX_URL": "not a url", "PLEX_TOKEN": "t0k3n-abc"}, "PLEX_URL"),
])
def test_a_plex_configuration_error_fails_the_one_shot_but_publishes(
        clean_broker: Mosquitto, library: SettingsDir, plex_json: str | None,
        env: dict[str, str], named: str) -> None:
    if plex_json is not None:
        (library.root / "plex.json").write_text(plex_json)

    result = run_cli("--one-shot", "--settings-dir", str(library.root),
                     env=broker_env(clean_broker, **env))

    # A cron job must see it; the entities are published all the same (Plex is enrichment).
    assert result.returncode == 1, result.output
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    assert parse_summary(result.stdout).entities == len(entities_of(library))
    assert "t0k3n-abc" not in result.output
    assert_broker(retained(clean_broker), (library, DEFAULT))


def assert_kept(after: Mapping[str, bytes], before: Mapping[str, bytes], file: str) -> None:
    """Every retained message is still there, unchanged; only the bridge state moved, to
    report the problem with `file`."""
    bridge = DEFAULT.bridge_state
    assert_retained({t: p for t, p in after.items() if t != bridge},
                    {t: p for t, p in before.items() if t != bridge})
    check_bridge_state(after.get(bridge), None, [file])


def _json_error_position(text: str) -> tuple[int, int]:
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return exc.lineno, exc.colno
    raise AssertionError("the text was meant to be invalid JSON")


def test_half_written_playlists_json_removes_nothing(clean_broker: Mosquitto,
                                                     library: SettingsDir) -> None:
    args = ("--one-shot", "--settings-dir", str(library.root))
    env = broker_env(clean_broker)
    assert run_cli(*args, env=env).returncode == 0
    before = retained(clean_broker)
    assert_broker(before, (library, DEFAULT))

    text = library.playlists_path.read_text()
    library.playlists_path.write_text(text[: len(text) * 2 // 3])  # a writer caught halfway
    line, column = _json_error_position(library.playlists_path.read_text())
    result = run_cli(*args, env=env)

    assert result.returncode == 1, result.output
    assert re.search(rf"playlists\.json\b.*\bline {line}\b.*\bcolumn {column}\b", result.output), \
        result.output
    assert_kept(retained(clean_broker), before, "playlists.json")

    library.unlink_playlist("37i9dQZF1DWZeKCadgRdKQ")  # the next good version also drops one
    library.write()
    result = run_cli(*args, env=env)

    assert result.returncode == 0, result.output
    assert_broker(retained(clean_broker), (library, DEFAULT))
    assert len(entities_of(library)) == VARIED_PUBLISHED - 1


async def test_published_items_counts_the_items_kept_while_a_file_is_broken(
        clean_broker: Mosquitto, library: SettingsDir) -> None:
    # The bridge's "Published items" sensor should count the item sensors Home Assistant
    # has. While playlists.json is unreadable every item stays (removal is withheld), so the
    # count must stay too, instead of dropping to the items that did not need the file.
    settings = settings_for(clean_broker, library)
    assert await one_shot(settings) == 0
    text = library.playlists_path.read_text()
    library.playlists_path.write_text(text[: len(text) // 2])

    assert await one_shot(settings) == 1

    got = retained(clean_broker)
    items_in_ha = sum(t.startswith(DEFAULT.item_state("")) for t in got)
    assert items_in_ha == VARIED_PUBLISHED
    state = check_bridge_state(got.get(DEFAULT.bridge_state), None, ["playlists.json"])
    assert state["published_items"] == items_in_ha


def test_missing_saved_items_removes_nothing(clean_broker: Mosquitto,
                                             library: SettingsDir) -> None:
    args = ("--one-shot", "--settings-dir", str(library.root))
    env = broker_env(clean_broker)
    assert run_cli(*args, env=env).returncode == 0
    before = retained(clean_broker)

    library.saved_items_path.unlink()
    result = run_cli(*args, env=env)

    assert result.returncode == 1, result.output
    assert "spotify_saved_items.json" in result.output
    assert_kept(retained(clean_broker), before, "spotify_saved_items.json")


# -- 10-12: transports, scale, ledger ------------------------------------------------------


@pytest.fixture
def unique_topics() -> Topics:
    token = uuid.uuid4().hex[:10]
    return Topics(f"stp-{token}", f"ha-{token}")


@pytest.mark.parametrize("transport", ["mqtts", "ws"])
def test_tls_and_websockets(mosquitto_tls_ws: Mosquitto, library: SettingsDir,
                            unique_topics: Topics, transport: str) -> None:
    broker = mosquitto_tls_ws
    url = (f"mqtts://127.0.0.1:{broker.tls_port}" if transport == "mqtts"
           else f"ws://127.0.0.1:{broker.ws_port}/mqtt")
    env = broker_env(broker, url, MQTT_CA_FILE=str(broker.ca_file),
                     MQTT_TOPIC_PREFIX=unique_topics.topic_prefix,
                     MQTT_DISCOVERY_PREFIX=unique_topics.discovery_prefix)

    result = run_cli("--one-shot", "--settings-dir", str(library.root), env=env)

    assert result.returncode == 0, result.output
    got = retained(broker, [f"{unique_topics.topic_prefix}/#",
                            f"{unique_topics.discovery_prefix}/#"])
    assert_broker(got, (library, unique_topics))


async def test_more_items_than_the_broker_queues_round_trip(fresh_mosquitto: Mosquitto,
                                                            tmp_path: Path) -> None:
    # 2 x 1,600 retained messages: over Mosquitto's default 1,000 queued QoS 1 messages.
    lib = big_library(tmp_path / "settings", 1600).write()
    settings = settings_for(fresh_mosquitto, lib)

    assert await one_shot(settings) == 0
    assert len(render(DEFAULT, entities_of(lib))) == 2 * 1600 + 2
    got = retained(fresh_mosquitto, timeout=30)
    assert_broker(got, (lib, DEFAULT))

    second = await sync_result(settings)
    assert (second.published, second.removed) == (0, 0)
    assert second.plan.unchanged == len(got) - 1  # all but the status
    assert second.ok


async def test_ledger_is_written_and_the_old_format_is_read(clean_broker: Mosquitto,
                                                            library: SettingsDir) -> None:
    ledger = library.root / LEDGER
    ledger.write_text(json.dumps(["37i9dQZF1DXbITWG1ZJKYt", "gone-since"]))  # the old format
    assert [e.id for e in read_ledger(library.root)] == ["37i9dQZF1DXbITWG1ZJKYt", "gone-since"]

    assert await one_shot(settings_for(clean_broker, library)) == 0

    written = json.loads(ledger.read_text())
    expected = [{"id": e.id, "entity_id": f"sensor.{DEFAULT.item_object_id(e.slug)}",
                 "category": e.category} for e in entities_of(library)]
    assert sorted(written, key=lambda e: e["id"]) == sorted(expected, key=lambda e: e["id"])
    assert set(read_ledger(library.root)) == {LedgerEntry(**e) for e in expected}


async def test_odd_ids_in_the_ledger_never_cost_the_connection(
        clean_broker: Mosquitto, library: SettingsDir) -> None:
    # Ids are read by name as the original's topics; Mosquitto drops a client that
    # subscribes to a filter with a control character or a noncharacter.
    assert await one_shot(settings_for(clean_broker, library)) == 0
    ledger = library.root / LEDGER
    entries = json.loads(ledger.read_text())
    odd = ["Tab\tId", "line\n", "del\u007f", "non\uffff", "wild+card", "#"]
    ledger.write_text(json.dumps([*entries, *odd]), encoding="utf-8")
    before = retained(clean_broker)

    assert await one_shot(settings_for(clean_broker, library)) == 0
    assert retained(clean_broker) == before


async def test_the_session_sends_small_publishes_without_waiting_for_tcp_acks(
        clean_broker: Mosquitto, library: SettingsDir) -> None:
    # Nagle's algorithm would hold each PUBLISH after the first until the broker's delayed
    # ACK (~40 ms on Linux): a relabel's three publishes took ~44 ms instead of ~1 ms.
    async with BrokerSession(settings_for(clean_broker, library).mqtt) as session:
        paho = paho_hooks.paho_of(session.client)  # aiomqtt does not expose the socket
        sock = paho.socket()
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


async def test_keepalive_pings_go_out_although_paho_is_looked_after_less_often(
        clean_broker: Mosquitto, library: SettingsDir,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The override of aiomqtt's `_misc_loop` only takes effect while aiomqtt has that method.
    assert "_misc_loop" in vars(aiomqtt.Client)
    monkeypatch.setattr(mqtt_module, "KEEPALIVE", 1)
    monkeypatch.setattr(paho_hooks, "MISC_INTERVAL", 0.2)
    async with BrokerSession(settings_for(clean_broker, library).mqtt) as session:
        wanted = f"Received PINGREQ from {session.client.identifier}"
        deadline = asyncio.get_running_loop().time() + 10.0
        while wanted not in clean_broker.log_text():
            assert asyncio.get_running_loop().time() < deadline, "no PINGREQ within 10 s"
            await asyncio.sleep(0.05)
        assert not session.closed.is_set()
