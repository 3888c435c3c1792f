"""`/events`: the health events as a WebSocket stream, one queue and task per client, and
the goodbye (what is still queued, then close) when the server stops."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSCloseCode, web

from .auth import EVENTS_PROTOCOL
from .state import MAX_BODY, STATE, ApiState, StreamClient

MAX_WEBSOCKETS = 100


async def _pump(state: ApiState, client: StreamClient) -> None:
    # One task per client: a slow client only stalls its own queue, which drops its oldest.
    while True:
        event = await client.queue.get()
        try:
            await client.ws.send_str(state.dumps(event.to_dict()))
        except (ConnectionError, RuntimeError):
            return


async def events(request: web.Request) -> web.StreamResponse:
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
    client = StreamClient(ws, state.plane.bus.queue())
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


async def _goodbye(state: ApiState, client: StreamClient) -> None:
    """Send what is still queued (the `stopped` event, typically), then close."""
    await _cancel(client.pump)
    with contextlib.suppress(ConnectionError, RuntimeError, TimeoutError):
        async with asyncio.timeout(1.0):
            while not client.queue.empty():
                await client.ws.send_str(state.dumps(client.queue.get_nowait().to_dict()))
    await client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping")


async def on_shutdown(app: web.Application) -> None:
    state = app[STATE]
    state.stopping = True
    loop = asyncio.get_running_loop()
    for deadline in list(state.deadlines):
        deadline.reschedule(loop.time())
    await asyncio.gather(*(_goodbye(state, c) for c in list(state.clients)),
                         return_exceptions=True)
