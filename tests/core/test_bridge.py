"""Pure tests of the bridge entities: configs, a quiet timestamp, removal when disabled."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from plans import apply_plan
from spotify_to_plex_mqtt.core.bridge import bridge_configs, bridge_state
from spotify_to_plex_mqtt.core.discovery import Topics
from spotify_to_plex_mqtt.core.entities import resolve
from spotify_to_plex_mqtt.core.library import Library, SavedItem
from spotify_to_plex_mqtt.core.plan import desired_state, plan_sync
from spotify_to_plex_mqtt.core.reconcile import reconcile
from spotify_to_plex_mqtt.core.snapshot import FileState, Snapshot

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def library(*labels: str) -> Library:
    items = tuple(SavedItem("spotify-playlist", f"id{i}", f"Title {i}", label=label)
                  for i, label in enumerate(labels))
    return Library(items=items, playlists={f"id{i}": str(100 + i) for i in range(len(labels))})


def snapshot(lib: Library, error: str | None = None) -> Snapshot:
    files = {"saved_items": FileState("spotify_saved_items.json", None, (), True),
             "playlists": FileState("playlists.json", error, (), True)}
    return Snapshot(lib, files)  # type: ignore[arg-type]


def test_configs_are_ours_and_share_the_device() -> None:
    topics = Topics()
    configs = {t: json.loads(p) for t, p in bridge_configs(topics).items()}
    assert set(configs) == {
        "homeassistant/button/spotify_to_plex_bridge_refresh/config",
        "homeassistant/sensor/spotify_to_plex_bridge_last_sync/config",
        "homeassistant/sensor/spotify_to_plex_bridge_published_items/config",
        "homeassistant/binary_sensor/spotify_to_plex_bridge_problem/config",
    }
    for topic, config in configs.items():
        component = topic.split("/")[1]
        assert config["default_entity_id"] == f"{component}.{config['object_id']}"
        assert config["device"]["identifiers"] == ["spotify_to_plex"]
        assert config["entity_category"] in ("config", "diagnostic")
        assert topics.is_ours(topic, bridge_configs(topics)[topic])
    button = configs["homeassistant/button/spotify_to_plex_bridge_refresh/config"]
    assert button["command_topic"] == "spotify-to-plex/command/refresh"


def test_state_keeps_its_timestamp_when_nothing_changed() -> None:
    first = bridge_state(3, (), changed=True, previous=None, now=T0)
    assert json.loads(first)["last_sync"] == "2026-01-02T03:04:05+00:00"
    assert bridge_state(3, (), changed=False, previous=first) == first
    assert bridge_state(3, (), changed=True, previous=first) != first
    assert json.loads(bridge_state(4, (), changed=False, previous=first))["published_items"] == 4
    problem = json.loads(bridge_state(3, ("playlists.json: broken",), changed=False,
                                      previous=first))
    assert problem["problems"] == ["playlists.json: broken"]


def test_unchanged_resync_publishes_nothing_and_a_change_moves_the_timestamp() -> None:
    topics = Topics()
    lib = library("Jazz", "Kids")
    _, first = plan_sync(topics, snapshot(lib), {})
    broker = apply_plan({}, first)
    _, again = plan_sync(topics, snapshot(lib), broker)
    assert len(again) == 0
    # Pretend the first sync was long ago: a change must move the timestamp, no change not.
    broker[topics.bridge_state] = bridge_state(2, (), changed=True, previous=None, now=T0)
    assert len(plan_sync(topics, snapshot(lib), broker)[1]) == 0
    _, relabel = plan_sync(topics, snapshot(library("Jazz", "Rock")), broker)
    moved = json.loads(dict(relabel.publish)[topics.bridge_state])["last_sync"]
    assert moved > "2026-01-02T03:04:05+00:00"


def test_problem_turns_on_with_an_unreadable_file() -> None:
    topics = Topics()
    lib = library("Jazz")
    desired = desired_state(topics, resolve(lib), {}, True, problems=("playlists.json: bad",))
    assert json.loads(desired[topics.bridge_state])["problems"] == ["playlists.json: bad"]


def test_disabling_bridge_entities_removes_them() -> None:
    topics = Topics()
    lib = library("Jazz")
    broker = apply_plan({}, plan_sync(topics, snapshot(lib), {})[1])
    _, plan = plan_sync(topics, snapshot(lib), broker, bridge=False)
    assert set(plan.clear) == {*bridge_configs(topics), topics.bridge_state}
    assert not plan.publish
    after = apply_plan(broker, plan)
    assert reconcile(desired_state(topics, resolve(lib), after, True, bridge=False),
                     after).clear == ()
