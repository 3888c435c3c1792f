"""The HTTP control plane: health, status, sync trigger, entities, metrics, event stream.

Served by aiohttp in the service's own event loop. Reads are open; state-changing routes and
the event stream need the bearer token when one is set. Every JSON body is passed through
the secret mask as a last line of defence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import WSCloseCode, hdrs, web
from aiohttp.typedefs import Handler

from .. import __version__
from ..core.discovery import Topics
from ..core.input_report import malformed_by_file
from ..core.library import FILES
from ..core.result import SyncResult
from ..engine.events import Event, EventBus, Status, SyncFailed, SyncFinished
from ..engine.scheduler import Batch
from ..secret import mask_text
from ..settings.config import Settings
from .auth import EVENTS_PROTOCOL, authorized, digest
from .metrics import CONTENT_TYPE, Metrics
from .openapi import openapi_spec
from .page import PAGE_DATA_ROUTES, add_page_routes

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
MAX_WEBSOCKETS = 100
SYNC_TIMEOUT = 120.0
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PROTECTED_GETS = frozenset({"/events", *PAGE_DATA_ROUTES})
PlexState = Callable[[], Mapping[str, Any]]


class SchedulerView(Protocol):
    @property
    def pending(self) -> tuple[str, ...]: ...

    @property
    def running(self) -> Batch | None: ...


class ControlPlane(Protocol):
    """What the API uses of `Service`; tests may pass a lighter object."""

    @property
    def settings(self) -> Settings: ...

    @property
    def status(self) -> Status: ...

    @property
    def bus(self) -> EventBus: ...

    @property
    def scheduler(self) -> SchedulerView: ...

    @property
    def topics(self) -> Topics: ...

    @property
    def last_result(self) -> SyncResult | None: ...

    def request_sync(self, reason: str) -> int: ...

    async def wait_for_sync(self, batch_id: int) -> SyncFinished | SyncFailed: ...


@dataclass(eq=False, slots=True)
class _Client:
    ws: web.WebSocketResponse
    queue: asyncio.Queue[Event]
    pump: asyncio.Task[None] | None = None


@dataclass(slots=True)
class _State:
    plane: ControlPlane
    metrics: Metrics
    token_digest: bytes | None
    plex_state: PlexState | None
    sync_timeout: float
    spec: dict[str, Any]
    masks: tuple[str, ...]
    clients: set[_Client] = field(default_factory=set)
    deadlines: set[asyncio.Timeout] = field(default_factory=set)
    stopping: bool = False

    def dumps(self, data: Any) -> str:
        return mask_text(json.dumps(data, ensure_ascii=False), self.masks)


STATE = web.AppKey("spotify_to_plex_state", _State)


def _reply(state: _State, data: Any, status: int = 200,
           headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=state.dumps)


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    try:
        protected = request.method not in _SAFE_METHODS or request.path in _PROTECTED_GETS
        if (state.token_digest is not None and protected
                and request.match_info.http_exception is None
                and not authorized(request, state.token_digest)):
            return _reply(state, {"error": "missing or wrong bearer token"}, 401,
                          {hdrs.WWW_AUTHENTICATE: 'Bearer realm="spotify-to-plex-mqtt"'})
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allow = exc.headers.get(hdrs.ALLOW)
        return _reply(state, {"error": exc.reason}, exc.status,
                      {hdrs.ALLOW: allow} if allow is not None else None)


# Routes --------------------------------------------------------------------------------


async def _health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    status = state.plane.status
    if status.healthy:
        return _reply(state, {"status": "ok", "reason": "connected; the last sync finished"})
    if not status.connected:
        reason = "not connected to the MQTT broker"
    elif status.availability is not None:
        reason = status.availability
    elif status.last_failure is not None and (
            status.last_sync is None or status.last_failure.at >= status.last_sync.at):
        reason = f"the last sync failed: {status.last_failure.error}"
    else:
        reason = "no sync has finished yet"
    return _reply(state, {"status": "unhealthy", "reason": reason}, 503)


def _files(status: Status) -> dict[str, dict[str, Any]]:
    read = status.syncing or status.last_sync is not None or status.last_failure is not None
    names = list(FILES.values()) + [n for n in (*status.file_errors, *status.malformed)
                                    if n not in FILES.values()]
    files: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(names):
        error = status.file_errors.get(name)
        state = "error" if error else "ok" if read else "unknown"
        grouped, _ = malformed_by_file(status.malformed.get(name, ()))
        files[name] = {"state": state, "last_error": error,
                       "malformed": sum(m.count for m in grouped),
                       "malformed_first": [r for m in grouped for r in m.first]}
    return files


async def _status(request: web.Request) -> web.Response:
    state = request.app[STATE]
    plane = state.plane
    plex = dict(state.plex_state()) if state.plex_state else {}
    plex["configured"] = bool(plex.get("configured", False))
    running = plane.scheduler.running
    result = plane.last_result
    return _reply(state, {
        **plane.status.to_dict(),
        "version": __version__,
        "settings": plane.settings.redacted(),
        "files": _files(plane.status),
        "plex": plex,
        "sync": {
            "pending": list(plane.scheduler.pending),
            "running": {"id": running.id, "reasons": list(running.reasons)} if running else None,
        },
        "entities": len(result.entities) if result is not None else None,
    })


def _query_bool(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false").lower()
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise web.HTTPBadRequest(reason=f"{name} must be true or false")


async def _sync(request: web.Request) -> web.Response:
    state = request.app[STATE]
    wait = _query_bool(request, "wait")
    if request.body_exists:
        await request.read()  # no body is expected; reading enforces the size limit (413)
    ident = 0 if state.stopping else state.plane.request_sync("http")
    if ident == 0:
        return _reply(state, {"error": "the service is stopping"}, 503)
    if not wait:
        return _reply(state, {"id": ident}, 202)
    deadline: asyncio.Timeout | None = None
    try:
        async with asyncio.timeout(state.sync_timeout) as deadline:
            # Shutdown reschedules this deadline to now, so a waiting client gets a 503 at once.
            state.deadlines.add(deadline)
            event = await state.plane.wait_for_sync(ident)
    except TimeoutError:
        if state.stopping:
            return _reply(state, {"error": "the service is stopping"}, 503)
        return _reply(state, {"error": f"sync {ident} did not end within "
                                       f"{state.sync_timeout:g} s; it goes on"}, 504)
    finally:
        if deadline is not None:
            state.deadlines.discard(deadline)
    outcome = "finished" if isinstance(event, SyncFinished) else "failed"
    return _reply(state, {**event.to_dict(), "outcome": outcome})


async def _entities(request: web.Request) -> web.Response:
    state = request.app[STATE]
    topics = state.plane.topics
    result = state.plane.last_result
    wanted = request.query.get("category")
    rows = []
    for e in result.entities if result is not None else ():
        if wanted is not None and e.category.casefold() != wanted.casefold():
            continue
        object_id = topics.item_object_id(e.slug)
        rows.append({
            "id": e.id, "name": e.name, "category": e.category, "type": e.type,
            "media_content_id": e.media_content_id, "entity_id": f"sensor.{object_id}",
            "state_topic": topics.item_state(e.slug), "config_topic": topics.config(object_id),
        })
    return _reply(state, {"synced": result is not None, "count": len(rows), "entities": rows})


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[STATE].metrics.render()
    return web.Response(body=body, headers={hdrs.CONTENT_TYPE: CONTENT_TYPE})


async def _openapi(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return _reply(state, state.spec)


async def _pump(state: _State, client: _Client) -> None:
    # One task per client: a slow client only stalls its own queue, which drops its oldest.
    while True:
        event = await client.queue.get()
        try:
            await client.ws.send_str(state.dumps(event.to_dict()))
        except (ConnectionError, RuntimeError):
            return


async def _events(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    ws = web.WebSocketResponse(heartbeat=30.0, timeout=2.0, max_msg_size=MAX_BODY,
                               protocols=(EVENTS_PROTOCOL,))
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(reason="expected a WebSocket upgrade request")
    if len(state.clients) >= MAX_WEBSOCKETS:
        # Each holds a descriptor and a queue: a cap keeps a runaway client from taking all.
        raise web.HTTPServiceUnavailable(
            reason=f"too many event streams open ({MAX_WEBSOCKETS}); close some")
    # Subscribe before the handshake completes: a client that sees the connection open
    # receives every event emitted after that moment.
    client = _Client(ws, state.plane.bus.queue())
    try:
        await ws.prepare(request)
        state.clients.add(client)
        client.pump = asyncio.create_task(_pump(state, client))
        async for _message in ws:
            pass  # nothing is expected from clients; reading handles pings and close
    finally:
        state.clients.discard(client)
        state.plane.bus.unqueue(client.queue)
        await _cancel(client.pump)
    return ws


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _goodbye(state: _State, client: _Client) -> None:
    """Send what is still queued (the `stopped` event, typically), then close."""
    await _cancel(client.pump)
    with contextlib.suppress(ConnectionError, RuntimeError, TimeoutError):
        async with asyncio.timeout(1.0):
            while not client.queue.empty():
                await client.ws.send_str(state.dumps(client.queue.get_nowait().to_dict()))
    await client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping")


async def _on_shutdown(app: web.Application) -> None:
    state = app[STATE]
    state.stopping = True
    loop = asyncio.get_running_loop()
    for deadline in list(state.deadlines):
        deadline.reschedule(loop.time())
    await asyncio.gather(*(_goodbye(state, c) for c in list(state.clients)),
                         return_exceptions=True)


def build_app(plane: ControlPlane, token: str | None, metrics: Metrics, *,
              plex_state: PlexState | None = None,
              sync_timeout: float = SYNC_TIMEOUT) -> web.Application:
    """The aiohttp application; `token` (if not empty) guards state changes and `/events`."""
    secrets = (*plane.settings.secrets, *((token,) if token else ()))
    # Mask the JSON-escaped form too: that is how a secret would appear in a body.
    masks = tuple({m for s in secrets if len(s) >= 3
                   for m in (s, json.dumps(s, ensure_ascii=False)[1:-1])})
    app = web.Application(middlewares=[_guard], client_max_size=MAX_BODY)
    app[STATE] = _State(plane, metrics, digest(token) if token else None, plex_state,
                        sync_timeout, openapi_spec(auth=bool(token)), masks)
    app.router.add_get("/health", _health, allow_head=False)
    app.router.add_get("/status", _status, allow_head=False)
    app.router.add_post("/sync", _sync)
    app.router.add_get("/entities", _entities, allow_head=False)
    app.router.add_get("/metrics", _metrics, allow_head=False)
    app.router.add_get("/events", _events, allow_head=False)
    app.router.add_get("/openapi.json", _openapi, allow_head=False)
    add_page_routes(app, plane, app[STATE].dumps)
    app.on_shutdown.append(_on_shutdown)
    return app
