"""Topics read by name when a broker cuts the wildcard read short (pure, plus the ledger)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from spotify_to_plex_mqtt.core.bridge import bridge_configs
from spotify_to_plex_mqtt.core.discovery import Topics
from spotify_to_plex_mqtt.core.plan import expected_topics
from spotify_to_plex_mqtt.inputs.ledger import ledger_topics

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
    # The original's layouts, for entries that are not in our own format only.
    for item_id in ("p-2", "Old-Format"):
        assert set(TOPICS.legacy_item_topics(item_id)) <= topics
    assert not set(TOPICS.legacy_item_topics("p1")) & topics
    assert "homeassistant/sensor/item_Old-Format/config" in topics
    assert "spotify_to_plex/items/p-2/state" in topics


@pytest.mark.parametrize("odd", [
    "a+b", "#", r"nul\u0000", r"tab\tid", r"line\n", r"del\u007f", r"c1\u0085",
    r"non\ufdd0", r"non\uffff", r"lone\ud800", r"plane\ud83f\udffe"])
def test_ledger_ids_a_broker_refuses_as_filters_are_left_out(tmp_path: Path,
                                                              odd: str) -> None:
    # Mosquitto drops the connection on a filter with a control character or a Unicode
    # noncharacter: one such id would end every full sync. (JSON escapes, as JavaScript's
    # JSON.stringify writes them, lone surrogates included.)
    (tmp_path / "mqtt_published_items.json").write_text(
        f'["{odd}", "fine", {{"id": "x", "entity_id": "sensor.{TOPICS.node_id}_item_{odd}"}}]',
        encoding="utf-8")
    topics = ledger_topics(tmp_path, TOPICS)
    assert "homeassistant/sensor/item_fine/config" in topics
    for topic in topics:
        topic.encode()  # no lone surrogate
        assert not re.search("[+#\x00-\x1f\x7f-\x9f\ufdd0-\ufdef]", topic), topic
        assert not any((ord(c) & 0xFFFE) == 0xFFFE for c in topic), topic
    assert TOPICS.item_state("x") in topics  # a bad entity id: the slug of the id instead


def test_ledger_topics_of_a_missing_or_broken_ledger_are_empty(tmp_path: Path) -> None:
    assert ledger_topics(tmp_path, TOPICS) == []
    (tmp_path / "mqtt_published_items.json").write_text("[{", encoding="utf-8")
    assert ledger_topics(tmp_path, TOPICS) == []
