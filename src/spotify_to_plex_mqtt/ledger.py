"""`mqtt_published_items.json`: the original service's record of what it published.

Correctness never depends on it (the broker's retained messages are the truth); it is kept
for tools that read it and to preview removals in a dry run without a broker.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .discovery import Topics
from .entities import Entity, item_slug
from .files import write_json_atomic
from .library import LEDGER

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: str
    entity_id: str = ""
    category: str = ""


def read_ledger(settings_dir: Path) -> tuple[LedgerEntry, ...]:
    """Entries of the ledger in either format (ids, or objects); empty when absent or unusable."""
    try:
        data = json.loads((settings_dir / LEDGER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    if isinstance(data, dict):
        data = data.get("items", [])
    if not isinstance(data, list):
        return ()
    entries: list[LedgerEntry] = []
    for entry in data:
        if isinstance(entry, str):
            entries.append(LedgerEntry(id=entry))
        elif isinstance(entry, dict) and isinstance(entry.get("id"), str):
            entries.append(LedgerEntry(
                id=entry["id"],
                entity_id=str(entry.get("entity_id") or ""),
                category=str(entry.get("category") or ""),
            ))
    return tuple(entries)


def ledger_topics(settings_dir: Path, topics: Topics) -> list[str]:
    """Topics the runs the ledger records (ours or the original's) may have left retained.

    They are read by name when the broker cuts a wildcard read short, so that the topics of
    items removed since are found and cleared.
    """
    prefix = f"sensor.{topics.node_id}_item_"
    found: list[str] = []
    for entry in read_ledger(settings_dir):
        slug = entry.entity_id.removeprefix(prefix) if entry.entity_id.startswith(prefix) \
            else item_slug(entry.id)
        if slug:
            found += (topics.item_state(slug), topics.config(topics.item_object_id(slug)))
        found += topics.legacy_item_topics(entry.id)
    return [t for t in dict.fromkeys(found) if _plain_topic(t)]


def _plain_topic(topic: str) -> bool:
    # An id from the file may hold wildcards or NUL: as a subscription filter that matches
    # other topics, or makes the broker drop the connection.
    return not any(c in topic for c in "+#\0") and len(topic.encode()) <= 65535


def write_ledger(settings_dir: Path, entities: Iterable[Entity], node_id: str) -> bool:
    """Write the ledger; a failure is only a warning, since the broker holds the truth."""
    try:
        write_json_atomic(settings_dir / LEDGER, [
            {"id": e.id, "entity_id": f"sensor.{node_id}_item_{e.slug}", "category": e.category}
            for e in entities
        ])
    except OSError as exc:
        log.warning("cannot write %s in %s (%s); publishing is not affected", LEDGER,
                    settings_dir, exc.strerror or exc)
        return False
    return True
