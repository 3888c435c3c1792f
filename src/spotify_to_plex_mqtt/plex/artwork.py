"""Plex artwork kept in memory across syncs: fetch only what is new or stale, never fail.

The original service asked Plex for every item on every run, and when Plex was down every
item failed and was deleted. Here an unchanged re-sync asks Plex nothing, a one-item change
asks once, and a Plex failure becomes a message while the thumbs already known stay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from .client import PlexClient
from .errors import PlexError

Kind = Literal["playlist", "album"]
ClientSource = PlexClient | Callable[[], PlexClient | None]


@dataclass(frozen=True, slots=True)
class ArtworkResult:
    """Artwork for one sync.

    `thumbs` has every wanted key with a known thumb (fresh or cached); `missing` the keys
    Plex answered for but does not know; `error` why Plex could not be asked (the cached
    thumbs are in `thumbs` all the same); `requests` how many HTTP requests this took.
    """

    thumbs: dict[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    error: str | None = None
    requests: int = 0


@dataclass(frozen=True, slots=True)
class _Entry:
    thumb: str | None  # None: Plex answered and does not know the key
    fetched_at: float


class ArtworkCache:
    """Key -> thumb across syncs, refreshed after `refresh_after` seconds.

    `client` is a `PlexClient`, or a callable returning the current one (None when Plex is
    not configured); the caller owns and closes it. Keys Plex did not know are asked again
    after `recheck_missing_after`, sooner than thumbs, so that an item added to Plex shortly
    after it was first seen gets its artwork within the hour.
    """

    def __init__(self, client: ClientSource, *, refresh_after: float = 24 * 3600,
                 recheck_missing_after: float = 3600,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._source = client
        self.refresh_after = refresh_after
        self.recheck_missing_after = min(recheck_missing_after, refresh_after)
        self._clock = clock
        self._entries: dict[tuple[Kind, str], _Entry] = {}
        self._server_id: str | None = None
        self._bound: tuple[str, str] | None = None
        self._identity_lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _client(self) -> PlexClient | None:
        client = self._source if isinstance(self._source, PlexClient) else self._source()
        if client is not None:
            bound = (client.settings.url, client.settings.server_id)
            if self._bound is not None and bound != self._bound:
                # Another server: its rating keys mean other items.
                self._entries.clear()
                self._server_id = None
            self._bound = bound
        return client

    def due(self, kind: Kind, key: str) -> bool:
        """Whether a lookup of `key` would ask Plex (new, or its artwork has expired)."""
        return self._due(kind, key, self._clock())

    def _due(self, kind: Kind, key: str, now: float) -> bool:
        entry = self._entries.get((kind, key))
        if entry is None:
            return True
        ttl = self.refresh_after if entry.thumb is not None else self.recheck_missing_after
        return now - entry.fetched_at >= ttl

    async def _fetch(self, client: PlexClient, playlists: list[str], albums: list[str]) -> None:
        """Ask for both kinds at once; one failing does not keep the other's artwork away.
        The first failure is raised once both are done."""
        outcomes = await asyncio.gather(self._fetch_playlists(client, playlists),
                                        self._fetch_albums(client, albums),
                                        return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _fetch_playlists(self, client: PlexClient, playlists: list[str]) -> None:
        if not playlists:
            return
        listing = await client.playlists()
        stamp = self._clock()
        # Keep the whole listing: a playlist wanted later is then already known.
        for key, thumb in listing.items():
            self._entries[("playlist", key)] = _Entry(thumb, stamp)
        for key in playlists:
            if key not in listing:
                self._entries[("playlist", key)] = _Entry(None, stamp)

    async def _fetch_albums(self, client: PlexClient, albums: list[str]) -> None:
        if not albums:
            return
        found = await client.metadata(albums)
        stamp = self._clock()
        for key in albums:
            self._entries[("album", key)] = _Entry(found.get(key), stamp)

    async def lookup(self, wanted: Mapping[str, Kind], *, prune: bool = True) -> ArtworkResult:
        """Thumbs for `wanted` (rating key -> kind), asking Plex only for new or stale keys.

        With `prune`, `wanted` is the whole library: expired entries of other keys go.

        Never raises for a Plex problem: the result carries it in `error`.
        """
        client = self._client()
        now = self._clock()
        due = [(key, kind) for key, kind in wanted.items() if self._due(kind, key, now)]
        error: str | None = None
        requests = 0
        if client is not None and due:
            before = client.requests
            try:
                await self._fetch(client, [k for k, kind in due if kind == "playlist"],
                                  [k for k, kind in due if kind == "album"])
            except PlexError as exc:
                error = str(exc)
            requests = client.requests - before
        thumbs: dict[str, str] = {}
        missing: list[str] = []
        for key, kind in wanted.items():
            entry = self._entries.get((kind, key))
            if entry is None:
                continue
            if entry.thumb is None:
                missing.append(key)
            elif entry.thumb:
                thumbs[key] = entry.thumb
        if prune:
            self._prune(wanted)
        return ArtworkResult(thumbs, tuple(missing), error, requests)

    def _prune(self, wanted: Mapping[str, Kind]) -> None:
        """Forget expired entries nobody wants; wanted ones stay, stale or not, for outages."""
        now = self._clock()
        self._entries = {
            (kind, key): entry for (kind, key), entry in self._entries.items()
            if wanted.get(key) == kind or now - entry.fetched_at < self.refresh_after
        }

    async def server_id(self) -> str:
        """The server's machine id from `/identity` (asked once), else plex.json's `id`.

        `/identity` wins: Home Assistant's Plex integration accepts `plex://<id>/<key>` only
        with the machine id of a server it knows (else a KeyError), and a plex.json `id` may
        be stale. A failure is not remembered, so the next sync asks again; meanwhile the
        configured id (or "", the single-server form) is used.
        """
        client = self._client()
        if client is None:
            return ""
        async with self._identity_lock:
            if self._server_id is None:
                try:
                    self._server_id = await client.identity()
                except PlexError:
                    return client.settings.server_id
            return self._server_id
