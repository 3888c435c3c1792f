"""`mqtt_published_items.json`: the original service's record of what it published.

Correctness never depends on it (the broker's retained messages are the truth); it is kept
for tools that read it and to preview removals in a dry run without a broker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from ..core.discovery import Topics, item_entity_id
from ..core.entities import Entity
from ..core.ledger import LedgerEntry, entry_topics, parse_entries
from ..core.library import LEDGER
from ..core.problems import FileMissing, FileProblem, guarded
from ..settings.jsonfile import read_json_file
from .atomic import write_json_atomic

log = logging.getLogger(__name__)


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


def read_ledger(settings_dir: Path) -> tuple[LedgerEntry, ...]:
    """Entries of the ledger in either format (ids, or objects); empty when absent or unusable.

    An unusable ledger is reported once (a warning naming it) and then ignored: it only
    helps, the broker holds the truth."""
    path = settings_dir / LEDGER
    try:
        data = read_json_file(path, LEDGER)
        entries = guarded(LEDGER, lambda: parse_entries(data))
    except FileMissing:
        _report(path, None)
        return ()
    except FileProblem as problem:
        _report(path, f"{LEDGER} in {settings_dir}: {problem.reason}")
        return ()
    _report(path, None)
    return entries


def ledger_topics(settings_dir: Path, topics: Topics) -> list[str]:
    """`core.ledger.entry_topics` of the ledger in `settings_dir` (read here)."""
    return entry_topics(read_ledger(settings_dir), topics)


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
