"""The per-connection mirror: pure digest logic, and file-change syncs that skip the read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from library_files import SettingsDir, varied_library
from mosquitto import Mosquitto, retained
from plex_standin import PlexStandIn
from spotify_to_plex_mqtt.core.discovery import Topics
from spotify_to_plex_mqtt.core.mirror import STALE, Mirror
from spotify_to_plex_mqtt.core.reconcile import UNCHANGED
from spotify_to_plex_mqtt.core.result import SyncResult
from spotify_to_plex_mqtt.engine.sync import run_sync
from spotify_to_plex_mqtt.inputs.source import LibrarySource
from spotify_to_plex_mqtt.mqtt.retained import Retained
from spotify_to_plex_mqtt.mqtt.session import BrokerSession
from spotify_to_plex_mqtt.plex.enricher import PlexLink
from spotify_to_plex_mqtt.settings.config import load_settings

TOPICS = Topics()


def test_matching_digests_compare_equal_and_others_do_not() -> None:
    mirror = Mirror().load([("a", b'{"x":1}'), ("b", b'{"x":2}'), ("gone", b"{}")])
    actual = mirror.actual_for({"a": b'{"x":1}', "b": b'{"x":3}', "new": b"{}"})
    assert actual["a"] == b'{"x":1}'
    assert actual["b"] == STALE
    assert actual["gone"] == STALE  # ours, not desired: to be cleared
    assert "new" not in actual


def test_acknowledged_clears_and_publishes_update_the_mirror() -> None:
    mirror = Mirror().load([("a", b"1")])
    mirror.record("a", b"")
    mirror.record("b", b"2")
    assert mirror.actual_for({"a": b"1", "b": b"2"}) == {"b": b"2"}
    assert len(mirror) == 1


def test_unchanged_placeholders_compare_equal_only_where_the_mirror_has_the_topic() -> None:
    mirror = Mirror().load([("a", b"1")])
    assert mirror.has("a")
    assert not mirror.has("b")
    assert mirror.actual_for({"a": UNCHANGED, "b": UNCHANGED}) == {"a": UNCHANGED}


def test_whole_topics_keep_their_payload() -> None:
    mirror = Mirror(whole=lambda t: t == "state").load([("state", b"old"), ("x", b"1")])
    assert mirror.actual_for({"state": b"new", "x": b"1"}) == {"state": b"old", "x": b"1"}


class CountingSession(BrokerSession):
    reads = 0

    async def scan(self, *args: Any, **kwargs: Any) -> Retained:
        self.reads += 1
        return await super().scan(*args, **kwargs)

    async def publish_many(self, messages: Sequence[tuple[str, bytes]],
                           *args: Any, **kwargs: Any) -> int:
        self.sent = [topic for topic, _ in messages]
        return await super().publish_many(messages, *args, **kwargs)


@pytest.mark.broker
def test_a_file_change_sync_trusts_the_mirror_and_leaves_the_broker_right(
        clean_broker: Mosquitto, tmp_path: Path) -> None:
    lib: SettingsDir = varied_library(tmp_path / "settings").write()
    settings = load_settings(["--one-shot", "--settings-dir", str(lib.root)], {
        "MQTT_BROKER_URL": clean_broker.url, "MQTT_USERNAME": clean_broker.username,
        "MQTT_PASSWORD": clean_broker.password})
    item, second = lib.labelled_ids[0], lib.labelled_ids[-1]
    slug_before: list[str] = []

    async def scenario() -> tuple[SyncResult, SyncResult, int, list[str]]:
        source = LibrarySource(lib.root)
        async with CountingSession(settings.mqtt) as session:
            await run_sync(session, TOPICS, source.read(), keep_mirror=True)
            lib.relabel(item, "Relabelled")
            changed = await run_sync(session, TOPICS, source.read(), keep_mirror=True,
                                     trust_mirror=True)
            reads, sent = session.reads, session.sent
            assert reads == 1  # the first sync only
            slug_before.extend(e.slug for e in changed.entities if e.id == item)
            # A second change renders only what changed since the first (mirror.sources).
            lib.relabel(second, "Second")
            again = await run_sync(session, TOPICS, source.read(), keep_mirror=True,
                                   trust_mirror=True)
            assert 0 < again.published <= 4
            check = await run_sync(session, TOPICS, source.read())  # a full read
            return changed, check, reads, sent

    changed, check, reads, sent = asyncio.run(scenario())
    assert reads == 1  # the first sync only
    assert TOPICS.item_state(slug_before[0]) in sent
    assert TOPICS.categories_state in sent
    assert changed.published == len(sent) <= 4
    assert check.published == 0
    assert check.removed == 0
    state = retained(clean_broker, [TOPICS.item_state(slug_before[0])])
    assert b'"Relabelled"' in state[TOPICS.item_state(slug_before[0])]


@pytest.mark.broker
async def test_a_file_change_sync_carries_artwork_until_the_plex_settings_change(
        clean_broker: Mosquitto, tmp_path: Path) -> None:
    lib: SettingsDir = varied_library(tmp_path / "settings").write()
    settings = load_settings(["--one-shot", "--settings-dir", str(lib.root)], {
        "MQTT_BROKER_URL": clean_broker.url, "MQTT_USERNAME": clean_broker.username,
        "MQTT_PASSWORD": clean_broker.password})
    item = lib.labelled_ids[0]

    def use_server(plex: PlexStandIn, server_id: str) -> None:
        plex.machine_id = server_id  # what /identity says, and it wins over plex.json's id
        (lib.root / "plex.json").write_text(json.dumps(
            {"uri": plex.url, "serverToken": plex.token, "id": server_id}), encoding="utf-8")

    def servers(result: SyncResult) -> set[str]:
        return {e.plex_server_id for e in result.entities}

    async with PlexStandIn(playlists={"90001": "/thumb/jazz"}) as plex:
        use_server(plex, "servera")
        link = PlexLink(lib.root, {})
        source = LibrarySource(lib.root)
        try:
            async with BrokerSession(settings.mqtt) as session:
                first = await run_sync(session, TOPICS, source.read(), link, keep_mirror=True)
                asked = len(plex.log)
                lib.relabel(item, "Relabelled")
                carried = await run_sync(session, TOPICS, source.read(), link,
                                         keep_mirror=True, trust_mirror=True)
                assert len(plex.log) == asked  # the relabelled item's artwork was cached
                # Artwork due for its refresh is asked for again, unchanged items included.
                plex.playlists["90001"] = "/thumb/jazz-new"
                link.cache.refresh_after = 0.0
                other = lib.labelled_ids[-1]
                assert other != item
                lib.relabel(other, "Relabelled too")  # any change; 90001's item is unchanged
                refreshed = await run_sync(session, TOPICS, source.read(), link,
                                           keep_mirror=True, trust_mirror=True)
                link.cache.refresh_after = 24 * 3600.0
                use_server(plex, "serverb")
                moved = await run_sync(session, TOPICS, source.read(), link,
                                       keep_mirror=True, trust_mirror=True)
        finally:
            await link.aclose()

    assert servers(first) == servers(carried) == {"servera"}
    assert {e.plex_key: e.thumb for e in refreshed.entities}["90001"] == "/thumb/jazz-new"
    assert 0 < carried.published <= 4
    # Every entity's plex_uri names the new server: none was carried over from before.
    assert servers(moved) == {"serverb"}
    assert moved.published == len(moved.entities)  # every item state (a plex_uri each)
    jazz = next(e for e in moved.entities if e.plex_key == "90001")
    assert jazz.thumb == "/thumb/jazz-new"
    state = retained(clean_broker, [TOPICS.item_state(jazz.slug)])
    assert b"plex://serverb/90001" in state[TOPICS.item_state(jazz.slug)]
