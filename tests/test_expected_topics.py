"""Topics read by name when a broker cuts the wildcard read short (pure, plus the ledger)."""

from __future__ import annotations

import json
from pathlib import Path

from spotify_to_plex_mqtt.bridge import bridge_configs
from spotify_to_plex_mqtt.discovery import Topics
from spotify_to_plex_mqtt.ledger import ledger_topics
from spotify_to_plex_mqtt.sync import expected_topics

TOPICS = Topics("spotify-to-plex", "homeassistant")


def test_expected_topics_cover_every_rendered_topic_of_the_slugs() -> None:
    expected = expected_topics(TOPICS, ["jazz_one", "rock"])
    for slug in ("jazz_one", "rock"):
        assert TOPICS.item_state(slug) in expected
        assert TOPICS.config(TOPICS.item_object_id(slug)) in expected
    assert TOPICS.categories_state in expected
    assert TOPICS.config(TOPICS.categories_object_id) in expected
    assert set(bridge_configs(TOPICS)) <= set(expected)
    assert TOPICS.bridge_state in expected


def test_ledger_topics_cover_our_layout_and_the_originals(tmp_path: Path) -> None:
    node = TOPICS.node_id
    (tmp_path / "mqtt_published_items.json").write_text(json.dumps([
        {"id": "p1", "entity_id": f"sensor.{node}_item_abc", "category": "Jazz"},
        {"id": "p-2", "entity_id": "sensor.someone_else_item_x", "category": "Jazz"},
        "Old-Format",
    ]), encoding="utf-8")
    topics = set(ledger_topics(tmp_path, TOPICS))
    # This node's entity id names the slug; otherwise it is worked out from the id.
    for slug in ("abc", "p2", "oldformat"):
        assert TOPICS.item_state(slug) in topics
        assert TOPICS.config(TOPICS.item_object_id(slug)) in topics
    for item_id in ("p1", "p-2", "Old-Format"):
        assert set(TOPICS.legacy_item_topics(item_id)) <= topics
    assert "homeassistant/sensor/item_Old-Format/config" in topics
    assert "spotify_to_plex/items/p1/state" in topics


def test_ledger_ids_that_would_be_wildcards_are_left_out(tmp_path: Path) -> None:
    (tmp_path / "mqtt_published_items.json").write_text(json.dumps(
        ["a+b", "#", "nul\u0000", "fine"]), encoding="utf-8")
    topics = ledger_topics(tmp_path, TOPICS)
    assert not [t for t in topics if "+" in t or "#" in t or "\0" in t]
    assert "homeassistant/sensor/item_fine/config" in topics
    assert TOPICS.item_state("ab") in topics  # the slug of "a+b" is a plain topic


def test_ledger_topics_of_a_missing_or_broken_ledger_are_empty(tmp_path: Path) -> None:
    assert ledger_topics(tmp_path, TOPICS) == []
    (tmp_path / "mqtt_published_items.json").write_text("[{", encoding="utf-8")
    assert ledger_topics(tmp_path, TOPICS) == []
