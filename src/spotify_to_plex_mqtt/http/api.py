"""The HTTP control plane: health, status, sync trigger, entities, metrics, event stream.

Served by aiohttp in the service's own event loop. Reads are open; state-changing routes and
the event stream need the bearer token when one is set. Every JSON body is passed through
the secret mask as a last line of defence.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from .. import __version__
from ..core.entity_row import entity_row
from ..core.input_report import malformed_by_file
from ..core.library import FILES
from ..engine.events import Status, SyncFinished
from .auth import authorized, digest
from .control import ControlPlane, PlexState
from .metrics import CONTENT_TYPE, Metrics
from .openapi import openapi_spec
from .page import PAGE_DATA_ROUTES, add_page_routes
from .state import MAX_BODY, STATE, ApiState, reply
from .stream import events, on_shutdown

log = logging.getLogger(__name__)

SYNC_TIMEOUT = 120.0
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PROTECTED_GETS = frozenset({"/events", *PAGE_DATA_ROUTES})


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    try:
        protected = request.method not in _SAFE_METHODS or request.path in _PROTECTED_GETS
        if (state.token_digest is not None and protected
                and request.match_info.http_exception is None
                and not authorized(request, state.token_digest)):
            return reply(state, {"error": "missing or wrong bearer token"}, 401,
                          {hdrs.WWW_AUTHENTICATE: 'Bearer realm="spotify-to-plex-mqtt"'})
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allow = exc.headers.get(hdrs.ALLOW)
        return reply(state, {"error": exc.reason}, exc.status,
                      {hdrs.ALLOW: allow} if allow is not None else None)


# Routes --------------------------------------------------------------------------------


async def _health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    status = state.plane.status
    if status.healthy:
        return reply(state, {"status": "ok", "reason": "connected; the last sync finished"})
    if not status.connected:
        reason = "not connected to the MQTT broker"
    elif status.availability is not None:
        reason = status.availability
    elif status.last_failure is not None and (
            status.last_sync is None or status.last_failure.at >= status.last_sync.at):
        reason = f"the last sync failed: {status.last_failure.error}"
    else:
        reason = "no sync has finished yet"
    return reply(state, {"status": "unhealthy", "reason": reason}, 503)


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
    return reply(state, {
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
        return reply(state, {"error": "the service is stopping"}, 503)
    if not wait:
        return reply(state, {"id": ident}, 202)
    deadline: asyncio.Timeout | None = None
    try:
        async with asyncio.timeout(state.sync_timeout) as deadline:
            # Shutdown reschedules this deadline to now, so a waiting client gets a 503 at once.
            state.deadlines.add(deadline)
            event = await state.plane.wait_for_sync(ident)
    except TimeoutError:
        if state.stopping:
            return reply(state, {"error": "the service is stopping"}, 503)
        return reply(state, {"error": f"sync {ident} did not end within "
                                       f"{state.sync_timeout:g} s; it goes on"}, 504)
    finally:
        if deadline is not None:
            state.deadlines.discard(deadline)
    outcome = "finished" if isinstance(event, SyncFinished) else "failed"
    return reply(state, {**event.to_dict(), "outcome": outcome})


async def _entities(request: web.Request) -> web.Response:
    state = request.app[STATE]
    topics = state.plane.topics
    result = state.plane.last_result
    wanted = request.query.get("category")
    rows = []
    for e in result.entities if result is not None else ():
        if wanted is not None and e.category.casefold() != wanted.casefold():
            continue
        rows.append({**entity_row(topics, e), "media_content_id": e.media_content_id})
    return reply(state, {"synced": result is not None, "count": len(rows), "entities": rows})


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[STATE].metrics.render()
    return web.Response(body=body, headers={hdrs.CONTENT_TYPE: CONTENT_TYPE})


async def _openapi(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return reply(state, state.spec)


def build_app(plane: ControlPlane, token: str | None, metrics: Metrics, *,
              plex_state: PlexState | None = None,
              sync_timeout: float = SYNC_TIMEOUT) -> web.Application:
    """The aiohttp application; `token` (if not empty) guards state changes and `/events`."""
    secrets = (*plane.settings.secrets, *((token,) if token else ()))
    # Mask the JSON-escaped form too: that is how a secret would appear in a body.
    masks = tuple({m for s in secrets if len(s) >= 3
                   for m in (s, json.dumps(s, ensure_ascii=False)[1:-1])})
    app = web.Application(middlewares=[_guard], client_max_size=MAX_BODY)
    app[STATE] = ApiState(plane, metrics, digest(token) if token else None, plex_state,
                        sync_timeout, openapi_spec(auth=bool(token)), masks)
    app.router.add_get("/health", _health, allow_head=False)
    app.router.add_get("/status", _status, allow_head=False)
    app.router.add_post("/sync", _sync)
    app.router.add_get("/entities", _entities, allow_head=False)
    app.router.add_get("/metrics", _metrics, allow_head=False)
    app.router.add_get("/events", events, allow_head=False)
    app.router.add_get("/openapi.json", _openapi, allow_head=False)
    add_page_routes(app, plane, app[STATE].dumps)
    app.on_shutdown.append(on_shutdown)
    return app
