"""The web page's routes and parts without a browser: the pure views, the token in a
WebSocket subprotocol, the artwork proxy against the Plex stand-in over real HTTP."""

# ruff: noqa: S105 - made-up tokens

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import test_utils, web

from plex_standin import PlexStandIn
from spotify_to_plex_mqtt.core.discovery import Topics
from spotify_to_plex_mqtt.core.entities import Entity
from spotify_to_plex_mqtt.core.reconcile import Plan
from spotify_to_plex_mqtt.core.result import SyncResult
from spotify_to_plex_mqtt.http.api import build_app
from spotify_to_plex_mqtt.http.artwork_proxy import ArtworkProxy, DiskCache, sniff, transcode_path
from spotify_to_plex_mqtt.http.metrics import Metrics
from spotify_to_plex_mqtt.http.page import PAGE_DATA_ROUTES
from spotify_to_plex_mqtt.http.page_data import (
    fix_for,
    group_warnings,
    library_view,
    plex_web_url,
    skipped_view,
)
from spotify_to_plex_mqtt.plex.artwork import ArtworkResult
from spotify_to_plex_mqtt.plex.enricher import PlexLink
from test_api import FakePlane, make_settings
from web_support import png, write_plex_json

TOKEN = "web-routes-t0ken"
PLEX_TOKEN = "plex-t0ken-of-the-routes-test"
Client = test_utils.TestClient[web.Request, web.Application]


def entity(ident: str, key: str, media: str = "playlist", thumb: str = "",
           server: str = "") -> Entity:
    return Entity(ident, ident.lower(), f"Name {ident}", "Jazz", "spotify-playlist",
                  "playlist" if media == "playlist" else "album", key, thumb, server)


# Pure ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("reason", "words"), [
    ("no Plex playlist in playlists.json", "Sync this playlist to Plex"),
    ("no Plex album in track_links.json", "Match this album in Plex"),
    ("uri 'x' is not a Plex library key", "Save this item again from Plex"),
    ("duplicate id; the first entry is published", "Remove the second entry"),
    ("playlists.json cannot be read; kept as published until it can", "Fix or restore"),
    ("something new", "Check this item in Spotify-to-Plex"),
])
def test_every_skip_reason_has_a_fix_in_words(reason: str, words: str) -> None:
    assert words in fix_for(reason)


def test_plex_web_links_name_the_server_and_the_key_only() -> None:
    assert plex_web_url(entity("A", "42")) is None  # server unknown: no link
    playlist = plex_web_url(entity("A", "42", server="abc"))
    album = plex_web_url(entity("B", "51", media="album", server="abc"))
    assert playlist == "https://app.plex.tv/desktop/#!/server/abc/playlist?key=%2Fplaylists%2F42"
    assert album == ("https://app.plex.tv/desktop/#!/server/abc/details?key="
                     "%2Flibrary%2Fmetadata%2F51")


def test_library_view_counts_and_sorts_by_name() -> None:
    view = library_view((entity("b", "2"), entity("A", "1", thumb="/t/1")), Topics())
    assert [i["name"] for i in view["items"]] == ["Name A", "Name b"]
    assert view["categories"] == [{"name": "Jazz", "count": 2}]
    assert view["items"][0]["artwork"].startswith("/artwork/1?v=")
    assert view["items"][1]["artwork"] is None
    assert library_view(None, Topics())["synced"] is False


def test_malformed_entries_are_grouped_by_file() -> None:
    warnings = ("spotify_saved_items.json entry #3: skipped, not an object",
                "track_links.json entry #1: skipped, no text 'spotify_id'",
                "the broker returned only part of its retained messages")
    assert group_warnings(warnings) == {
        "spotify_saved_items.json": [warnings[0]], "track_links.json": [warnings[1]],
        "other": [warnings[2]]}
    view = skipped_view((), warnings, {"playlists.json": "playlists.json: invalid JSON"})
    files = {f["file"]: f for f in view["files"]}
    assert files["playlists.json"]["error"] == "playlists.json: invalid JSON"
    assert files["spotify_saved_items.json"]["malformed_count"] == 1


def test_sniff_passes_images_only() -> None:
    assert sniff(png((1, 2, 3))) == "image/png"
    assert sniff(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff(b"<html>Unauthorized</html>") is None
    assert transcode_path("/library/metadata/5/thumb/9").endswith(
        "url=%2Flibrary%2Fmetadata%2F5%2Fthumb%2F9")


# Routes --------------------------------------------------------------------------------

@dataclass
class PlexPlane(FakePlane):
    """The API's fake plane with the service's Plex link, for the artwork route."""

    plex: PlexLink | None = None


@pytest.fixture
async def standin() -> AsyncIterator[PlexStandIn]:
    plex = PlexStandIn(token=PLEX_TOKEN)
    plex.images["/library/metadata/51/thumb/1"] = png((200, 10, 10))
    async with plex:
        yield plex


@pytest.fixture
async def served(tmp_path: Path, standin: PlexStandIn,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Client, PlexPlane]]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_plex_json(tmp_path, standin)
    link = PlexLink(tmp_path, {})
    await link.refresh()
    plane = PlexPlane(make_settings(tmp_path), plex=link)
    entities = (entity("A", "51", media="album", thumb="/library/metadata/51/thumb/1"),
                entity("B", "52", media="album", thumb="/library/metadata/52/thumb/1"))
    plane.last_result = SyncResult(entities, (), Plan(), 2, 0)
    client: Client = test_utils.TestClient(test_utils.TestServer(
        build_app(plane, TOKEN, Metrics())))
    await client.start_server()
    try:
        yield client, plane
    finally:
        await client.close()
        await link.aclose()


async def test_page_data_needs_the_token_and_the_page_does_not(
        served: tuple[Client, PlexPlane]) -> None:
    client, _ = served
    for route in PAGE_DATA_ROUTES:
        assert (await client.get(route)).status == 401, route
        answer = await client.get(route, headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status == 200, route
        etag = answer.headers["ETag"]
        again = await client.get(route, headers={"Authorization": f"Bearer {TOKEN}",
                                                 "If-None-Match": etag})
        assert again.status == 304, route
    page = await client.get("/")
    assert page.status == 200
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert (await client.get("/static/page.js")).content_type == "text/javascript"
    missing = await client.get("/static/secrets.txt")
    assert missing.status == 404
    assert "error" in await missing.json()


async def test_activity_says_why_plex_could_not_be_asked(
        served: tuple[Client, PlexPlane]) -> None:
    client, plane = served
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert (await (await client.get("/activity", headers=auth)).json())["plex"] == {
        "last_error": None}
    assert plane.plex is not None
    plane.plex.last = ArtworkResult(error="Plex at 127.0.0.1:1 cannot be reached")
    answer = await (await client.get("/activity", headers=auth)).json()
    assert answer["plex"]["last_error"] == "Plex at 127.0.0.1:1 cannot be reached"


def protocol_for(token: str) -> str:
    return "bearer." + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


async def test_the_event_stream_takes_the_token_as_a_subprotocol(
        served: tuple[Client, PlexPlane]) -> None:
    client, _ = served
    ws = await client.ws_connect("/events",
                                 protocols=("spotify-to-plex-mqtt", protocol_for(TOKEN)))
    assert ws.protocol == "spotify-to-plex-mqtt"  # the token's protocol is never echoed
    await ws.close()
    for wrong in (protocol_for("nope"), "bearer.%%%", "bearer."):
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await client.ws_connect("/events", protocols=("spotify-to-plex-mqtt", wrong))
        assert caught.value.status == 401


async def test_artwork_comes_through_the_service_and_never_the_token(
        served: tuple[Client, PlexPlane], standin: PlexStandIn) -> None:
    client, _ = served
    image = await client.get("/artwork/51?v=1")
    assert image.status == 200
    assert image.content_type == "image/png"
    assert "max-age" in image.headers["Cache-Control"]
    body = await image.read()
    assert body == standin.images["/library/metadata/51/thumb/1"]
    again = await client.get("/artwork/51?v=1")
    assert await again.read() == body
    assert len(standin.paths("/photo")) == 1  # the second came from memory
    # Plex has no image (404), an unknown key, Plex down: the placeholder, never cached.
    not_found = await client.get("/artwork/52")
    assert not_found.content_type == "image/svg+xml"
    assert standin.paths("/photo")[-1] == "/photo/:/transcode"
    await standin.stop()
    cached = await client.get("/artwork/51?v=1")  # known already: Plex down is no matter
    assert await cached.read() == body
    for key in ("52", "999", "not-a-key"):
        answer = await client.get(f"/artwork/{key}")
        assert answer.status == 200
        assert answer.content_type == "image/svg+xml"
        assert answer.headers["Cache-Control"] == "no-store"
    for answer_text in [json.dumps(dict(image.headers)), body.decode("latin-1")]:
        assert PLEX_TOKEN not in answer_text


async def test_artwork_cache_is_bounded_in_memory_and_on_disk(
        tmp_path: Path, standin: PlexStandIn) -> None:
    write_plex_json(tmp_path, standin)
    link = PlexLink(tmp_path, {})
    await link.refresh()
    thumbs = [f"/library/metadata/{n}/thumb/1" for n in range(40)]
    for n, thumb in enumerate(thumbs):
        standin.images[thumb] = png((n, 100, 200), size=32) + bytes(2000)  # ~2.1 KB each
    disk = DiskCache(tmp_path / "art", limit=20_000)
    proxy = ArtworkProxy(link.client, disk=disk, memory_limit=30_000)
    try:
        for thumb in thumbs:
            assert await proxy.image(thumb) == standin.images[thumb]
        assert proxy.memory_size <= 30_000
        assert sum(p.stat().st_size for p in (tmp_path / "art").iterdir()) <= 20_000
        # What is on disk is served with Plex down, by a new proxy (a restarted service).
        await standin.stop()
        fresh = ArtworkProxy(link.client, disk=DiskCache(tmp_path / "art", limit=20_000))
        assert await fresh.image(thumbs[-1]) == standin.images[thumbs[-1]]
        assert await fresh.image(thumbs[0]) is None  # evicted, and Plex is down
    finally:
        await link.aclose()
