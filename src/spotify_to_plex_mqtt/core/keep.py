"""Pure: a malformed entry keeps its item's last good version (DESIGN.md §4, invariant 2).

An entry is identified by the id it names (`id` in the saved items and playlists,
`spotify_id` in the track links). A malformed entry with a readable id keeps that id's last
good version, until a good entry with that id comes back. An entry that is malformed down
to its id could be any item: while one is in the file, no item of the last good version is
dropped. A real removal is an id gone from a version of the file that parsed and holds no
unidentified entry.

Without a last good version (the first read after start, or an id never read well), what a
malformed entry stood for is unknown: the caller then withholds every removal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .library import Loaded, SavedItem

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Kept(Generic[T]):
    """The value to use; `kept` the ids whose last good version stands in; `unknown` whether
    a malformed entry had no last good version to keep."""

    value: T
    kept: tuple[str, ...] = ()
    unknown: bool = False


def _keep_ids(new_ids: set[str], loaded: Loaded[Any], old_ids: list[str] | None) -> tuple[
        list[str], bool]:
    """Ids whose old version stays, and whether a bad entry has no old version to keep."""
    bad = loaded.bad_ids - new_ids
    if old_ids is None:
        return [], bool(bad) or loaded.unidentified > 0
    keep = [i for i in old_ids if i in bad or (loaded.unidentified and i not in new_ids)]
    return keep, bool(bad - set(old_ids))


def merge_items(loaded: Loaded[tuple[SavedItem, ...]],
                old: tuple[SavedItem, ...] | None) -> Kept[tuple[SavedItem, ...]]:
    """The saved items of `loaded`, plus the old version of each item a bad entry stands for."""
    if not loaded.warnings:
        return Kept(loaded.value)
    new_ids = {item.id for item in loaded.value}
    first: dict[str, SavedItem] = {}
    for item in old or ():
        first.setdefault(item.id, item)
    keep, unknown = _keep_ids(new_ids, loaded, list(first) if old is not None else None)
    return Kept(loaded.value + tuple(first[i] for i in keep), tuple(keep), unknown)


def merge_mapping(loaded: Loaded[dict[str, str]],
                  old: Mapping[str, str] | None) -> Kept[dict[str, str]]:
    """The mapping of `loaded`, plus the old mapping of each id a bad entry stands for."""
    if not loaded.warnings:
        return Kept(loaded.value)
    new_ids = set(loaded.value)
    keep, unknown = _keep_ids(new_ids, loaded, list(old) if old is not None else None)
    merged = dict(loaded.value)
    for ident in keep:
        assert old is not None
        merged[ident] = old[ident]
    return Kept(merged, tuple(keep), unknown)


def describe(file: str, loaded: Loaded[Any], kept: Kept[Any]) -> str:
    """The problem to report for a file with malformed entries (`loaded.warnings`)."""
    count = len(loaded.warnings)
    first = loaded.warnings[0].removeprefix(f"{file} ").replace(": skipped, ", ": ", 1)
    one = count == 1
    entries = "1 entry cannot be used" if one else f"{count} entries cannot be used"
    more = "" if one else f"; and {count - 1} more"
    if kept.unknown:
        it, fixed = ("it", "it is") if one else ("them", "they are")
        outcome = (f"no good version of {it} was read earlier, so no entity is removed "
                   f"until {fixed} fixed")
    elif kept.kept:
        outcome = "its item keeps its last good version" if len(kept.kept) == 1 else \
            f"{len(kept.kept)} items keep their last good version"
    else:
        outcome = "the other entries are used"
    return (f"{file}: {entries} ({first}{more}); {outcome}. Fix the entry in Spotify-to-Plex "
            "or restore the file from a backup")
