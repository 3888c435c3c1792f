"""Prometheus metrics, updated from bus events, in a registry of their own.

A private `CollectorRegistry` (not prometheus_client's global one) keeps two services in one
process, and the tests, from sharing counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..core.result import SyncResult
from ..engine.events import (
    Connected,
    Disconnected,
    Event,
    FileError,
    Stopped,
    SyncFailed,
    SyncFinished,
    SyncStarted,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Syncs take from milliseconds (nothing changed) to minutes (a large first publish).
_SYNC_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_PLEX_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The service's metrics; feed it with `on_event` (a bus listener) and `set_entities`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sync_duration = Histogram(
            "spotify_to_plex_sync_duration_seconds",
            "Duration of syncs, finished or failed", buckets=_SYNC_BUCKETS, registry=r)
        self.syncs = Counter(
            "spotify_to_plex_syncs_total",
            "Syncs by the trigger that opened the batch and by outcome (finished, failed)",
            ["trigger", "outcome"], registry=r)
        self.published = Counter(
            "spotify_to_plex_mqtt_messages_published_total",
            "Retained messages published and acknowledged by the broker", registry=r)
        self.removed = Counter(
            "spotify_to_plex_mqtt_messages_removed_total",
            "Retained messages cleared and acknowledged by the broker", registry=r)
        self.entities = Gauge(
            "spotify_to_plex_entities", "Entities published at the last sync, by category",
            ["category"], registry=r)
        self.broker_connected = Gauge(
            "spotify_to_plex_broker_connected", "1 while connected to the MQTT broker",
            registry=r)
        self.last_success = Gauge(
            "spotify_to_plex_last_success_timestamp_seconds",
            "Unix time at which the last sync finished", registry=r)
        self.file_read_errors = Counter(
            "spotify_to_plex_file_read_errors_total",
            "Times an input file became unreadable or invalid", ["file"], registry=r)
        self.plex_requests = Counter(
            "spotify_to_plex_plex_requests_total",
            "HTTP requests to Plex, by outcome", ["outcome"], registry=r)
        self.plex_request_seconds = Histogram(
            "spotify_to_plex_plex_request_seconds", "Latency of HTTP requests to Plex",
            buckets=_PLEX_BUCKETS, registry=r)
        # Only one sync runs at a time: its id and start time give a failed sync's duration.
        self._started: tuple[int, float] | None = None

    def on_event(self, event: Event) -> None:
        """Bus listener: never raises for an event it does not know."""
        match event:
            case Connected():
                self.broker_connected.set(1)
            case Disconnected() | Stopped():
                self.broker_connected.set(0)
            case SyncStarted(id=ident, at=at):
                self._started = (ident, at)
            case SyncFinished() as e:
                self._started = None
                self.sync_duration.observe(e.duration)
                self.syncs.labels(_trigger(e.reasons), "finished").inc()
                self.published.inc(e.published)
                self.removed.inc(e.removed)
                self.last_success.set(e.at)
            case SyncFailed() as e:
                started, self._started = self._started, None
                if started is not None and started[0] == e.id:
                    self.sync_duration.observe(max(0.0, e.at - started[1]))
                self.syncs.labels(_trigger(e.reasons), "failed").inc()
            case FileError(file=file):
                self.file_read_errors.labels(file).inc()
            case _:
                pass

    def set_entities(self, result: SyncResult) -> None:
        """Per-category entity counts of `result`; categories that vanished are dropped."""
        self.entities.clear()
        for category, count in result.categories.items():
            self.entities.labels(category).set(count)

    def record_plex_request(self, seconds: float, outcome: str = "ok") -> None:
        """One HTTP request to Plex; `outcome` is a small fixed word (ok, not_found, error,
        timeout...), never a URL or a message, to keep the label set bounded and secret-free."""
        self.plex_requests.labels(outcome).inc()
        self.plex_request_seconds.observe(max(0.0, seconds))

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric (content type `CONTENT_TYPE`)."""
        return generate_latest(self.registry)


def _trigger(reasons: tuple[str, ...]) -> str:
    # The first reason opened the batch; counting each coalesced reason would make the sum
    # over triggers exceed the number of syncs.
    return reasons[0] if reasons else "unknown"
