"""Prometheus metrics fed from bus events, each `Metrics` in its own registry."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from spotify_to_plex_mqtt.core.entities import Entity
from spotify_to_plex_mqtt.core.reconcile import Plan
from spotify_to_plex_mqtt.core.result import SyncResult
from spotify_to_plex_mqtt.engine.events import (
    Connected,
    Disconnected,
    EventBus,
    FileError,
    HomeAssistantOnline,
    Stopped,
    SyncFailed,
    SyncFinished,
    SyncStarted,
)
from spotify_to_plex_mqtt.http.metrics import Metrics

NAMES = (
    "spotify_to_plex_sync_duration_seconds",
    "spotify_to_plex_syncs_total",
    "spotify_to_plex_mqtt_messages_published_total",
    "spotify_to_plex_mqtt_messages_removed_total",
    "spotify_to_plex_entities",
    "spotify_to_plex_broker_connected",
    "spotify_to_plex_last_success_timestamp_seconds",
    "spotify_to_plex_file_read_errors_total",
    "spotify_to_plex_plex_requests_total",
    "spotify_to_plex_plex_request_seconds",
)


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the rendered text, keyed by name and sorted labels."""
    text = metrics.render().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def entity(ident: str, category: str) -> Entity:
    return Entity(ident, ident.lower(), ident, category, "spotify-album", "album", "7")


def result(*entities: Entity) -> SyncResult:
    return SyncResult(entities=entities, skipped=(), plan=Plan(), published=0, removed=0)


def test_every_metric_is_exposed_before_any_event() -> None:
    text = Metrics().render().decode()
    for name in NAMES:
        assert f"# TYPE {name.removesuffix('_total')}" in text, name


def test_events_update_the_metrics() -> None:
    metrics = Metrics()
    bus = EventBus()
    bus.listen(metrics.on_event)
    bus.emit(Connected("mqtt://broker:1883"))
    bus.emit(SyncStarted(1, ("start", "file")))
    bus.emit(SyncFinished(1, ("start", "file"), 3, 5, 1, 2, 0, 0, 0.3, at=1_700_000_000.0))
    bus.emit(SyncStarted(2, ("timer",), at=100.0))
    bus.emit(SyncFailed(2, ("timer",), "timed out", 1, 30.0, at=102.5))
    bus.emit(FileError("playlists.json", "not JSON"))
    bus.emit(FileError("playlists.json", "still not JSON"))
    bus.emit(HomeAssistantOnline("homeassistant/status"))  # not measured, and not an error
    values = samples(metrics)
    assert values[("spotify_to_plex_broker_connected", ())] == 1
    assert values[("spotify_to_plex_syncs_total",
                   (("outcome", "finished"), ("trigger", "start")))] == 1
    assert values[("spotify_to_plex_syncs_total",
                   (("outcome", "failed"), ("trigger", "timer")))] == 1
    assert values[("spotify_to_plex_mqtt_messages_published_total", ())] == 5
    assert values[("spotify_to_plex_mqtt_messages_removed_total", ())] == 2
    assert values[("spotify_to_plex_last_success_timestamp_seconds", ())] == 1_700_000_000.0
    assert values[("spotify_to_plex_file_read_errors_total",
                   (("file", "playlists.json"),))] == 2
    assert values[("spotify_to_plex_sync_duration_seconds_count", ())] == 2
    assert values[("spotify_to_plex_sync_duration_seconds_sum", ())] == pytest.approx(2.8)
    bus.emit(Disconnected("mqtt://broker:1883", "gone", 1.0))
    assert samples(metrics)[("spotify_to_plex_broker_connected", ())] == 0
    bus.emit(Connected("mqtt://broker:1883"))
    bus.emit(Stopped("SIGTERM"))
    assert samples(metrics)[("spotify_to_plex_broker_connected", ())] == 0


def test_entities_per_category_follow_the_last_result() -> None:
    metrics = Metrics()
    metrics.set_entities(result(entity("a", "Jazz"), entity("b", "Jazz"), entity("c", "Kids")))
    values = samples(metrics)
    assert values[("spotify_to_plex_entities", (("category", "Jazz"),))] == 2
    assert values[("spotify_to_plex_entities", (("category", "Kids"),))] == 1
    metrics.set_entities(result(entity("c", "Kids")))
    values = samples(metrics)
    assert ("spotify_to_plex_entities", (("category", "Jazz"),)) not in values
    assert values[("spotify_to_plex_entities", (("category", "Kids"),))] == 1


def test_plex_requests() -> None:
    metrics = Metrics()
    metrics.record_plex_request(0.02)
    metrics.record_plex_request(0.5, "timeout")
    metrics.record_plex_request(-1.0, "error")  # a clock step never makes a negative sample
    values = samples(metrics)
    assert values[("spotify_to_plex_plex_requests_total", (("outcome", "ok"),))] == 1
    assert values[("spotify_to_plex_plex_requests_total", (("outcome", "timeout"),))] == 1
    assert values[("spotify_to_plex_plex_request_seconds_count", ())] == 3
    assert values[("spotify_to_plex_plex_request_seconds_sum", ())] == pytest.approx(0.52)


def test_instances_do_not_share_state_or_the_global_registry() -> None:
    first, second = Metrics(), Metrics()  # a second registration would raise if shared
    first.on_event(Connected("b"))
    assert samples(second)[("spotify_to_plex_broker_connected", ())] == 0
    assert REGISTRY.get_sample_value("spotify_to_plex_broker_connected") is None
