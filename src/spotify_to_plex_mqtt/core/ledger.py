"""Pure: the entries of the ledger (`mqtt_published_items.json`, in either format) and the
topics they may have left retained. Reading and writing it: `inputs.ledger`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .discovery import Topics
from .entities import item_slug
from .library import LEDGER
from .problems import FileProblem


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: str
    entity_id: str = ""
    category: str = ""


def parse_entries(data: object) -> tuple[LedgerEntry, ...]:
    if isinstance(data, dict):
        data = data.get("items", [])
    if not isinstance(data, list):
        raise FileProblem(LEDGER, f"expected a list of ids at the top level, found "
                                  f"{type(data).__name__}", "")
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


def entry_topics(entries: Iterable[LedgerEntry], topics: Topics) -> list[str]:
    """Topics the runs that `entries` record (ours or the original's) may have left retained.

    They are read by name when the broker cuts a wildcard read short, so that the topics of
    items removed since are found and cleared. The original's layouts are added only for
    entries that are not in our own format: those our runs wrote, and cleared.
    """
    prefix = topics.item_entity_id("")
    found: list[str] = []
    for entry in entries:
        ours = entry.entity_id.removeprefix(prefix)
        if not (entry.entity_id.startswith(prefix) and _SLUG.fullmatch(ours)):
            ours = ""
            found += (t for t in topics.legacy_item_topics(entry.id) if _plain_topic(t))
        if slug := ours or item_slug(entry.id):
            found += topics.item_topics(slug)
    return list(dict.fromkeys(found))


_SLUG = re.compile(r"[a-z0-9_]+")
# Not in a subscription filter: wildcards, and what Mosquitto refuses by dropping the
# connection (control characters, Unicode noncharacters); surrogates cannot be UTF-8.
_NOT_PLAIN = re.compile("[+#\\x00-\\x1f\\x7f-\\x9f\\ufdd0-\\ufdef\\ud800-\\udfff]")


def _plain_topic(topic: str) -> bool:
    """Whether `topic`, which holds an id from the file, is safe as an exact filter."""
    # U+xxFFFE and U+xxFFFF are noncharacters in every plane.
    if _NOT_PLAIN.search(topic) or any((ord(c) & 0xFFFE) == 0xFFFE for c in topic):
        return False
    return len(topic.encode()) <= 65535
