"""`/artwork/<key>`: Plex artwork through the service, so the Plex token stays here.

The image is fetched from Plex's photo transcoder (small, square) with the service's
token and kept in a bounded in-memory LRU and a bounded directory on disk. When Plex does
not have it, is down, or answers something that is not an image, the answer is a
placeholder that the browser must not cache, so that a later view asks again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from ..plex.client import PlexClient
from ..plex.errors import PlexError

log = logging.getLogger(__name__)

SIZE = 240  # pixels, twice the largest size the page shows
MEMORY_BYTES = 16 * 1024 * 1024
DISK_BYTES = 128 * 1024 * 1024

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"),
)


def sniff(data: bytes) -> str | None:
    """The image type of `data` by its first bytes; None for anything else (an HTML error
    page, JSON): only real images are passed on to the browser."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def transcode_path(thumb: str, size: int = SIZE) -> str:
    """Plex's photo transcoder for `thumb`, scaled to `size` x `size`."""
    return (f"/photo/:/transcode?width={size}&height={size}&minSize=1&upscale=1"
            f"&url={quote(thumb, safe='')}")


class DiskCache:
    """Files named by a hash of (server, thumb); oldest-used removed past `limit` bytes.

    Blocking: call it from a thread. A directory that cannot be used turns the disk cache
    off with one warning (the memory cache goes on).
    """

    def __init__(self, directory: Path | None, limit: int = DISK_BYTES) -> None:
        self.directory = directory
        self.limit = limit
        self._size: int | None = None
        self._lock = threading.Lock()  # puts run in worker threads, several at once

    def _path(self, name: str) -> Path | None:
        return self.directory / name if self.directory is not None else None

    def get(self, name: str) -> bytes | None:
        path = self._path(name)
        if path is None:
            return None
        try:
            data = path.read_bytes()
            os.utime(path)  # "used": the eviction goes by modification time
        except OSError:
            return None
        return data

    def put(self, name: str, data: bytes) -> None:
        with self._lock:
            self._put(name, data)

    def _put(self, name: str, data: bytes) -> None:
        path = self._path(name)
        if path is None or self.directory is None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if self._size is None:
                self._size = sum(p.stat().st_size for p in self.directory.iterdir())
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
            self._size += len(data)
            if self._size > self.limit:
                self._evict()
        except OSError as exc:
            log.warning("artwork disk cache %s is not usable (%s); keeping artwork in memory "
                        "only", self.directory, exc.strerror or exc)
            self.directory = None

    def _evict(self) -> None:
        assert self.directory is not None
        files = sorted(self.directory.iterdir(), key=lambda p: p.stat().st_mtime)
        size = sum(p.stat().st_size for p in files)
        for path in files:
            if size <= self.limit * 0.9:
                break
            size -= path.stat().st_size
            path.unlink(missing_ok=True)
        self._size = size


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "spotify-to-plex-mqtt" / "artwork"


class ArtworkProxy:
    """Images by Plex thumb path; `client` returns the current Plex client (None: no Plex)."""

    def __init__(self, client: Callable[[], PlexClient | None], *,
                 disk: DiskCache | None = None, memory_limit: int = MEMORY_BYTES) -> None:
        self._client = client
        self.disk = disk if disk is not None else DiskCache(None)
        self.memory_limit = memory_limit
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._memory_size = 0
        self._fetching: dict[str, asyncio.Future[bytes | None]] = {}
        self._down_until = 0.0
        self.fetches = 0
        self.last_error: str | None = None  # why the last fetch from Plex failed

    @property
    def memory_size(self) -> int:
        return self._memory_size

    def _remember(self, name: str, data: bytes) -> None:
        if len(data) > self.memory_limit // 4:
            return
        self._memory[name] = data
        self._memory_size += len(data)
        while self._memory_size > self.memory_limit:
            _, old = self._memory.popitem(last=False)
            self._memory_size -= len(old)

    async def image(self, thumb: str) -> bytes | None:
        """The image for `thumb`, or None (placeholder). Concurrent asks share one fetch."""
        client = self._client()
        if client is None:
            return None
        name = hashlib.sha256(f"{client.settings.url}\n{thumb}".encode()).hexdigest()
        cached = self._memory.get(name)
        if cached is not None:
            self._memory.move_to_end(name)
            return cached
        pending = self._fetching.get(name)
        if pending is None:
            pending = asyncio.ensure_future(self._load(client, name, thumb))
            self._fetching[name] = pending
            pending.add_done_callback(lambda _: self._fetching.pop(name, None))
        return await asyncio.shield(pending)

    async def _load(self, client: PlexClient, name: str, thumb: str) -> bytes | None:
        data = await asyncio.to_thread(self.disk.get, name)
        if data is None or sniff(data) is None:
            if time.monotonic() < self._down_until:
                return None  # Plex failed a moment ago: do not pile requests onto it
            self.fetches += 1
            try:
                data = await client.image(transcode_path(thumb))
            except PlexError as exc:
                log.debug("artwork %s: %s", thumb, exc)
                self.last_error = f"artwork: {exc}"
                self._down_until = time.monotonic() + 5.0
                return None
            self.last_error = None
            if data is None or sniff(data) is None:
                return None
            await asyncio.to_thread(self.disk.put, name, data)
        self._remember(name, data)
        return data
