"""The HTTP control plane: every route in-process, then once over a real port on 127.0.0.1."""

# ruff: noqa: S105 - made-up, distinctive secrets whose absence from output is checked

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import openapi_schema_validator
import openapi_spec_validator
import pytest
from aiohttp import test_utils, web

from spotify_to_plex_mqtt.core.discovery import Topics
from spotify_to_plex_mqtt.core.entities import Entity, MediaType
from spotify_to_plex_mqtt.core.reconcile import Plan
from spotify_to_plex_mqtt.core.result import SyncResult
from spotify_to_plex_mqtt.engine.events import (
    Connected,
    EventBus,
    FileError,
    Status,
    Stopped,
    SyncFailed,
    SyncFinished,
    SyncStarted,
)
from spotify_to_plex_mqtt.engine.scheduler import Scheduler
from spotify_to_plex_mqtt.http.api import build_app
from spotify_to_plex_mqtt.http.control import ControlPlane
from spotify_to_plex_mqtt.http.metrics import Metrics
from spotify_to_plex_mqtt.http.page import PAGE_DATA_ROUTES
from spotify_to_plex_mqtt.http.server import HttpServer, HttpServerError
from spotify_to_plex_mqtt.secret import MASK
from spotify_to_plex_mqtt.service.service import Service
from spotify_to_plex_mqtt.settings.config import Settings, load_settings
from spotify_to_plex_mqtt.settings.exposure import check_http_exposure
from spotify_to_plex_mqtt.settings.values import ConfigError

TOKEN = "t0ken-that-must-never-leak"
PASSWORD = "hunter2-broker-password"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
Client = test_utils.TestClient[web.Request, web.Application]


def make_settings(tmp_path: Path) -> Settings:
    env = {"MQTT_BROKER_URL": f"mqtt://homeassistant:{PASSWORD}@broker.lan:1883"}
    return load_settings(["--settings-dir", str(tmp_path)], env)


@dataclass
class FakePlane:
    """A control plane whose syncs run in the loop right after being requested."""

    settings: Settings
    topics: Topics = field(default_factory=Topics)
    bus: EventBus = field(default_factory=EventBus)
    status: Status = field(default_factory=Status)
    scheduler: Scheduler = field(default_factory=lambda: Scheduler(debounce=0, min_gap=0))
    last_result: SyncResult | None = None
    outcome: str = "finished"  # finished, failed, never (the sync hangs), stopping
    requests: list[str] = field(default_factory=list)
    waiting: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.bus.listen(self.status.on_event)

    def request_sync(self, reason: str) -> int:
        if self.outcome == "stopping":
            return 0
        self.requests.append(reason)
        ident = len(self.requests)
        if self.outcome != "never":
            # Like the service: the sync runs later in the loop, never inside request_sync.
            asyncio.get_running_loop().call_soon(self._sync, ident, (reason,))
        return ident

    def _sync(self, ident: int, reasons: tuple[str, ...]) -> None:
        self.bus.emit(SyncStarted(ident, reasons))
        if self.outcome == "failed":
            self.bus.emit(SyncFailed(ident, reasons, "broker went away", 1, None))
        else:
            self.bus.emit(SyncFinished(ident, reasons, 2, 2, 0, 0, 0, 0, 0.01))

    async def wait_for_sync(self, batch_id: int) -> SyncFinished | SyncFailed:
        queue = self.bus.queue()
        self.waiting.set()
        try:
            while True:
                event = await queue.get()
                if isinstance(event, SyncFinished | SyncFailed) and event.id >= batch_id:
                    return event
        finally:
            self.bus.unqueue(queue)


def entity(ident: str, category: str, kind: str = "spotify-playlist") -> Entity:
    media: MediaType = "playlist" if kind == "spotify-playlist" else "album"
    return Entity(ident, ident.lower(), f"Name {ident}", category, kind, media, "42")


def sync_result(*entities: Entity) -> SyncResult:
    return SyncResult(entities=entities, skipped=(), plan=Plan(), published=len(entities),
                      removed=0)


@pytest.fixture
def plane(tmp_path: Path) -> FakePlane:
    return FakePlane(make_settings(tmp_path))


MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[Client] = []

    async def make(plane: ControlPlane, token: str | None = None, **options: Any) -> Client:
        app = build_app(plane, token, options.pop("metrics", Metrics()), **options)
        client: Client = test_utils.TestClient(test_utils.TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def receive_until(ws: aiohttp.ClientWebSocketResponse, kind: str,
                        seen: list[dict[str, Any]]) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            message: dict[str, Any] = await ws.receive_json()
            seen.append(message)
            if message["event"] == kind:
                return message


# Exposure ------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "LOCALHOST.", "::1",
                                  "[::1]", "::ffff:127.0.0.1"])
def test_loopback_without_token_is_allowed(host: str) -> None:
    check_http_exposure(host, None, False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.10"  # noqa: S104
                                  , "fe80::1", "nas.lan"])
def test_exposed_without_token_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="API_TOKEN") as caught:
        check_http_exposure(host, None, False)
    assert caught.value.setting == "HTTP_HOST"
    check_http_exposure(host, TOKEN, False)
    check_http_exposure(host, None, True)
    with pytest.raises(ConfigError):
        check_http_exposure(host, "", False)  # an empty token is no token


async def test_server_refuses_exposure_before_binding(plane: FakePlane) -> None:
    server = HttpServer(plane, Metrics(), host="0.0.0.0", port=0)  # noqa: S104
    with pytest.raises(ConfigError):
        await server.start()
    assert server.bound_port is None
    await server.stop()


# Routes --------------------------------------------------------------------------------

async def test_health_follows_connection_and_last_sync(plane: FakePlane,
                                                       make_client: MakeClient) -> None:
    client = await make_client(plane)

    async def health() -> tuple[int, dict[str, Any]]:
        response = await client.get("/health")
        return response.status, await response.json()

    assert await health() == (503, {"status": "unhealthy",
                                    "reason": "not connected to the MQTT broker"})
    plane.bus.emit(Connected("mqtt://broker.lan:1883"))
    assert (await health())[1]["reason"] == "no sync has finished yet"
    plane.bus.emit(SyncFinished(1, ("start",), 1, 1, 0, 0, 0, 0, 0.1, at=100.0))
    assert (await health())[0] == 200
    plane.bus.emit(SyncFailed(2, ("timer",), "publish timed out", 1, 30.0, at=200.0))
    status, body = await health()
    assert status == 503
    assert body["reason"] == "the last sync failed: publish timed out"


async def test_status_with_a_real_service(tmp_path: Path, make_client: MakeClient) -> None:
    service = Service(make_settings(tmp_path))
    client = await make_client(service, TOKEN,
                               plex_state=lambda: {"configured": True, "server": "Den"})
    service.bus.emit(FileError("playlists.json", "playlists.json is not valid JSON"))
    assert (await client.post("/sync", headers=AUTH)).status == 202
    body = await (await client.get("/status")).json()
    assert body["version"]
    assert body["running"] is False
    assert body["settings"]["mqtt"]["password"] == MASK
    assert body["plex"] == {"configured": True, "server": "Den"}
    assert body["sync"] == {"pending": ["http"], "running": None}
    assert body["files"]["playlists.json"] == {
        "state": "error", "last_error": "playlists.json is not valid JSON",
        "malformed": 0, "malformed_first": []}
    assert body["files"]["track_links.json"]["state"] == "unknown"
    assert body["entities"] is None


async def test_status_times_are_iso_8601_in_utc(plane: FakePlane,
                                               make_client: MakeClient) -> None:
    client = await make_client(plane)
    plane.bus.emit(SyncFinished(1, ("start",), 1, 1, 0, 0, 0, 0, 0.25, at=1_796_191_413.5))
    plane.bus.emit(SyncFailed(2, ("timer",), "publish timed out", 1, 30.0,
                              at=1_796_191_420.0))
    body = await (await client.get("/status")).json()
    assert body["last_sync"]["at"] == "2026-12-02T06:03:33.500Z"
    assert body["last_failure"]["at"] == "2026-12-02T06:03:40.000Z"
    assert datetime.fromisoformat(body["last_sync"]["at"]).tzinfo is not None
    # Durations stay numbers of seconds.
    assert body["last_sync"]["duration"] == 0.25


async def test_status_shows_running_sync_and_file_states(plane: FakePlane,
                                                         make_client: MakeClient) -> None:
    client = await make_client(plane)
    plane.scheduler.request("file")
    batch = await plane.scheduler.next_batch()
    assert batch is not None
    plane.bus.emit(SyncStarted(batch.id, batch.reasons))
    plane.last_result = sync_result(entity("A", "Jazz"))
    plane.status.malformed["spotify_saved_items.json"] = tuple(
        f"spotify_saved_items.json entry #{n} (id 'x{n}'): skipped, label not text"
        for n in range(1, 8))
    body = await (await client.get("/status")).json()
    assert body["sync"] == {"pending": [], "running": {"id": batch.id, "reasons": ["file"]}}
    assert body["syncing"] is True
    assert body["files"]["track_links.json"] == {"state": "ok", "last_error": None,
                                                 "malformed": 0, "malformed_first": []}
    saved = body["files"]["spotify_saved_items.json"]
    assert (saved["state"], saved["malformed"]) == ("ok", 7)
    assert saved["malformed_first"] == [
        f"entry #{n} (id 'x{n}'): skipped, label not text" for n in (1, 2, 3)]
    assert body["plex"] == {"configured": False}
    assert body["entities"] == 1


async def test_sync_accepted_then_waited(plane: FakePlane, make_client: MakeClient) -> None:
    client = await make_client(plane)
    response = await client.post("/sync")
    assert response.status == 202
    assert await response.json() == {"id": 1}
    response = await client.post("/sync?wait=true")
    assert response.status == 200
    body = await response.json()
    assert (body["event"], body["id"], body["outcome"]) == ("sync_finished", 2, "finished")
    assert body["reasons"] == ["http"]
    assert plane.requests == ["http", "http"]


async def test_sync_wait_reports_failure(plane: FakePlane, make_client: MakeClient) -> None:
    plane.outcome = "failed"
    client = await make_client(plane)
    response = await client.post("/sync", params={"wait": "1"})
    body = await response.json()
    assert (response.status, body["outcome"], body["error"]) == (200, "failed", "broker went away")


async def test_sync_wait_times_out(plane: FakePlane, make_client: MakeClient) -> None:
    plane.outcome = "never"
    client = await make_client(plane, sync_timeout=0.1)
    response = await client.post("/sync?wait=true")
    assert response.status == 504
    assert "did not end within 0.1 s" in (await response.json())["error"]
    assert not plane.bus._queues  # the waiter unsubscribed


async def test_sync_refused_while_stopping(plane: FakePlane, make_client: MakeClient) -> None:
    plane.outcome = "stopping"
    client = await make_client(plane)
    response = await client.post("/sync")
    assert response.status == 503
    assert await response.json() == {"error": "the service is stopping"}


async def test_sync_bad_parameter_and_big_body(plane: FakePlane,
                                               make_client: MakeClient) -> None:
    client = await make_client(plane)
    response = await client.post("/sync?wait=maybe")
    assert response.status == 400
    assert "wait must be true or false" in (await response.json())["error"]
    response = await client.post("/sync", data=b"x" * (65 * 1024))
    assert response.status == 413
    assert "error" in await response.json()
    assert plane.requests == []


async def test_entities_filtered_by_category(plane: FakePlane, make_client: MakeClient) -> None:
    client = await make_client(plane)
    body = await (await client.get("/entities")).json()
    assert body == {"synced": False, "count": 0, "entities": []}
    plane.last_result = sync_result(entity("A", "Jazz"), entity("B", "jazz", "spotify-album"),
                                    entity("C", "Kids"))
    body = await (await client.get("/entities")).json()
    assert body["count"] == 3
    assert body["entities"][0] == {
        "id": "A", "name": "Name A", "category": "Jazz", "type": "spotify-playlist",
        "media_content_id": "plex://42",
        "entity_id": "sensor.spotify_to_plex_item_a",
        "state_topic": "spotify-to-plex/items/a",
        "config_topic": "homeassistant/sensor/spotify_to_plex_item_a/config",
    }
    body = await (await client.get("/entities", params={"category": "JAZZ"})).json()
    assert [e["id"] for e in body["entities"]] == ["A", "B"]
    body = await (await client.get("/entities", params={"category": "Rock"})).json()
    assert body["count"] == 0


async def test_metrics_route(plane: FakePlane, make_client: MakeClient) -> None:
    metrics = Metrics()
    plane.bus.listen(metrics.on_event)
    client = await make_client(plane, metrics=metrics)
    assert (await client.post("/sync?wait=true")).status == 200
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await response.text()
    assert 'spotify_to_plex_syncs_total{outcome="finished",trigger="http"} 1.0' in text


async def test_unknown_route_and_wrong_method_answer_json(plane: FakePlane,
                                                          make_client: MakeClient) -> None:
    client = await make_client(plane, TOKEN)
    response = await client.get("/nope")
    assert (response.status, await response.json()) == (404, {"error": "Not Found"})
    response = await client.post("/nope")  # an unknown route is 404 even without the token
    assert response.status == 404
    response = await client.post("/health", headers=AUTH)
    assert response.status == 405
    assert response.headers["Allow"] == "GET"
    assert "error" in await response.json()
    response = await client.get("/events")  # not a WebSocket upgrade
    assert response.status == 401
    response = await client.get("/events", headers=AUTH)
    assert response.status == 400
    assert "WebSocket" in (await response.json())["error"]


# Token ---------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer",
                                    f"Bearer {TOKEN}x"])
async def test_token_required_for_sync_and_events(plane: FakePlane, make_client: MakeClient,
                                                  header: str | None) -> None:
    client = await make_client(plane, TOKEN)
    headers = {"Authorization": header} if header is not None else {}
    response = await client.post("/sync", headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    text = await response.text()
    assert json.loads(text) == {"error": "missing or wrong bearer token"}
    assert TOKEN not in text
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await client.ws_connect("/events", headers=headers)
    assert caught.value.status == 401
    assert plane.requests == []


async def test_reads_are_open_and_the_token_works(plane: FakePlane,
                                                  make_client: MakeClient) -> None:
    client = await make_client(plane, TOKEN)
    for path in ("/health", "/status", "/entities", "/metrics", "/openapi.json"):
        assert (await client.get(path)).status in (200, 503), path
    assert (await client.post("/sync", headers=AUTH)).status == 202
    assert (await client.post("/sync", headers={"authorization": f"bearer  {TOKEN} "})
            ).status == 202


async def test_secrets_never_in_any_response(plane: FakePlane, make_client: MakeClient) -> None:
    metrics = Metrics()
    plane.bus.listen(metrics.on_event)
    client = await make_client(plane, TOKEN, metrics=metrics)
    # A message that slipped a secret in is masked on the way out.
    plane.bus.emit(SyncFailed(1, ("start",), f"rejected {PASSWORD} and {TOKEN}", 1, None))
    plane.bus.emit(FileError("playlists.json", f"odd {json.dumps(PASSWORD)}"))
    texts = [await (await client.get("/status")).text()]
    async with client.ws_connect("/events", headers=AUTH) as ws:
        plane.bus.emit(SyncFailed(2, ("timer",), f"again {PASSWORD}", 2, None))
        texts.append(json.dumps(await receive_until(ws, "sync_failed", [])))
    for method, path in [("GET", "/health"), ("GET", "/status"), ("GET", "/entities"),
                         ("GET", "/metrics"), ("GET", "/openapi.json"), ("POST", "/sync"),
                         ("POST", "/sync?wait=true"), ("GET", "/nope")]:
        for headers in ({}, AUTH):
            texts.append(await (await client.request(method, path, headers=headers)).text())
    for text in texts:
        assert TOKEN not in text
        assert PASSWORD not in text
    assert any("rejected ******** and ********" in text for text in texts)
    assert any("again ********" in text for text in texts)


async def test_a_secret_is_masked_in_its_json_escaped_form_too(
        plane: FakePlane, make_client: MakeClient) -> None:
    token = 'quote"and\\backslash'
    client = await make_client(plane, token)
    plane.bus.emit(SyncFailed(1, ("start",), f"token was {token}", 1, None))
    text = await (await client.get("/status")).text()
    assert json.dumps(token)[1:-1] not in text
    assert "token was ********" in text


# WebSocket -----------------------------------------------------------------------------

async def test_websocket_sees_the_sync_it_triggered(plane: FakePlane,
                                                    make_client: MakeClient) -> None:
    client = await make_client(plane, TOKEN)
    async with client.ws_connect("/events", headers=AUTH) as ws:
        response = await client.post("/sync", headers=AUTH)
        ident = (await response.json())["id"]
        seen: list[dict[str, Any]] = []
        finished = await receive_until(ws, "sync_finished", seen)
        assert [m["event"] for m in seen] == ["sync_started", "sync_finished"]
        assert seen[0]["id"] == finished["id"] == ident
        assert finished["reasons"] == ["http"]


async def test_a_client_that_does_not_read_does_not_hold_up_others(
        plane: FakePlane, make_client: MakeClient) -> None:
    client = await make_client(plane)
    async with client.ws_connect("/events") as idle, client.ws_connect("/events") as reader:
        for n in range(1, 201):  # lock-step: each event reaches the reader before the next
            plane.bus.emit(SyncStarted(n, ("step",)))
            assert (await receive_until(reader, "sync_started", []))["id"] == n
        for n in range(201, 1701):  # a burst larger than a client queue (1000)
            plane.bus.emit(SyncStarted(n, ("burst",)))
        plane.bus.emit(Stopped("end"))
        for ws in (reader, idle):
            seen: list[dict[str, Any]] = []
            await receive_until(ws, "stopped", seen)
            ids = [m["id"] for m in seen if m["event"] == "sync_started"]
            # The oldest of the burst may be dropped; the newest arrive, in order.
            assert ids == sorted(ids)
            assert ids[-1] == 1700


# Real port -----------------------------------------------------------------------------

async def test_real_port_end_to_end(plane: FakePlane) -> None:
    server = HttpServer(plane, Metrics(), host="127.0.0.1", port=0, token=TOKEN,
                        shutdown_timeout=2.0)
    await server.start()
    try:
        assert server.bound_port
        base = server.url
        assert base == f"http://127.0.0.1:{server.bound_port}"
        async with aiohttp.ClientSession(base) as session:
            async with session.get("/health") as response:
                assert response.status == 503
            async with session.ws_connect("/events", headers=AUTH) as ws:
                async with session.post("/sync?wait=true", headers=AUTH) as response:
                    assert response.status == 200
                    assert (await response.json())["outcome"] == "finished"
                await receive_until(ws, "sync_finished", [])
                # Stopping: a waiting request is answered, queued events are still delivered.
                plane.outcome = "never"
                plane.waiting.clear()

                async def wait_for_hung_sync() -> int:
                    async with session.post("/sync?wait=true", headers=AUTH) as response:
                        return response.status

                waiting = asyncio.create_task(wait_for_hung_sync())
                async with asyncio.timeout(5):
                    await plane.waiting.wait()
                plane.bus.emit(Stopped("SIGTERM"))
                await server.stop()
                assert await waiting == 503
                await receive_until(ws, "stopped", [])
                async with asyncio.timeout(5):
                    message = await ws.receive()
                assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    finally:
        await server.stop()


async def test_port_in_use_is_a_clear_error(plane: FakePlane) -> None:
    first = HttpServer(plane, Metrics(), port=0)
    await first.start()
    try:
        second = HttpServer(plane, Metrics(), port=first.bound_port or 0)
        with pytest.raises(HttpServerError, match=r"cannot listen on 127\.0\.0\.1") as info:
            await second.start()
        # The hint names the two ways out.
        assert "HTTP_PORT (--http-port)" in str(info.value)
        assert "--no-http" in str(info.value)
    finally:
        await first.stop()


# OpenAPI -------------------------------------------------------------------------------

def served_routes(app: web.Application) -> set[tuple[str, str]]:
    return {(route.resource.canonical, route.method.lower())
            for route in app.router.routes() if route.resource is not None}


def spec_routes(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, item in spec["paths"].items() for method in item}


@pytest.mark.parametrize("token", [None, TOKEN])
async def test_openapi_lists_exactly_the_served_routes(plane: FakePlane,
                                                       make_client: MakeClient,
                                                       token: str | None) -> None:
    client = await make_client(plane, token)
    spec = await (await client.get("/openapi.json")).json()
    assert spec_routes(spec) == served_routes(client.app)
    openapi_spec_validator.validate(spec)
    secured = {(p, m) for p, m in spec_routes(spec) if spec["paths"][p][m].get("security")}
    page_data = {(route, "get") for route in PAGE_DATA_ROUTES}
    assert secured == ({("/sync", "post"), ("/events", "get"), *page_data} if token else set())


def resolve(node: Any, spec: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            return resolve(spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]], spec)
        return {key: resolve(value, spec) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(item, spec) for item in node]
    return node


async def test_responses_match_the_openapi_schemas(plane: FakePlane,
                                                   make_client: MakeClient) -> None:
    schema_validator = openapi_schema_validator
    client = await make_client(plane, TOKEN, sync_timeout=0.1)
    spec = await (await client.get("/openapi.json")).json()
    plane.last_result = sync_result(entity("A", "Jazz"))
    plane.bus.emit(Connected("mqtt://broker.lan:1883"))
    requests: list[tuple[str, str, dict[str, str]]] = [
        ("get", "/health", {}), ("get", "/status", {}), ("get", "/entities", {}),
        ("post", "/sync", {}), ("post", "/sync", AUTH), ("post", "/sync?wait=true", AUTH),
        ("post", "/sync?wait=nope", AUTH), ("get", "/events", AUTH), ("get", "/events", {}),
        ("get", "/openapi.json", {}), ("get", "/metrics", {}),
    ]
    checked: set[tuple[str, str, str]] = set()
    for method, target, headers in requests:
        response = await client.request(method, target, headers=headers)
        path = target.split("?")[0]
        declared = spec["paths"][path][method]["responses"]
        assert str(response.status) in declared, (method, target, response.status)
        content = declared[str(response.status)]["content"]
        media = response.headers["Content-Type"].split(";")[0]
        schema = resolve(content[media]["schema"], spec)
        body = await response.json() if media == "application/json" else await response.text()
        schema_validator.validate(body, schema, cls=schema_validator.OAS30Validator)
        checked.add((path, method, str(response.status)))
    plane.outcome = "never"
    response = await client.post("/sync?wait=true", headers=AUTH)
    assert response.status == 504
    assert "504" in spec["paths"]["/sync"]["post"]["responses"]
    assert len(checked) >= 10


def test_service_is_a_control_plane(tmp_path: Path) -> None:
    # mypy checks the assignment; at run time, the attributes the API reads exist.
    service: ControlPlane = Service(make_settings(tmp_path))
    assert isinstance(service.status, Status)
    assert service.last_result is None
    assert service.scheduler.pending == ()


def test_event_kinds_in_spec_cover_all_events() -> None:
    from spotify_to_plex_mqtt.engine.events import _KINDS
    from spotify_to_plex_mqtt.http.openapi import SCHEMAS

    assert set(SCHEMAS["Event"]["properties"]["event"]["enum"]) == set(_KINDS.values())
