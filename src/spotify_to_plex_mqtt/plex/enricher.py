"""The current Plex connection: settings re-read each sync, last good settings kept."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from ..core.entities import Entity, Resolution
from ..core.input_report import FIRST
from .artwork import ArtworkCache, ArtworkResult
from .client import PlexClient, RequestObserver
from .errors import PlexConfigError
from .settings import PlexSettings, load_plex_settings

log = logging.getLogger(__name__)


class PlexLink:
    """Owns the Plex client for the settings in `plex.json` / `PLEX_URL` / `PLEX_TOKEN`.

    A `plex.json` that cannot be read keeps the last good settings (artwork is enrichment:
    a broken file must not blank every thumb); the error is logged once per change.
    """

    def __init__(self, settings_dir: Path, env: Mapping[str, str], *,
                 on_request: RequestObserver | None = None) -> None:
        self._settings_dir = settings_dir
        self._on_request = on_request
        self._env = dict(env)
        self._settings: PlexSettings | None = None
        self._client: PlexClient | None = None
        self._last_error: str | None = None
        self._announced = False
        self.cache = ArtworkCache(self.client)
        self.last: ArtworkResult | None = None

    @property
    def configured(self) -> bool:
        return self._settings is not None

    @property
    def error(self) -> str | None:
        return self._last_error

    @property
    def settings(self) -> PlexSettings | None:
        """The settings in use (the last good ones)."""
        return self._settings

    def artwork_due(self, entity: Entity) -> bool:
        """Whether enriching `entity` would ask Plex (new, or its artwork has expired)."""
        return self.cache.due(entity.media_content_type, entity.plex_key)

    def unknown_keys(self) -> frozenset[str]:
        """The keys Plex did not know at the last enrichment."""
        return frozenset(self.last.missing) if self.last is not None else frozenset()

    def client(self) -> PlexClient | None:
        return self._client

    async def refresh(self) -> None:
        """Re-read the Plex settings; swap the client when they changed."""
        try:
            settings = load_plex_settings(self._settings_dir, self._env)
        except PlexConfigError as exc:
            if str(exc) != self._last_error:
                log.error("%s", exc)
            self._last_error = str(exc)
            return
        self._last_error = None
        if settings is None and not self._announced:
            log.info("no Plex configured (plex.json or PLEX_URL/PLEX_TOKEN): thumbs stay empty")
        self._announced = True
        if settings == self._settings:
            return
        await self.aclose()
        self._settings = settings
        self._client = PlexClient(settings, on_request=self._on_request) \
            if settings is not None else None

    async def enrich(self, resolution: Resolution, *, refresh: bool = True) -> Resolution:
        """Entities with thumbs and playable `plex_uri`; Plex trouble never drops one.

        The settings are re-read first, unless the caller just did (`refresh=False`).
        """
        if refresh:
            await self.refresh()
        return await self._enrich(resolution, whole=True)

    async def enrich_some(self, resolution: Resolution) -> Resolution:
        """`enrich` for a few entities among many: the settings are not re-read, the cache
        keeps the others' artwork, and only what is new about these entities is reported."""
        return await self._enrich(resolution, whole=False)

    async def _enrich(self, resolution: Resolution, *, whole: bool) -> Resolution:
        if self._client is None or not resolution.entities:
            return resolution
        wanted = {e.plex_key: e.media_content_type for e in resolution.entities}
        result = await self.cache.lookup(wanted, prune=whole)
        server_id = await self.cache.server_id()
        last = self.last or ArtworkResult()
        if result.error and last.error != result.error:
            log.warning("Plex: %s; keeping the artwork already known", result.error)
        missing, reported = set(result.missing), set(last.missing)
        report = missing - reported  # each missing key once, until it is found
        if report:
            _report_missing([e for e in resolution.entities if e.plex_key in report])
        # What the last sync knew, for the next report: a partial result adds to it.
        self.last = result if whole else ArtworkResult(
            last.thumbs, tuple(sorted(missing | reported)), result.error,
            result.requests)
        return resolution.with_artwork(result.thumbs, server_id)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def _report_missing(entities: list[Entity]) -> None:
    """One line for the keys Plex newly does not know, each entity only at debug."""
    names = ", ".join(f"{e.name!r} (key {e.plex_key})" for e in entities[:FIRST])
    more = f" and {len(entities) - FIRST} more" if len(entities) > FIRST else ""
    log.warning("Plex does not know the keys of %d items: %s%s; fix their match in "
                "Spotify-to-Plex", len(entities), names, more)
    for entity in entities:
        log.debug("Plex does not know key %s of %s %r (%s)", entity.plex_key, entity.type,
                  entity.name, entity.id)
