"""What the page's health view shows of the past: the last syncs and Home Assistant's
birth messages, kept from the event bus (bounded)."""

from __future__ import annotations

from collections import deque
from typing import Any

from ..engine.events import Event, HomeAssistantOnline, SyncFailed, SyncFinished

SYNCS_KEPT = 50
BIRTHS_KEPT = 10


def sync_record(event: SyncFinished | SyncFailed) -> dict[str, Any]:
    """One row of the sync history."""
    if isinstance(event, SyncFinished):
        return {
            "id": event.id, "at": event.at, "trigger": list(event.reasons),
            "outcome": "finished", "entities": event.entities, "published": event.published,
            "unchanged": event.unchanged, "removed": event.removed, "skipped": event.skipped,
            "withheld": event.withheld, "duration": round(event.duration, 3),
            "error": "; ".join(event.errors) or None,
        }
    return {
        "id": event.id, "at": event.at, "trigger": list(event.reasons), "outcome": "failed",
        "entities": None, "published": None, "unchanged": None, "removed": None,
        "skipped": None, "withheld": None, "duration": None, "error": event.error,
    }


class Activity:
    """A bus listener: the last `SYNCS_KEPT` syncs, newest first, and the birth messages."""

    def __init__(self) -> None:
        self.syncs: deque[dict[str, Any]] = deque(maxlen=SYNCS_KEPT)
        self.births: deque[float] = deque(maxlen=BIRTHS_KEPT)
        self.birth_count = 0

    def on_event(self, event: Event) -> None:
        if isinstance(event, SyncFinished | SyncFailed):
            self.syncs.appendleft(sync_record(event))
        elif isinstance(event, HomeAssistantOnline):
            self.birth_count += 1
            self.births.appendleft(event.at)

    def to_dict(self) -> dict[str, Any]:
        return {"syncs": list(self.syncs),
                "homeassistant": {"births": self.birth_count, "last": list(self.births)}}
