"""Pure: the library model, and validating the parsed Spotify-to-Plex settings files into it.

Each file is parsed on its own, so that a caller can keep the last good version of one file
while another is being rewritten (reading them is `inputs.library_files`). Nothing here
decides what to publish.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from .problems import FileProblem

SAVED_ITEMS = "spotify_saved_items.json"
SAVED_ITEMS_OLD = "saved_items.json"
PLAYLISTS = "playlists.json"
TRACK_LINKS = "track_links.json"
LEDGER = "mqtt_published_items.json"

FileKind = Literal["saved_items", "playlists", "track_links"]
ItemType = Literal["spotify-playlist", "spotify-album", "plex-media"]
ITEM_TYPES: tuple[ItemType, ...] = ("spotify-playlist", "spotify-album", "plex-media")
_CANONICAL_TYPE: dict[str, ItemType] = {t: t for t in ITEM_TYPES}

T = TypeVar("T")

_METADATA_KEY = re.compile(r"^(?:/library/metadata/)?(\d+)(?:/children)?/?$")


@dataclass(frozen=True, slots=True)
class SavedItem:
    """One entry of spotify_saved_items.json."""

    type: ItemType
    id: str
    title: str
    uri: str = ""
    image: str = ""
    label: str = ""


@dataclass(frozen=True, slots=True)
class Loaded(Generic[T]):
    """A file's usable content plus warnings about entries that were skipped.

    A skipped entry is identified by the id it names (`bad_ids`), so that its item's last
    good version can be kept; `unidentified` counts skipped entries without a readable id.
    """

    value: T
    warnings: tuple[str, ...] = ()
    bad_ids: frozenset[str] = frozenset()
    unidentified: int = 0


@dataclass(frozen=True, slots=True)
class Library:
    """The three inputs together: what is labelled and how it maps to Plex keys."""

    items: tuple[SavedItem, ...] = ()
    playlists: Mapping[str, str] = field(default_factory=dict)
    track_links: Mapping[str, str] = field(default_factory=dict)


def plex_key(raw: object) -> str | None:
    """Normalise `555`, `"555"` or `"/library/metadata/555"` to the bare rating key `555`."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return str(raw) if raw >= 0 else None
    if not isinstance(raw, str):
        return None
    match = _METADATA_KEY.match(raw.strip())
    return match.group(1) if match else None


def _wrong_top(name: str, expected: str, got: object) -> FileProblem:
    return FileProblem(name, f"expected {expected} at the top level, found {type(got).__name__}",
                       "Restore it from Spotify-to-Plex or a backup")


def _describe(index: int, entry: object) -> str:
    ident = entry.get("id") if isinstance(entry, dict) else None
    return f"entry #{index + 1}" + (f" (id {ident!r})" if isinstance(ident, str) else "")


def _text_id(entry: object, field_name: str) -> str | None:
    ident = entry.get(field_name) if isinstance(entry, dict) else None
    return ident if isinstance(ident, str) and ident.strip() else None


def _loaded(value: T, warnings: list[str], bad: list[str], unidentified: int) -> Loaded[T]:
    return Loaded(value, tuple(warnings), frozenset(bad), unidentified)


def _check_usable(name: str, entries: list[Any], usable: int, warnings: list[str]) -> None:
    """A non-empty file in which every entry was refused is not a version Spotify-to-Plex
    writes (a schema change, a broken rewrite): refuse it whole, so that the last good
    version stays, instead of removing every entity it feeds."""
    if entries and not usable and len(warnings) == len(entries):
        raise FileProblem(name, f"none of its {len(entries)} entries is usable "
                                f"(first: {warnings[0].removeprefix(name + ' ')})",
                          "Restore it from Spotify-to-Plex or a backup")


def _refusal(name: str, index: int, entry: object) -> str:
    """Why entry `index` of the saved items is skipped (only called for a bad entry)."""
    where = f"{name} {_describe(index, entry)}"
    if not isinstance(entry, dict):
        return f"{where}: skipped, not an object"
    kind, ident = entry.get("type"), entry.get("id")
    if kind not in ITEM_TYPES:
        return f"{where}: skipped, unknown type {kind!r}"
    if not isinstance(ident, str) or not ident.strip():
        return f"{where}: skipped, 'id' is missing or not text"
    if not isinstance(entry.get("title"), str):
        return f"{where}: skipped, 'title' is missing or not text"
    bad = [k for k in ("uri", "image", "label") if entry.get(k) is not None
           and not isinstance(entry.get(k), str)]
    return f"{where}: skipped, {', '.join(bad)} not text"


def parse_saved_items(data: Any, name: str = SAVED_ITEMS) -> Loaded[tuple[SavedItem, ...]]:
    """Validate saved items; entries with missing or mistyped fields are skipped with a warning."""
    if not isinstance(data, list):
        raise _wrong_top(name, "a list of saved items", data)
    items: list[SavedItem] = []
    warnings: list[str] = []
    bad: list[str] = []
    unidentified = 0
    # One test per field in the common case, and the reason worked out only for a bad entry:
    # this loop runs for every item on every change of the file (~10 ms at 10k items).
    for index, entry in enumerate(data):
        if isinstance(entry, dict):
            get = entry.get
            kind, ident, title = get("type"), get("id"), get("title")
            uri, image, label = get("uri"), get("image"), get("label")
            if kind in ITEM_TYPES and isinstance(ident, str) and ident.strip() \
                    and isinstance(title, str) and isinstance(uri, str | None) \
                    and isinstance(image, str | None) and isinstance(label, str | None):
                # The JSON parser makes a new string for every value: the type and the label
                # (a few distinct values over thousands of items) are shared instead.
                items.append(SavedItem(_CANONICAL_TYPE[kind], ident, title.strip() or ident,
                                       uri or "", image or "",
                                       sys.intern((label or "").strip())))
                continue
        warnings.append(_refusal(name, index, entry))
        if (ident := _text_id(entry, "id")) is not None:
            bad.append(ident)
        else:
            unidentified += 1
    _check_usable(name, data, len(items), warnings)
    return _loaded(tuple(items), warnings, bad, unidentified)


def parse_playlists(data: Any, name: str = PLAYLISTS) -> Loaded[dict[str, str]]:
    """Map Spotify playlist id (or `liked-<user>`) to the Plex playlist rating key."""
    entries = data.get("data") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise _wrong_top(name, 'an object with a "data" list', data)
    mapping: dict[str, str] = {}
    warnings: list[str] = []
    bad: list[str] = []
    unidentified = 0
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            warnings.append(f"{name} {_describe(index, entry)}: skipped, no text 'id'")
            unidentified += 1
            continue
        raw = entry.get("plex")
        if raw in (None, ""):
            continue
        key = plex_key(raw)
        if key is None:
            warnings.append(f"{name} {_describe(index, entry)}: skipped, 'plex' {raw!r} "
                            "is not a Plex rating key")
            bad.append(entry["id"])
            continue
        mapping.setdefault(entry["id"], key)
    _check_usable(name, entries, len(mapping), warnings)
    return _loaded(mapping, warnings, bad, unidentified)


def parse_track_links(data: Any, name: str = TRACK_LINKS) -> Loaded[dict[str, str]]:
    """Map a Spotify id to the first usable Plex key of its `plex_id` list."""
    if not isinstance(data, list):
        raise _wrong_top(name, "a list of track links", data)
    mapping: dict[str, str] = {}
    warnings: list[str] = []
    bad: list[str] = []
    unidentified = 0
    for index, entry in enumerate(data):
        if not isinstance(entry, dict) or not isinstance(entry.get("spotify_id"), str):
            warnings.append(f"{name} entry #{index + 1}: skipped, no text 'spotify_id'")
            unidentified += 1
            continue
        raw_ids = entry.get("plex_id")
        if raw_ids is None:
            continue
        candidates = raw_ids if isinstance(raw_ids, list) else [raw_ids]
        keys = [k for k in (plex_key(c) for c in candidates) if k is not None]
        if candidates and not keys:
            warnings.append(f"{name} entry #{index + 1} ({entry['spotify_id']!r}): "
                            f"no usable Plex key in {raw_ids!r}")
            bad.append(entry["spotify_id"])
            continue
        if keys:
            mapping.setdefault(entry["spotify_id"], keys[0])
    _check_usable(name, data, len(mapping), warnings)
    return _loaded(mapping, warnings, bad, unidentified)


FILES: dict[FileKind, str] = {
    "saved_items": SAVED_ITEMS,
    "playlists": PLAYLISTS,
    "track_links": TRACK_LINKS,
}
