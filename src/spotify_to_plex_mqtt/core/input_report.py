"""What the inputs left out, summarised for a big library: per reason and per file, a count
and the first few names at INFO; one line per item only at DEBUG.

A library of 10k items with hundreds of unmapped or malformed entries would otherwise log
a line for each of them on every sync.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .entities import Skipped

log = logging.getLogger("spotify_to_plex_mqtt")

FIRST = 5
FIRST_REASONS = 3
# How a loader's warning about one entry begins: `<file> entry #<n>...`.
_ENTRY = " entry #"


def _first(names: Sequence[str], limit: int = FIRST) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{shown}{more}"


def skipped_by_reason(skipped: Iterable[Skipped]) -> list[str]:
    """One line per reason: how many items, and the first few names."""
    reasons: dict[str, list[str]] = {}
    for item in skipped:
        reasons.setdefault(item.reason, []).append(item.name or item.id)
    return [f"skipped {len(names)}: {reason}: {_first(names)}"
            for reason, names in sorted(reasons.items())]


@dataclass(frozen=True, slots=True)
class Malformed:
    """The entries of one input file that were skipped as malformed."""

    file: str
    count: int
    first: tuple[str, ...]


def malformed_by_file(warnings: Iterable[str]) -> tuple[list[Malformed], list[str]]:
    """The loaders' warnings about single entries, grouped per file; and the other warnings."""
    per_file: dict[str, list[str]] = {}
    other: list[str] = []
    for warning in warnings:
        file, sep, rest = warning.partition(_ENTRY)
        if sep and " " not in file:
            per_file.setdefault(file, []).append(f"entry #{rest}")
        else:
            other.append(warning)
    grouped = [Malformed(file, len(entries), tuple(entries[:FIRST_REASONS]))
               for file, entries in per_file.items()]
    return grouped, other


def malformed_lines(warnings: Iterable[str]) -> list[str]:
    grouped, other = malformed_by_file(warnings)
    lines = [f"{m.file}: {m.count} malformed entries skipped"
             f"{' (first: ' + '; '.join(m.first) + ')' if m.first else ''}"
             f"{', and more' if m.count > len(m.first) else ''}" for m in grouped]
    return lines + other


def log_details(skipped: Sequence[Skipped], warnings: Sequence[str]) -> None:
    """Each malformed entry and each item left out, at DEBUG."""
    if log.isEnabledFor(logging.DEBUG):
        for warning in warnings:
            log.debug("%s", warning)
        for item in skipped:
            log.debug("not published: %s %r (%s): %s", item.type, item.name, item.id,
                      item.reason)


def log_inputs(skipped: Sequence[Skipped], warnings: Sequence[str]) -> None:
    """The summary lines (malformed entries at WARNING, the rest at INFO), then details."""
    for line in malformed_lines(warnings):
        log.warning("%s", line)
    for line in skipped_by_reason(skipped):
        log.info("not published: %s", line.removeprefix("skipped "))
    log_details(skipped, warnings)


class InputReport:
    """Logs the summary on the first sync and whenever what was left out changed."""

    def __init__(self) -> None:
        self._last: tuple[frozenset[tuple[str, str]], tuple[str, ...]] | None = None

    def update(self, skipped: Sequence[Skipped], warnings: Sequence[str]) -> bool:
        key = (frozenset((s.id, s.reason) for s in skipped), tuple(sorted(warnings)))
        if key == self._last:
            return False
        first, self._last = self._last is None, key
        if skipped or warnings or not first:
            if not skipped and not warnings:
                log.info("every labelled item is published again; no malformed entries")
            log_inputs(skipped, warnings)
        return True
