"""Deterministic Spotify-to-Plex settings directories of any size, and the matching Plex
catalogue for the stand-in.

`N` labelled items: 40 % Spotify playlists, 40 % Spotify albums, 20 % items saved from Plex
(half albums `/library/metadata/<key>/children`, half playlists `/playlists/<key>/items`),
spread over 20 categories, plus 10 % unlabelled items that must not be published. Files are
written as the app writes them (indented JSON); `relabel` rewrites the saved items by atomic
rename, as a user's edit in Spotify-to-Plex does.
"""

from __future__ import annotations

import json
import os
import random
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CATEGORIES = (
    "Jazz", "Rock", "Pop", "Kids", "Kinder 🎈", "Classical", "Focus", "Workout", "Chill",
    "Party", "Sleep", "Hip-Hop", "Electronic", "Folk", "Soul & Funk", "Metal", "Country",
    "Reggae", "Café", "Favourites",
)
_BASE62 = string.ascii_letters + string.digits
PLAYLIST_KEY_BASE = 1_000_000
ALBUM_KEY_BASE = 2_000_000


@dataclass
class BenchLibrary:
    """A settings directory with `size` labelled items, and what Plex knows about them."""

    root: Path
    size: int
    items: list[dict[str, Any]] = field(default_factory=list)
    playlists: list[dict[str, str]] = field(default_factory=list)
    track_links: list[dict[str, Any]] = field(default_factory=list)
    plex_albums: dict[str, str] = field(default_factory=dict)
    plex_playlists: dict[str, str] = field(default_factory=dict)

    @property
    def labelled(self) -> list[dict[str, Any]]:
        return [item for item in self.items if item.get("label")]

    def write(self) -> BenchLibrary:
        self.root.mkdir(parents=True, exist_ok=True)
        _write(self.root / "spotify_saved_items.json", self.items)
        _write(self.root / "playlists.json", {"data": self.playlists})
        _write(self.root / "track_links.json", self.track_links)
        return self

    def saved_items_bytes(self) -> bytes:
        return _dump(self.items)

    def relabel(self, index: int, label: str) -> tuple[bytes, Path]:
        """Change the label of labelled item `index` in memory; return the new file content
        and the final path, for `replace_atomically` (so that encoding is not timed)."""
        self.labelled[index]["label"] = label
        return self.saved_items_bytes(), self.root / "spotify_saved_items.json"


def replace_atomically(content: bytes, path: Path) -> None:
    """Write a temporary file next to `path`, then rename it over `path`."""
    temporary = path.with_name(f".{path.name}.bench-tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)


def _dump(data: Any) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


def _write(path: Path, data: Any) -> None:
    path.write_bytes(_dump(data))


def _spotify_id(rng: random.Random) -> str:
    return "".join(rng.choices(_BASE62, k=22))


def _kind(index: int) -> str:
    """Which kind item `index` is; the Plex keys depend only on the index."""
    kind = index % 5  # 0, 1: playlist; 2, 3: album; 4: saved from Plex (album or playlist)
    if kind in (0, 1):
        return "spotify-playlist"
    if kind in (2, 3):
        return "spotify-album"
    return "plex-album" if index % 2 else "plex-playlist"


def plex_catalogue(size: int) -> tuple[dict[str, str], dict[str, str]]:
    """What Plex knows for a library of `size` labelled items (and of any smaller size):
    album key -> thumb, playlist key -> composite. Unlabelled items' keys are included."""
    albums: dict[str, str] = {}
    playlists: dict[str, str] = {}
    for index in range(size + size // 10):
        if _kind(index) in ("spotify-album", "plex-album"):
            key = str(ALBUM_KEY_BASE + index)
            albums[key] = f"/library/metadata/{key}/thumb/1700000000"
        else:
            key = str(PLAYLIST_KEY_BASE + index)
            playlists[key] = f"/playlists/{key}/composite/1700000000"
    return albums, playlists


def generate(root: Path, size: int, seed: int = 1) -> BenchLibrary:
    """Build (in memory) a library of `size` labelled items; call `write()` to save it."""
    rng = random.Random(seed * 1_000_003 + size)
    lib = BenchLibrary(root, size)
    unlabelled = size // 10
    for index in range(size + unlabelled):
        label = CATEGORIES[index % len(CATEGORIES)] if index < size else None
        kind = _kind(index)
        title = f"{rng.choice(('The', 'My', 'Best of', 'Late Night', 'Sunday'))} " \
                f"{rng.choice(('Jazz', 'Grooves', 'Mix', 'Classics', 'Hits', 'Tunes'))} {index}"
        entry: dict[str, Any]
        if kind == "spotify-playlist":
            ident = _spotify_id(rng)
            key = str(PLAYLIST_KEY_BASE + index)
            entry = {"type": "spotify-playlist", "uri": f"spotify:playlist:{ident}",
                     "id": ident, "title": title, "image": f"https://i.scdn.co/image/{ident}",
                     "user": "bench"}
            lib.playlists.append({"type": "spotify-playlist", "id": ident, "plex": key})
            lib.plex_playlists[key] = f"/playlists/{key}/composite/1700000000"
        elif kind == "spotify-album":
            ident = _spotify_id(rng)
            key = str(ALBUM_KEY_BASE + index)
            entry = {"type": "spotify-album", "uri": f"spotify:album:{ident}", "id": ident,
                     "title": title, "image": f"https://i.scdn.co/image/{ident}"}
            lib.track_links.append({"spotify_id": ident,
                                    "plex_id": [f"/library/metadata/{key}"]})
            lib.plex_albums[key] = f"/library/metadata/{key}/thumb/1700000000"
        elif kind == "plex-album":
            key = str(ALBUM_KEY_BASE + index)
            guid = "".join(rng.choice("0123456789abcdef") for _ in range(24))
            entry = {"type": "plex-media", "uri": f"/library/metadata/{key}/children",
                     "id": f"plex://album/{guid}", "title": title, "image": ""}
            lib.plex_albums[key] = f"/library/metadata/{key}/thumb/1700000000"
        else:
            key = str(PLAYLIST_KEY_BASE + index)
            guid = "".join(rng.choice("0123456789abcdef") for _ in range(32))
            entry = {"type": "plex-media", "uri": f"/playlists/{key}/items",
                     "id": f"com.plexapp.agents.none://{guid}", "title": title, "image": ""}
            lib.plex_playlists[key] = f"/playlists/{key}/composite/1700000000"
        if label is not None:
            entry["label"] = label
        lib.items.append(entry)
    return lib
