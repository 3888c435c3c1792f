"""Write a Spotify-to-Plex settings directory for tests, in the shapes the app writes.

`SettingsDir` keeps the three input files in memory (`spotify_saved_items.json`,
`playlists.json`, `track_links.json`), writes them on `write`, and edits saved items the
way a user does in Spotify-to-Plex (`relabel`, `unlabel`, `delete`), rewriting the file.
`library()` parses the in-memory data with the app's pure parsers, so a test can compute
the desired state with `entities.resolve` and `discovery.render`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mosquitto import Mosquitto, collect, connected_client
from spotify_to_plex_mqtt.core.library import (
    PLAYLISTS,
    SAVED_ITEMS,
    TRACK_LINKS,
    Library,
    parse_playlists,
    parse_saved_items,
    parse_track_links,
)

__all__ = [
    "COLLIDING_IDS",
    "VARIED_PUBLISHED",
    "CliResult",
    "Message",
    "SettingsDir",
    "big_library",
    "cli_env",
    "run_cli",
    "varied_library",
    "watch",
]


@dataclass
class SettingsDir:
    """A settings directory and the content of its input files."""

    root: Path
    items: list[dict[str, Any]] = field(default_factory=list)
    playlists: list[dict[str, Any]] = field(default_factory=list)
    track_links: list[dict[str, Any]] = field(default_factory=list)

    # -- building ------------------------------------------------------------------------------

    def add_playlist(self, item_id: str, title: str, label: str | None,
                     plex: str | None = None, *, user: str = "demo") -> None:
        """A saved Spotify playlist; `plex` (a rating key) adds its `playlists.json` entry."""
        uri = (f"spotify:user:{user}:collection" if item_id.startswith("liked-")
               else f"spotify:playlist:{item_id}")
        self._add_item("spotify-playlist", item_id, title, label, uri, user=user)
        if plex is not None:
            kind = "spotify-liked" if item_id.startswith("liked-") else "spotify-playlist"
            self.playlists.append({"type": kind, "id": item_id, "plex": plex})

    def add_album(self, item_id: str, title: str, label: str | None,
                  plex_ids: list[str] | None = None) -> None:
        """A saved Spotify album; `plex_ids` (bare or `/library/metadata/` keys) adds its
        `track_links.json` entry."""
        self._add_item("spotify-album", item_id, title, label, f"spotify:album:{item_id}")
        if plex_ids is not None:
            self.track_links.append({"spotify_id": item_id, "plex_id": list(plex_ids)})

    def add_plex_media(self, item_id: str, title: str, label: str | None, uri: str) -> None:
        """A Plex item saved directly (`uri` is a Plex key such as `/playlists/9/items`)."""
        self._add_item("plex-media", item_id, title, label, uri)

    def _add_item(self, kind: str, item_id: str, title: str, label: str | None, uri: str,
                  **extra: Any) -> None:
        entry: dict[str, Any] = {"type": kind, "uri": uri, "id": item_id, "title": title,
                                 "image": "", **extra}
        if label is not None:
            entry["label"] = label
        self.items.append(entry)

    # -- writing -------------------------------------------------------------------------------

    @property
    def saved_items_path(self) -> Path:
        return self.root / SAVED_ITEMS

    @property
    def playlists_path(self) -> Path:
        return self.root / PLAYLISTS

    @property
    def track_links_path(self) -> Path:
        return self.root / TRACK_LINKS

    def write(self) -> SettingsDir:
        """Write all three files (indented, as the app writes them)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.write_saved_items()
        _write(self.playlists_path, {"data": self.playlists})
        _write(self.track_links_path, self.track_links)
        return self

    def write_saved_items(self) -> None:
        _write(self.saved_items_path, self.items)

    # -- editing, as a user does in Spotify-to-Plex ---------------------------------------------

    def item(self, item_id: str) -> dict[str, Any]:
        for entry in self.items:
            if entry["id"] == item_id:
                return entry
        raise KeyError(item_id)

    def relabel(self, item_id: str, label: str) -> None:
        self.item(item_id)["label"] = label
        self.write_saved_items()

    def unlabel(self, item_id: str) -> None:
        self.item(item_id).pop("label", None)
        self.write_saved_items()

    def delete(self, item_id: str) -> None:
        self.items.remove(self.item(item_id))
        self.write_saved_items()

    def unlink_playlist(self, item_id: str) -> None:
        """Drop a playlist's `playlists.json` entry (in memory; `write` to save)."""
        self.playlists = [p for p in self.playlists if p["id"] != item_id]

    # -- what the app should make of it ---------------------------------------------------------

    def library(self) -> Library:
        """The in-memory files through the app's pure parsers."""
        return Library(
            items=parse_saved_items(self.items).value,
            playlists=parse_playlists({"data": self.playlists}).value,
            track_links=parse_track_links(self.track_links).value,
        )

    @property
    def labelled_ids(self) -> list[str]:
        return [e["id"] for e in self.items if str(e.get("label") or "").strip()]


def _write(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# Ids that fold to the same slug (Spotify ids are case-sensitive).
COLLIDING_IDS = ("6rqhFgbbKwnb9MLmUQDhG6", "6RQHfgbbKwnb9MLmUQDhG6")
PLEX_GUID_ID = "com.plexapp.agents.none://0f5e7a2c-6b3e-4c1a-9a53-2f9e8d1c4b7a?lang=en"


def varied_library(root: Path) -> SettingsDir:
    """Every kind of item and id seen in the wild; 11 of the 13 items are published.

    Not published: one item without a label, one labelled album without a Plex match.
    """
    lib = SettingsDir(root)
    lib.add_playlist("37i9dQZF1DXbITWG1ZJKYt", "Jazz Classics", "Jazz", "90001")
    lib.add_playlist("37i9dQZF1DX0SM0LYsmbMT", "Café Jazz", "Jazz", "/library/metadata/90002")
    lib.add_playlist("liked-demo", "Liked Songs", "Favourites", "90005")
    lib.add_playlist(COLLIDING_IDS[0], "Case A", "Kids", "90010")
    lib.add_playlist(COLLIDING_IDS[1], "Case B", "Kids", "90011")
    lib.add_playlist("37i9dQZF1DXcBWIGoYBM5M", "Today's Top Hits", None, "90012")
    lib.add_album("1weenld61qoidwYuZ1GESA", "Kind Of Blue", "Jazz", ["/library/metadata/51001"])
    lib.add_album("2ODvWsOgouMbaA5xf0RkJe", "The Lion King", "Kinder 🎈", ["51002", "51099"])
    lib.add_album("4LH4d3cOWNNsVw41Gqt2kv", "The Dark Side of the Moon", " Rock ", ["51003"])
    lib.add_album("0ETFjACtuP2ADo6LFhL6HN", "Not Yet Matched In Plex", "Rock", [])
    lib.add_plex_media("plex://album/5d07c17e403c640290856b9b", "Abbey Road", "Rock",
                       "/library/metadata/48213/children")
    lib.add_plex_media(PLEX_GUID_ID, "Road Trip", "Rock", "/playlists/90211/items")
    lib.add_playlist("37i9dQZF1DWZeKCadgRdKQ", "Deep Focus", "Focus", "90004")
    return lib


VARIED_PUBLISHED = 11


def big_library(root: Path, count: int) -> SettingsDir:
    """`count` labelled playlists, all mapped to Plex, spread over a few categories."""
    lib = SettingsDir(root)
    for index in range(count):
        lib.add_playlist(f"pl{index:05d}x{index * 7919 % 10007:05d}", f"Playlist {index}",
                         f"Category {index % 7}", str(100000 + index))
    return lib


# -- driving the CLI and watching the broker ------------------------------------------------

T = TypeVar("T")
Message = tuple[str, bytes]

# Variables of the service that must not leak from the developer's shell into a test run.
_OURS = ("MQTT_", "PLEX_", "SETTINGS_DIR", "STORAGE_DIR", "ONE_SHOT", "DEBUG", "SYNC_INTERVAL",
         "DISABLE_WATCH", "WATCH_POLL", "RETRY_", "DEBOUNCE", "MIN_SYNC_GAP", "API_",
         "LOG_LEVEL")


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment without the service's variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    env.update(extra or {})
    return env


@dataclass(frozen=True, slots=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return f"{self.stdout}\n{self.stderr}"


def run_cli(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 30.0) -> CliResult:
    """`python -m spotify_to_plex_mqtt ARGS` as a user runs it; never raises on exit codes."""
    proc = subprocess.run(
        [sys.executable, "-m", "spotify_to_plex_mqtt", *args],
        env=cli_env(env), cwd=cwd, capture_output=True, text=True, timeout=timeout,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def _publish_marker(broker: Mosquitto, topic: str) -> None:
    with connected_client(broker) as client:
        info = client.publish(topic, b"marker", qos=1)
        info.wait_for_publish(5.0)
        if not info.is_published():
            raise TimeoutError(f"no PUBACK for marker {topic!r}")


async def watch(broker: Mosquitto, action: Callable[[], Awaitable[T]],
                topic_filter: str = "#", wait_s: float = 60.0) -> tuple[T, list[Message]]:
    """Run `action` while subscribed to `topic_filter`; return its result and the messages
    the broker delivered while it ran (in order, retained-on-subscribe messages excluded).

    Markers published from another connection bracket the run: the broker queues the
    retained messages while handling the SUBSCRIBE, before it sees the start marker, and
    every QoS 1 publish of the action was acknowledged before the end marker is sent.
    """
    token = uuid.uuid4().hex
    start, end = f"test-watch/{token}/start", f"test-watch/{token}/end"
    subscribed = threading.Event()

    def after_subscribe() -> None:
        _publish_marker(broker, start)
        subscribed.set()

    def until(messages: list[Message]) -> bool:
        return any(topic == end for topic, _ in messages)

    collecting = asyncio.ensure_future(asyncio.to_thread(
        collect, broker, topic_filter, until, wait_s, after_subscribe=after_subscribe))
    while not subscribed.is_set():
        if collecting.done():
            collecting.result()  # raises what went wrong
            raise AssertionError("the watcher stopped before subscribing")
        await asyncio.to_thread(subscribed.wait, 0.05)
    try:
        result = await action()
    finally:
        await asyncio.to_thread(_publish_marker, broker, end)
        messages = await collecting
    topics = [topic for topic, _ in messages]
    return result, messages[topics.index(start) + 1:topics.index(end)]
