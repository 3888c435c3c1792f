"""Typed health events, a small fan-out bus, and the status snapshot built from them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("spotify_to_plex_mqtt")


@dataclass(frozen=True, slots=True)
class Event:
    """Base of all events; `at` is wall-clock seconds (Unix time)."""

    at: float = field(default_factory=time.time, kw_only=True)

    @property
    def kind(self) -> str:
        return _KINDS[type(self)]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the API; `at` as ISO 8601 UTC, which people and tools read."""
        return {"event": self.kind, **asdict(self), "at": iso_time(self.at)}


def iso_time(at: float) -> str:
    """`at` (Unix seconds) as ISO 8601 in UTC with milliseconds: 2026-12-02T06:03:33.123Z."""
    moment = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
    return moment.replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Started(Event):
    version: str


@dataclass(frozen=True, slots=True)
class Connected(Event):
    broker: str


@dataclass(frozen=True, slots=True)
class Disconnected(Event):
    broker: str
    reason: str
    retry_in: float


@dataclass(frozen=True, slots=True)
class SyncStarted(Event):
    id: int
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SyncFinished(Event):
    id: int
    reasons: tuple[str, ...]
    entities: int
    published: int
    unchanged: int
    removed: int
    withheld: int
    skipped: int
    duration: float
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SyncFailed(Event):
    id: int
    reasons: tuple[str, ...]
    error: str
    attempt: int
    retry_in: float | None


@dataclass(frozen=True, slots=True)
class FileChanged(Event):
    files: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FileError(Event):
    file: str
    error: str


@dataclass(frozen=True, slots=True)
class FileRecovered(Event):
    file: str


@dataclass(frozen=True, slots=True)
class HomeAssistantOnline(Event):
    """Home Assistant's birth message (`online` on its status topic) arrived."""

    topic: str


@dataclass(frozen=True, slots=True)
class Availability(Event):
    """Whether our status topic says `online` as it should; `problem` says why not."""

    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Stopped(Event):
    reason: str


_KINDS: dict[type[Event], str] = {
    Started: "started", Connected: "connected", Disconnected: "disconnected",
    SyncStarted: "sync_started", SyncFinished: "sync_finished", SyncFailed: "sync_failed",
    FileChanged: "file_changed", FileError: "file_error", FileRecovered: "file_recovered",
    HomeAssistantOnline: "homeassistant_online",
    Availability: "availability",
    Stopped: "stopped",
}

Listener = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out to listeners, plus bounded queues for async consumers."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._queues: list[asyncio.Queue[Event]] = []

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def queue(self, maxsize: int = 1000) -> asyncio.Queue[Event]:
        """A queue that receives every event; a consumer that falls behind loses the oldest."""
        q: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self._queues.append(q)
        return q

    def unqueue(self, q: asyncio.Queue[Event]) -> None:
        if q in self._queues:
            self._queues.remove(q)

    def emit(self, event: Event) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed on %s", event.kind)
        for q in self._queues:
            if q.full():
                q.get_nowait()
            q.put_nowait(event)


@dataclass(slots=True)
class Status:
    """What the service is doing now; updated from events, read by logs and the API."""

    running: bool = False
    connected: bool = False
    broker: str = ""
    last_sync: SyncFinished | None = None
    last_failure: SyncFailed | None = None
    syncing: bool = False
    file_errors: dict[str, str] = field(default_factory=dict)
    # Per input file, the loader's warnings about entries it skipped (set by each sync).
    malformed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    availability: str | None = None

    def on_event(self, event: Event) -> None:
        match event:
            case Started():
                self.running = True
            case Connected(broker=broker):
                self.connected, self.broker = True, broker
            case Disconnected():
                self.connected = False
            case SyncStarted():
                self.syncing = True
            case SyncFinished():
                self.syncing, self.last_sync = False, event
            case SyncFailed():
                self.syncing, self.last_failure = False, event
            case FileError(file=file, error=error):
                self.file_errors[file] = error
            case FileRecovered(file=file):
                self.file_errors.pop(file, None)
            case Availability(problem=problem):
                self.availability = problem
            case Stopped():
                self.running = self.connected = False
            case _:
                pass

    @property
    def healthy(self) -> bool:
        last_ok = self.last_sync is not None and (
            self.last_failure is None or self.last_failure.at < self.last_sync.at)
        return self.connected and last_ok and self.availability is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "connected": self.connected,
            "broker": self.broker,
            "syncing": self.syncing,
            "healthy": self.healthy,
            "last_sync": self.last_sync.to_dict() if self.last_sync else None,
            "last_failure": self.last_failure.to_dict() if self.last_failure else None,
            "file_errors": dict(self.file_errors),
            "availability": self.availability,
        }
