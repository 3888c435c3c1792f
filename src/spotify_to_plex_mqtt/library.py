"""Reading and validating the Spotify-to-Plex settings files into plain, typed values.

Each file is read on its own, so that a caller can keep the last good version of one file
while another is being rewritten. Nothing here decides what to publish.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

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


class FileProblem(Exception):
    """A settings file that cannot be used as a whole; the message names it and says why."""

    def __init__(self, file: str, reason: str, hint: str) -> None:
        super().__init__(f"{file}: {reason}. {hint}")
        self.file = file
        self.reason = reason


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
    """A file's usable content plus warnings about entries that were skipped."""

    value: T
    warnings: tuple[str, ...] = ()


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


def read_json(path: Path) -> Any:
    """Read and parse one JSON file, turning every failure into a `FileProblem`."""
    name = path.name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileProblem(name, "the file does not exist",
                          f"Check --settings-dir (now {path.parent}) or let Spotify-to-Plex "
                          "create it") from None
    except PermissionError:
        raise FileProblem(name, "the file cannot be read (permission denied)",
                          "Make it readable by the user running this service") from None
    except IsADirectoryError:
        raise FileProblem(name, "this is a directory, not a file",
                          "Remove or rename the directory") from None
    except OSError as exc:
        raise FileProblem(name, f"the file cannot be read ({exc.strerror})",
                          "Check the disk and the mount") from None
    if not data.strip():
        raise FileProblem(name, "the file is empty (probably being written)",
                          "It will be read again when it changes")
    try:
        return json.loads(data)
    except UnicodeDecodeError:
        raise FileProblem(name, "the file is not UTF-8 text",
                          "Restore it from Spotify-to-Plex or a backup") from None
    except RecursionError:
        raise FileProblem(name, "the JSON is nested too deeply to be a settings file",
                          "Restore it from Spotify-to-Plex or a backup") from None
    except json.JSONDecodeError as exc:
        raise FileProblem(name, f"invalid JSON at line {exc.lineno}, column {exc.colno} "
                                f"({exc.msg})",
                          "It may be half-written; it will be read again when it changes") from None


def _wrong_top(name: str, expected: str, got: object) -> FileProblem:
    return FileProblem(name, f"expected {expected} at the top level, found {type(got).__name__}",
                       "Restore it from Spotify-to-Plex or a backup")


def _describe(index: int, entry: object) -> str:
    ident = entry.get("id") if isinstance(entry, dict) else None
    return f"entry #{index + 1}" + (f" (id {ident!r})" if isinstance(ident, str) else "")


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
    _check_usable(name, data, len(items), warnings)
    return Loaded(tuple(items), tuple(warnings))


def parse_playlists(data: Any, name: str = PLAYLISTS) -> Loaded[dict[str, str]]:
    """Map Spotify playlist id (or `liked-<user>`) to the Plex playlist rating key."""
    entries = data.get("data") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise _wrong_top(name, 'an object with a "data" list', data)
    mapping: dict[str, str] = {}
    warnings: list[str] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            warnings.append(f"{name} {_describe(index, entry)}: skipped, no text 'id'")
            continue
        raw = entry.get("plex")
        if raw in (None, ""):
            continue
        key = plex_key(raw)
        if key is None:
            warnings.append(f"{name} {_describe(index, entry)}: skipped, 'plex' {raw!r} "
                            "is not a Plex rating key")
            continue
        mapping.setdefault(entry["id"], key)
    _check_usable(name, entries, len(mapping), warnings)
    return Loaded(mapping, tuple(warnings))


def parse_track_links(data: Any, name: str = TRACK_LINKS) -> Loaded[dict[str, str]]:
    """Map a Spotify id to the first usable Plex key of its `plex_id` list."""
    if not isinstance(data, list):
        raise _wrong_top(name, "a list of track links", data)
    mapping: dict[str, str] = {}
    warnings: list[str] = []
    for index, entry in enumerate(data):
        if not isinstance(entry, dict) or not isinstance(entry.get("spotify_id"), str):
            warnings.append(f"{name} entry #{index + 1}: skipped, no text 'spotify_id'")
            continue
        raw_ids = entry.get("plex_id")
        if raw_ids is None:
            continue
        candidates = raw_ids if isinstance(raw_ids, list) else [raw_ids]
        keys = [k for k in (plex_key(c) for c in candidates) if k is not None]
        if candidates and not keys:
            warnings.append(f"{name} entry #{index + 1} ({entry['spotify_id']!r}): "
                            f"no usable Plex key in {raw_ids!r}")
            continue
        if keys:
            mapping.setdefault(entry["spotify_id"], keys[0])
    _check_usable(name, data, len(mapping), warnings)
    return Loaded(mapping, tuple(warnings))


def saved_items_path(settings_dir: Path) -> Path:
    """The saved-items file: the current name, or the older docs' name when only it exists."""
    current = settings_dir / SAVED_ITEMS
    old = settings_dir / SAVED_ITEMS_OLD
    return old if not current.exists() and old.exists() else current


FILES: dict[FileKind, str] = {
    "saved_items": SAVED_ITEMS,
    "playlists": PLAYLISTS,
    "track_links": TRACK_LINKS,
}


def file_path(settings_dir: Path, kind: FileKind) -> Path:
    return saved_items_path(settings_dir) if kind == "saved_items" else settings_dir / FILES[kind]


def load_file(settings_dir: Path, kind: FileKind) -> Loaded[Any]:
    """Read one input file; raise `FileProblem` when the file as a whole is unusable."""
    path = file_path(settings_dir, kind)
    if kind == "saved_items":
        return parse_saved_items(read_json(path), path.name)
    if kind == "playlists":
        return parse_playlists(read_json(path))
    return parse_track_links(read_json(path))
