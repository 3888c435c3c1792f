"""A small Plex stand-in served over real HTTP on 127.0.0.1, with knobs for bad days.

Knobs: `latency` per request, `fail_next(n)` (the next n requests answer 500), `hang()` /
`release()` (requests wait until released), `stop()` / `start()` (server down, same port),
`strict_404` (a batch with any unknown key answers 404, as some servers do). Every request
is logged with whether its token header was right, for counting and asserting.
`images` maps a thumb path to image bytes, served at that path and through the photo
transcoder (`/photo/:/transcode?url=<thumb>&width=...`), as Plex does.

Without `Accept: application/json` it answers XML, as Plex does, for `/`, `/identity` and
`/library/metadata/<key>` (albums and playlists alike): what `plexapi`, and so Home
Assistant's Plex integration, reads.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from xml.etree import ElementTree

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Seen:
    """One request as the stand-in saw it."""

    path: str
    token_ok: bool
    accept_json: bool
    token_in_url: bool


@dataclass(slots=True)
class PlexStandIn:
    """Plex over HTTP: `albums` and `playlists` map rating key -> thumb / composite."""

    token: str = "standin-token"  # noqa: S105 - a made-up token
    albums: dict[str, str] = field(default_factory=dict)
    playlists: dict[str, str] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)
    machine_id: str = "standinmachineid"
    latency: float = 0.0
    strict_404: bool = False
    failing_paths: set[str] = field(default_factory=set)  # answered 500 until removed
    log: list[Seen] = field(default_factory=list)
    max_in_flight: int = 0
    port: int = 0
    _in_flight: int = field(default=0, init=False)
    _fail_next: int = field(default=0, init=False)
    _fail_status: int = field(default=500, init=False)
    _released: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _runner: web.AppRunner | None = field(default=None, init=False)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Serve on the port used before (a free one the first time)."""
        self._released.set()
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self.port = runner.addresses[0][1]
        self._runner = runner

    async def stop(self) -> None:
        """Stop listening and drop open connections: Plex is down."""
        self._released.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    def fail_next(self, count: int, status: int = 500) -> None:
        self._fail_next, self._fail_status = count, status

    def hang(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def paths(self, prefix: str = "/") -> list[str]:
        return [seen.path for seen in self.log if seen.path.startswith(prefix)]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token_ok = request.headers.get("X-Plex-Token") == self.token
        accept_json = "application/json" in request.headers.get("Accept", "")
        self.log.append(Seen(request.path, token_ok, accept_json,
                             "X-Plex-Token" in request.query))
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            await self._released.wait()
            if self.latency:
                await asyncio.sleep(self.latency)
            if self._fail_next > 0:
                self._fail_next -= 1
                return web.Response(status=self._fail_status, text="stand-in failure")
            if request.path in self.failing_paths:
                return web.Response(status=500, text="stand-in failure")
            if not token_ok:
                return web.Response(status=401, text="Unauthorized")
            image = self._image(request)
            if image is not None:
                return image
            if not accept_json:
                return self._xml_route(request.path)
            return self._route(request.path)
        finally:
            self._in_flight -= 1

    def _image(self, request: web.Request) -> web.Response | None:
        """An image request's answer (404 for an unknown image); None for other requests."""
        if request.path == "/photo/:/transcode":
            thumb = request.query.get("url", "")
        elif request.path in self.images:
            thumb = request.path
        else:
            return None
        data = self.images.get(thumb)
        if data is None:
            return web.Response(status=404, text="Not Found")
        kind = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
        return web.Response(body=data, content_type=kind)

    def _route(self, path: str) -> web.Response:
        if path == "/identity":
            return _json({"size": 0, "machineIdentifier": self.machine_id})
        if path == "/playlists":
            return _json({"size": len(self.playlists), "Metadata": [
                {"ratingKey": key, "composite": art, "playlistType": "audio"}
                for key, art in self.playlists.items()]})
        prefix = "/library/metadata/"
        if path.startswith(prefix) and "/" not in path[len(prefix):]:
            keys = path[len(prefix):].split(",")
            known = [k for k in keys if k in self.albums]
            if not known or (self.strict_404 and len(known) < len(keys)):
                return web.Response(status=404, text="Not Found")
            return _json({"size": len(known), "Metadata": [
                {"ratingKey": key, "thumb": self.albums[key], "type": "album"}
                for key in known]})
        return web.Response(status=404, text="Not Found")


    def _xml_route(self, path: str) -> web.Response:
        server = {"machineIdentifier": self.machine_id, "friendlyName": "Stand-in",
                  "version": "1.40.0.0"}
        if path in ("/", "/identity"):
            return _xml(server, [])
        key = path.removeprefix("/library/metadata/")
        if key in self.albums:
            return _xml({"size": "1"}, [("Directory", {
                "ratingKey": key, "key": f"/library/metadata/{key}/children", "type": "album",
                "title": f"Album {key}", "thumb": self.albums[key]})])
        if key in self.playlists:
            return _xml({"size": "1"}, [("Playlist", {
                "ratingKey": key, "key": f"/playlists/{key}/items", "type": "playlist",
                "playlistType": "audio", "title": f"Playlist {key}",
                "composite": self.playlists[key]})])
        return web.Response(status=404, text="Not Found")


def _xml(attributes: dict[str, str], children: list[tuple[str, dict[str, str]]]) -> web.Response:
    root = ElementTree.Element("MediaContainer", attributes)
    for tag, attrs in children:
        ElementTree.SubElement(root, tag, attrs)
    return web.Response(body=ElementTree.tostring(root), content_type="text/xml")


def _json(container: dict[str, Any]) -> web.Response:
    return web.json_response({"MediaContainer": container})
