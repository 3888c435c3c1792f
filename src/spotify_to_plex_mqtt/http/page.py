"""The web page at `/`: its static files, the JSON routes it reads, and `/artwork/<key>`.

Registered on the API's application by `add_page_routes`, so the page has the API's host,
port and guard. With `API_TOKEN` set, the page's data routes need the token like
`/events` does; the static files and the artwork do not (an `<img>` cannot send a
header, and neither holds anything but what the item sensors already show).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Protocol

from aiohttp import hdrs, web

from ..core.discovery import Topics
from ..core.entities import Entity
from ..core.result import SyncResult
from ..engine.events import EventBus, Status
from ..plex.enricher import PlexLink
from .activity import Activity
from .artwork_proxy import ArtworkProxy, DiskCache, default_cache_dir, sniff
from .page_data import library_view, skipped_view

PAGE_DATA_ROUTES = ("/library", "/skipped", "/activity")
STATIC_TYPES = {"page.css": "text/css", "page.js": "text/javascript",
                "placeholder.svg": "image/svg+xml"}
# The page loads only from this origin; data: for nothing but the inline favicon.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                 "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}
Dumps = Callable[[Any], str]


class PagePlane(Protocol):
    """What the page reads of the service (a subset of `api.ControlPlane`)."""

    @property
    def status(self) -> Status: ...

    @property
    def bus(self) -> EventBus: ...

    @property
    def topics(self) -> Topics: ...

    @property
    def last_result(self) -> SyncResult | None: ...


@dataclass(slots=True)
class _Page:
    plane: PagePlane
    dumps: Dumps
    activity: Activity
    artwork: ArtworkProxy
    plex: PlexLink | None
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    _thumbs_of: tuple[Entity, ...] | None = None
    _thumbs: dict[str, str] = field(default_factory=dict)

    def static(self, name: str) -> tuple[bytes, str]:
        """A packaged file and its ETag, read once (at first use, not at start-up)."""
        if name not in self.files:
            data = resources.files(__package__).joinpath("static", name).read_bytes()
            self.files[name] = (data, f'"{hashlib.sha256(data).hexdigest()[:16]}"')
        return self.files[name]

    def thumb(self, key: str) -> str | None:
        """The Plex thumb path of a published item's rating key."""
        result = self.plane.last_result
        entities = result.entities if result is not None else ()
        if entities is not self._thumbs_of:
            self._thumbs = {e.plex_key: e.thumb for e in entities if e.thumb}
            self._thumbs_of = entities
        return self._thumbs.get(key)


PAGE = web.AppKey("spotify_to_plex_page", _Page)


def _static_response(request: web.Request, name: str, content_type: str) -> web.Response:
    data, etag = request.app[PAGE].static(name)
    headers = {**_PAGE_HEADERS, hdrs.ETAG: etag}
    if request.headers.get(hdrs.IF_NONE_MATCH) == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=data, content_type=content_type, charset="utf-8"
                        if content_type.startswith("text/") else None, headers=headers)


async def _index(request: web.Request) -> web.Response:
    return _static_response(request, "index.html", "text/html")


async def _static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC_TYPES:
        raise web.HTTPNotFound(reason=f"no static file {name!r}")
    return _static_response(request, name, STATIC_TYPES[name])


def _json(request: web.Request, data: Any) -> web.Response:
    """JSON through the secret mask, with an ETag so that an unchanged library is a 304."""
    page = request.app[PAGE]
    text = page.dumps(data)
    etag = f'"{hashlib.sha256(text.encode()).hexdigest()[:20]}"'
    headers = {hdrs.ETAG: etag, hdrs.CACHE_CONTROL: "no-cache"}
    if request.headers.get(hdrs.IF_NONE_MATCH) == etag:
        return web.Response(status=304, headers=headers)
    response = web.Response(text=text, content_type="application/json", headers=headers)
    if len(text) > 4096:
        response.enable_compression()
    return response


async def _library(request: web.Request) -> web.Response:
    plane = request.app[PAGE].plane
    result = plane.last_result
    return _json(request, library_view(result.entities if result else None, plane.topics))


async def _skipped(request: web.Request) -> web.Response:
    plane = request.app[PAGE].plane
    result = plane.last_result
    return _json(request, skipped_view(result.skipped if result else None,
                                       result.warnings if result else (),
                                       plane.status.file_errors))


async def _activity(request: web.Request) -> web.Response:
    page = request.app[PAGE]
    last = page.plex.last if page.plex is not None else None
    error = page.artwork.last_error or (last.error if last is not None else None)
    return _json(request, {**page.activity.to_dict(), "plex": {"last_error": error}})


async def _artwork(request: web.Request) -> web.Response:
    page = request.app[PAGE]
    thumb = page.thumb(request.match_info["key"])
    data = await page.artwork.image(thumb) if thumb else None
    kind = sniff(data) if data is not None else None
    if data is None or kind is None:
        placeholder, _ = page.static("placeholder.svg")
        return web.Response(body=placeholder, content_type="image/svg+xml",
                            headers={hdrs.CACHE_CONTROL: "no-store",
                                     "X-Content-Type-Options": "nosniff"})
    # The URL carries a version of Plex's artwork path: the same URL is the same image.
    return web.Response(body=data, content_type=kind,
                        headers={hdrs.CACHE_CONTROL: "private, max-age=86400",
                                 "X-Content-Type-Options": "nosniff"})


def add_page_routes(app: web.Application, plane: PagePlane, dumps: Dumps = json.dumps) -> None:
    """Register the page, its data routes and the artwork proxy on the API's `app`."""
    # The service's Plex link; the lighter planes of tests have none: placeholders only.
    found = getattr(plane, "plex", None)
    plex = found if isinstance(found, PlexLink) else None
    client = plex.client if plex is not None else (lambda: None)
    disk = DiskCache(default_cache_dir() if plex is not None else None)
    activity = Activity()
    plane.bus.listen(activity.on_event)
    app[PAGE] = _Page(plane, dumps, activity, ArtworkProxy(client, disk=disk), plex)
    app.router.add_get("/", _index, allow_head=False)
    app.router.add_get("/static/{name}", _static, allow_head=False)
    app.router.add_get("/library", _library, allow_head=False)
    app.router.add_get("/skipped", _skipped, allow_head=False)
    app.router.add_get("/activity", _activity, allow_head=False)
    app.router.add_get("/artwork/{key}", _artwork, allow_head=False)
