"""Topics read by name when a broker cuts the wildcard read short (pure, plus the ledger)."""

from __future__ import annotations

import json
from pathlib import Path

from spotify_to_plex_mqtt.bridge import bridge_configs
from spotify_to_plex_mqtt.discovery import Topics
from spotify_to_plex_mqtt.ledger import ledger_slugs
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


def test_expected_topics_without_bridge_leave_the_bridge_out() -> None:
    expected = expected_topics(TOPICS, ["a"], bridge=False)
    assert TOPICS.bridge_state not in expected
    assert not set(bridge_configs(TOPICS)) & set(expected)
    assert len(expected) == 4


def test_ledger_slugs_come_from_entity_ids_of_this_node(tmp_path: Path) -> None:
    node = TOPICS.node_id
    (tmp_path / "mqtt_published_items.json").write_text(json.dumps([
        {"id": "p1", "entity_id": f"sensor.{node}_item_abc", "category": "Jazz"},
        {"id": "p2", "entity_id": "sensor.someone_else_item_x", "category": "Jazz"},
        "old-format-id",
    ]), encoding="utf-8")
    assert ledger_slugs(tmp_path, node) == ["abc"]


def test_ledger_slugs_of_a_missing_or_broken_ledger_are_empty(tmp_path: Path) -> None:
    assert ledger_slugs(tmp_path, TOPICS.node_id) == []
    (tmp_path / "mqtt_published_items.json").write_text("[{", encoding="utf-8")
    assert ledger_slugs(tmp_path, TOPICS.node_id) == []
