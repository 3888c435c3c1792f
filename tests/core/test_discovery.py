"""Pure tests of `discovery`: topics, discovery configs, state payloads, `Topics.is_ours`."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from spotify_to_plex_mqtt import __version__
from spotify_to_plex_mqtt.core.discovery import (
    STATE_LIMIT,
    Topics,
    categories_state,
    encode,
    fit_state,
    render,
)
from spotify_to_plex_mqtt.core.entities import Entity, resolve
from spotify_to_plex_mqtt.core.library import Library, SavedItem

ITEM_STATE_KEYS = {"id", "name", "category", "category_id", "type", "media_content_id",
                   "media_content_type", "plex_key", "plex_path", "plex_uri", "thumb", "icon"}
ATTRIBUTES_BUDGET = 15 * 1024  # Home Assistant's recorder drops attributes over 16 KiB.

PREFIXES = [
    Topics(),
    Topics("home/s2p", "ha/discovery"),
    Topics("kids-music", "homeassistant"),
]


def sample_entities() -> tuple[Entity, ...]:
    items = [
        SavedItem(type="spotify-playlist", id="37i9dQZF1DX", title="Jazz Classics",
                  label="Jazz"),
        SavedItem(type="spotify-playlist", id="37i9DQZF1DX", title="Jazz Twin", label="Jazz"),
        SavedItem(type="spotify-playlist", id="liked-me", title="Liked Songs", label="Favs"),
        SavedItem(type="spotify-album", id="+#/a\x00b", title="Odd id", label="Rock & Roll"),
        SavedItem(type="spotify-album", id="日本語", title="Japanese", label="日本"),
        SavedItem(type="plex-media", id="plex://album/5d07", title="Abbey Road",
                  uri="/library/metadata/48213/children", label="Rock & Roll"),
        SavedItem(type="plex-media", id="com.plexapp.agents.none://0f5e?lang=en",
                  title="Road Trip", uri="/playlists/90211/items", label="Rock & Roll"),
    ]
    library = Library(tuple(items),
                      {"37i9dQZF1DX": "1", "37i9DQZF1DX": "2", "liked-me": "3"},
                      {"+#/a\x00b": "4", "日本語": "5"})
    resolution = resolve(library, plex_server_id="srv1")
    assert len(resolution.entities) == len(items)
    return resolution.entities


def assert_valid_topic(topic: str) -> None:
    assert topic
    assert "+" not in topic
    assert "#" not in topic
    assert "\x00" not in topic
    assert not topic.startswith("/")
    assert not topic.endswith("/")
    assert "//" not in topic
    assert len(topic.encode()) <= 65535


def state_names(state: str) -> list[str]:
    return [part.strip() for part in state.split(",")]


def decoded(desired: dict[str, bytes]) -> dict[str, Any]:
    return {topic: json.loads(payload) for topic, payload in desired.items()}


# --- render --------------------------------------------------------------------------------


@pytest.mark.parametrize("topics", PREFIXES)
def test_every_topic_is_valid_and_configs_match_the_pattern(topics: Topics) -> None:
    entities = sample_entities()
    desired = render(topics, entities)
    assert len(desired) == 2 * len(entities) + 2
    config_re = re.compile(rf"^{re.escape(topics.discovery_prefix)}/sensor/[A-Za-z0-9_-]+/config$")
    configs = [t for t in desired if t.endswith("/config")]
    assert len(configs) == len(entities) + 1
    for topic in desired:
        assert_valid_topic(topic)
        if topic.endswith("/config"):
            assert config_re.match(topic), topic
        else:
            assert topic.startswith(f"{topics.topic_prefix}/")


@pytest.mark.parametrize("topics", PREFIXES)
def test_every_config_has_the_required_fields(topics: Topics) -> None:
    payloads = decoded(render(topics, sample_entities()))
    configs = {t: p for t, p in payloads.items() if t.endswith("/config")}
    unique_ids = set()
    object_ids = set()
    devices = []
    for topic, config in configs.items():
        object_id = config["object_id"]
        assert topic == f"{topics.discovery_prefix}/sensor/{object_id}/config"
        assert isinstance(config["unique_id"], str)
        assert config["unique_id"].startswith(f"{topics.node_id}_")
        assert object_id.startswith(f"{topics.node_id}_")
        assert config["default_entity_id"] == f"sensor.{object_id}"
        assert re.fullmatch(r"[a-z0-9_]+", object_id)
        assert config["availability_topic"] == f"{topics.topic_prefix}/status"
        assert config["payload_available"] == "online"
        assert config["payload_not_available"] == "offline"
        assert set(config["origin"]) >= {"name", "sw", "url"}
        assert config["origin"]["sw"] == __version__
        assert config["origin"]["url"].startswith("https://")
        assert config["device"]["identifiers"]
        assert config["state_topic"] in payloads
        assert config["json_attributes_topic"] == config["state_topic"]
        assert config["name"]
        unique_ids.add(config["unique_id"])
        object_ids.add(object_id)
        devices.append(config["device"])
    assert len(unique_ids) == len(configs)
    assert len(object_ids) == len(configs)
    assert all(d == devices[0] for d in devices)


def test_default_entity_ids_are_those_of_the_original_service() -> None:
    (entity,) = resolve(Library((SavedItem(type="spotify-playlist", id="37i9dQZF1DX",
                                           title="Liked", label="Favs"),),
                                {"37i9dQZF1DX": "3"})).entities
    desired = decoded(render(Topics(), [entity]))
    item_config = desired["homeassistant/sensor/spotify_to_plex_item_37i9dqzf1dx/config"]
    assert item_config["default_entity_id"] == "sensor.spotify_to_plex_item_37i9dqzf1dx"
    assert item_config["object_id"] == "spotify_to_plex_item_37i9dqzf1dx"
    assert item_config["state_topic"] == "spotify-to-plex/items/37i9dqzf1dx"
    cat_config = desired["homeassistant/sensor/spotify_to_plex_categories/config"]
    assert cat_config["name"] == "Music Categories"
    assert cat_config["state_topic"] == "spotify-to-plex/categories"


def test_item_state_payload_has_exactly_the_contract_keys() -> None:
    topics = Topics()
    entities = sample_entities()
    payloads = decoded(render(topics, entities))
    for entity in entities:
        state = payloads[topics.item_state(entity.slug)]
        assert set(state) == ITEM_STATE_KEYS
        assert state["id"] == entity.id
        assert state["name"] == entity.name
        assert state["category"] == entity.category
        assert state["media_content_id"] == f"plex://srv1/{entity.plex_key}"
        assert state["plex_path"] == f"/library/metadata/{entity.plex_key}"
        assert state["plex_key"] == entity.plex_key
        assert state["media_content_type"] in ("playlist", "album")
        assert state["plex_uri"] == f"plex://srv1/{entity.plex_key}"
        assert state["category_id"] == entity.category_id
        assert state["category_id"]


def test_payloads_are_compact_utf8_json() -> None:
    payload = encode({"name": "日本", "n": 1})
    assert payload == '{"name":"日本","n":1}'.encode()


def test_render_is_deterministic() -> None:
    entities = sample_entities()
    assert render(Topics(), entities) == render(Topics(), tuple(reversed(entities)))


def test_render_of_nothing_still_has_the_categories_sensor() -> None:
    payloads = decoded(render(Topics(), []))
    assert set(payloads) == {"spotify-to-plex/categories",
                             "homeassistant/sensor/spotify_to_plex_categories/config"}
    state = payloads["spotify-to-plex/categories"]
    assert state["categories"] == []
    assert state["count"] == 0


# --- categories ----------------------------------------------------------------------------


def test_categories_state_from_render() -> None:
    topics = Topics()
    payloads = decoded(render(topics, sample_entities(), {"Kept": 2}))
    state = payloads[topics.categories_state]
    assert state["categories"] == ["Favs", "Jazz", "Kept", "Rock & Roll", "日本"]
    assert state["count"] == 5
    assert state["items"] == {"Favs": 1, "Jazz": 2, "Kept": 2, "Rock & Roll": 3, "日本": 1}
    assert state["total_items"] == 9
    assert state_names(state["state"]) == ["Favs", "Jazz", "Kept", "Rock & Roll", "日本"]


def test_categories_are_sorted_whatever_the_input_order() -> None:
    counts = {"b": 1, "A": 2, "c": 3, "B": 4, "a": 5}
    state = categories_state(counts)
    assert sorted(state["categories"]) == sorted(counts)
    assert state["categories"] in (sorted(counts),
                                   sorted(counts, key=lambda c: (c.casefold(), c)))
    assert categories_state(dict(reversed(counts.items()))) == state


def test_long_category_list_fits_the_state_limit() -> None:
    names = [f"Category {i:03d} " + "x" * 20 for i in range(150)]
    state = categories_state(dict.fromkeys(names, 2))
    assert len(state["state"]) <= STATE_LIMIT
    assert state["state"].endswith(" more")
    assert state["categories"] == sorted(names)
    assert state["count"] == 150
    assert state["items"] == dict.fromkeys(names, 2)
    assert state["total_items"] == 300


def test_absurd_category_list_is_cut_to_stay_under_the_attribute_limit() -> None:
    # 500 names of 93 characters cannot fit Home Assistant's 16 KiB attribute limit at all:
    # the counts go first, then the list is shortened and flagged, never the count.
    names = [f"Category {i:03d} " + "x" * 80 for i in range(500)]
    state = categories_state(dict.fromkeys(names, 2))
    assert len(json.dumps(state).encode()) < 16 * 1024
    assert state["truncated"] is True
    assert "items" not in state
    assert state["count"] == 500
    assert state["categories"] == sorted(names)[: len(state["categories"])]
    assert len(state["categories"]) > 100


def test_state_of_one_huge_category_fits() -> None:
    state = categories_state({"y" * 1000: 1})
    assert len(state["state"]) <= STATE_LIMIT
    assert state["categories"] == ["y" * 1000]


@pytest.mark.parametrize("count", [1, 5, 30, 100, 1000])
def test_fit_state(count: int) -> None:
    names = [f"Genre number {i}" for i in range(count)]
    text = fit_state(names)
    assert len(text) <= STATE_LIMIT
    parts = state_names(text)
    if len(",".join(names)) <= STATE_LIMIT:
        assert parts == names
    else:
        shown = parts[:-1]
        assert shown == names[:len(shown)]
        assert parts[-1] == f"+{count - len(shown)} more"
        # Nearly all of the limit is used: no needless truncation.
        assert len(text) > STATE_LIMIT - 40


def test_categories_attributes_stay_well_under_16_kib() -> None:
    names = [f"Evening Jazz Mix {i:03d}" for i in range(200)]  # 20 characters each
    payload = encode(categories_state(dict.fromkeys(names, 7)))
    assert len(payload) < ATTRIBUTES_BUDGET, len(payload)


def test_categories_attributes_with_short_names_are_small() -> None:
    names = [f"Genre {i:03d}" for i in range(200)]
    payload = encode(categories_state(dict.fromkeys(names, 7)))
    assert len(payload) < ATTRIBUTES_BUDGET, len(payload)


def test_category_ids_match_those_of_the_items() -> None:
    # Automations join items to categories by id: the categories sensor must give every
    # category the same non-empty id that its items carry in `category_id`.
    topics = Topics()
    entities = sample_entities()
    payloads = decoded(render(topics, entities))
    names = payloads[topics.categories_state]["categories"]
    for entity in entities:
        # As the original service: the id is the category in lower case, derivable from
        # the categories sensor's names, so that sensor need not repeat them (16 KiB limit).
        assert payloads[topics.item_state(entity.slug)]["category_id"] == entity.category.lower()
        assert entity.category in names


# --- Topics.is_ours ------------------------------------------------------------------------


def config_payload(unique_id: str, **extra: Any) -> bytes:
    return json.dumps({"unique_id": unique_id, "name": "x", **extra}).encode()


@pytest.mark.parametrize("topics", PREFIXES)
def test_our_rendered_messages_are_ours(topics: Topics) -> None:
    for topic, payload in render(topics, sample_entities()).items():
        assert topics.is_ours(topic, payload), topic


def test_legacy_item_config_is_ours() -> None:
    topics = Topics()
    # As the original service wrote them: its first layout, then its newer one.
    assert topics.is_ours("homeassistant/sensor/item_x/config", config_payload(
        "spotify_to_plex_item_x", state_topic="spotify-to-plex/items/x"))
    assert topics.is_ours("homeassistant/sensor/spotify_to_plex_item_37i9/config",
                          config_payload("spotify_to_plex_item_37i9",
                                         state_topic="spotify_to_plex/items/37i9/state"))


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("homeassistant/sensor/0x00158d_temperature/config",
         config_payload("0x00158d_temperature", device={"name": "spotify_to_plex"})),
        ("homeassistant/sensor/item_x/config", config_payload("zigbee2mqtt_item_x")),
        ("homeassistant/sensor/item_x/config", config_payload("my_spotify_to_plex_x")),
        ("homeassistant/sensor/item_x/config", config_payload("spotify_to_plex")),
        ("homeassistant/sensor/item_x/config", b"spotify_to_plex_x not json"),
        ("homeassistant/sensor/item_x/config", b'["spotify_to_plex_x"]'),
        ("homeassistant/sensor/item_x/config", b'"spotify_to_plex_x"'),
        ("homeassistant/sensor/item_x/config", b"\xffspotify_to_plex_x"),
        ("homeassistant/sensor/item_x/config", b""),
        ("homeassistant/sensor/item_x/config",
         json.dumps({"unique_id": 5, "x": "spotify_to_plex_"}).encode()),
        ("homeassistant/sensor/item_x/state", config_payload("spotify_to_plex_x")),
        ("homeassistant/status", b"online"),
        ("otherdisc/sensor/item_x/config", config_payload("spotify_to_plex_x")),
        ("spotify-to-plex/status", b"online"),
        ("spotify-to-plex/command/refresh", b"1"),
        ("spotify-to-plex/_scan/abc", b"1"),
        ("spotify-to-plex-other/items/x", b"{}"),
        ("zigbee2mqtt/bridge/state", b"online"),
    ],
)
def test_other_messages_are_not_ours(topic: str, payload: bytes) -> None:
    assert not Topics().is_ours(topic, payload)


def test_our_state_topics_are_ours() -> None:
    topics = Topics()
    assert topics.is_ours("spotify-to-plex/items/old_item", b'{"id": "x"}')
    assert topics.is_ours("spotify-to-plex/categories", b"{}")


def test_state_topics_of_the_original_service_are_ours() -> None:
    # The newest original service kept item states under `spotify_to_plex/...`.
    topics = Topics()
    assert topics.is_ours("spotify_to_plex/items/37i9dQZF1DX/state", b'{"id": "37i9dQZF1DX"}')
    assert topics.is_ours("spotify_to_plex/items/plex://album/5d07/state", b'{"id": "x"}')
    assert topics.is_ours("spotify_to_plex/categories/state", b"{}")
    # Our own layout under that prefix is another instance's (MQTT_TOPIC_PREFIX=spotify_to_plex).
    assert not topics.is_ours("spotify_to_plex/items/37i9dqzf1dx", b'{"id": "37i9dQZF1DX"}')
    assert not topics.is_ours("spotify_to_plex_other/items/x", b"{}")
    assert all(f.endswith("#") or f.endswith("/config") for f in topics.scan_filters)


def test_custom_prefixes() -> None:
    topics = Topics("home/s2p", "ha")
    assert topics.node_id == "home_s2p"
    assert topics.status == "home/s2p/status"
    assert topics.item_state("a") == "home/s2p/items/a"
    assert topics.config(topics.item_object_id("a")) == "ha/sensor/home_s2p_item_a/config"
    assert topics.is_ours("home/s2p/items/a", b'{"id": "a"}')
    assert not topics.is_ours("home/s2p/status", b"online")
    assert not topics.is_ours("home/s2p/command/refresh", b"")
    assert topics.is_ours("ha/sensor/home_s2p_item_a/config",
                          config_payload("home_s2p_item_a", state_topic="home/s2p/items/a"))
    # The default instance's messages are not ours, and ours are not the default's.
    assert not topics.is_ours("homeassistant/sensor/spotify_to_plex_item_a/config",
                              config_payload("spotify_to_plex_item_a"))
    assert not topics.is_ours("ha/sensor/spotify_to_plex_item_a/config",
                              config_payload("spotify_to_plex_item_a"))
    assert not topics.is_ours("spotify-to-plex/items/a", b"{}")
    assert not Topics().is_ours("ha/sensor/home_s2p_item_a/config",
                                config_payload("home_s2p_item_a"))


def test_two_instances_with_overlapping_prefixes_do_not_claim_each_other() -> None:
    # A second instance on the same broker, e.g. MQTT_TOPIC_PREFIX=spotify-to-plex-kids,
    # must not have its configs cleared by the default instance (and vice versa).
    default, kids = Topics(), Topics("spotify-to-plex-kids")
    for topic, payload in render(kids, sample_entities()).items():
        assert not default.is_ours(topic, payload), topic
    for topic, payload in render(default, sample_entities()).items():
        assert not kids.is_ours(topic, payload), topic


def test_scan_filters_cover_our_topics() -> None:
    topics = Topics("home/s2p", "ha")
    filters = topics.scan_filters
    assert filters[:2] == ("ha/+/+/config", "home/s2p/#")
    for topic_filter in filters:
        assert topic_filter.endswith(("/#", "/config"))
        assert "#" not in topic_filter[:-1]


@pytest.mark.parametrize("prefix", ["", "a/#", "a/+/b", "/lead", "trail/", " space", "nul\x00"])
def test_topics_refuse_a_prefix_no_broker_would_take(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        Topics(prefix)
    with pytest.raises(ValueError, match="prefix"):
        Topics("spotify-to-plex", prefix)


def test_the_item_entity_id_is_the_sensor_of_the_item_object_id() -> None:
    topics = Topics("home/s2p", "ha")
    assert topics.item_entity_id("jazz_1a2b") == f"sensor.{topics.node_id}_item_jazz_1a2b"
    assert topics.item_entity_id("jazz_1a2b") == f"sensor.{topics.item_object_id('jazz_1a2b')}"
