"""Reading the Spotify-to-Plex input files from the settings directory (parsing: `core.library`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.library import (
    FILES,
    SAVED_ITEMS,
    SAVED_ITEMS_OLD,
    FileKind,
    Loaded,
    parse_playlists,
    parse_saved_items,
    parse_track_links,
)
from ..core.problems import guarded
from ..settings.jsonfile import read_json_file


def read_json(path: Path) -> Any:
    """Read and parse one JSON file, turning every failure into a `FileProblem`."""
    return read_json_file(path)


def saved_items_path(settings_dir: Path) -> Path:
    """The saved-items file: the current name, or the older docs' name when only it exists."""
    current = settings_dir / SAVED_ITEMS
    old = settings_dir / SAVED_ITEMS_OLD
    return old if not current.exists() and old.exists() else current


def file_path(settings_dir: Path, kind: FileKind) -> Path:
    return saved_items_path(settings_dir) if kind == "saved_items" else settings_dir / FILES[kind]


def load_file(settings_dir: Path, kind: FileKind) -> Loaded[Any]:
    """Read one input file; raise `FileProblem` when the file as a whole is unusable."""
    path = file_path(settings_dir, kind)
    data = read_json(path)
    if kind == "saved_items":
        return guarded(path.name, lambda: parse_saved_items(data, path.name))
    if kind == "playlists":
        return guarded(path.name, lambda: parse_playlists(data))
    return guarded(path.name, lambda: parse_track_links(data))
