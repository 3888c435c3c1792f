"""`mqtt_published_items.json`: the original service's record of what it published.

Correctness never depends on it (the broker's retained messages are the truth); it is kept
for tools that read it and to preview removals in a dry run without a broker.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..core.discovery import Topics, item_entity_id
from ..core.entities import Entity, item_slug
from ..core.library import LEDGER
from ..core.problems import FileMissing, FileProblem, guarded
from ..settings.jsonfile import read_json_file
from .atomic import write_json_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: str
    entity_id: str = ""
    category: str = ""


# The last problem reported for each ledger path: a corrupt ledger is reported once, not at
# every sync, and again only after it was read well or changed its fault.
_reported: dict[Path, str] = {}


def _report(path: Path, problem: str | None) -> None:
    if problem is None:
        _reported.pop(path, None)
    elif _reported.get(path) != problem:
        _reported[path] = problem
        log.warning("%s; it is ignored (what to clear is read from the broker). Delete it or "
                    "replace it by a list of ids; the next complete sync rewrites it", problem)


def _entries(data: object) -> tuple[LedgerEntry, ...]:
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


def read_ledger(settings_dir: Path) -> tuple[LedgerEntry, ...]:
    """Entries of the ledger in either format (ids, or objects); empty when absent or unusable.

    An unusable ledger is reported once (a warning naming it) and then ignored: it only
    helps, the broker holds the truth."""
    path = settings_dir / LEDGER
    try:
        data = read_json_file(path, LEDGER)
        entries = guarded(LEDGER, lambda: _entries(data))
    except FileMissing:
        _report(path, None)
        return ()
    except FileProblem as problem:
        _report(path, f"{LEDGER} in {settings_dir}: {problem.reason}")
        return ()
    _report(path, None)
    return entries


def ledger_topics(settings_dir: Path, topics: Topics) -> list[str]:
    """Topics the runs the ledger records (ours or the original's) may have left retained.

    They are read by name when the broker cuts a wildcard read short, so that the topics of
    items removed since are found and cleared. The original's layouts are added only for
    entries that are not in our own format: those our runs wrote, and cleared.
    """
    prefix = topics.item_entity_id("")
    found: list[str] = []
    for entry in read_ledger(settings_dir):
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


def write_ledger(settings_dir: Path, entities: Iterable[Entity], node_id: str) -> bool:
    """Write the ledger; a failure is only a warning, since the broker holds the truth."""
    try:
        write_json_atomic(settings_dir / LEDGER, [
            {"id": e.id, "entity_id": item_entity_id(node_id, e.slug), "category": e.category}
            for e in entities
        ])
    except OSError as exc:
        log.warning("cannot write %s in %s (%s); publishing is not affected", LEDGER,
                    settings_dir, exc.strerror or exc)
        return False
    return True
