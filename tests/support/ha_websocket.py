"""Home Assistant's websocket API for the tests, and polling with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any, Self

import aiohttp


class WebSocket:
    """Home Assistant's websocket API: commands, and the events of subscriptions."""

    def __init__(self, url: str, token: str,
                 error: type[Exception] = RuntimeError) -> None:
        self._url, self._token, self._error = url, token, error
        self._next_id = 0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: dict[int, list[dict[str, Any]]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(self._url, max_msg_size=0)
        await self._ws.receive_json()  # auth_required
        await self._ws.send_json({"type": "auth", "access_token": self._token})
        answer = await self._ws.receive_json()
        if answer.get("type") != "auth_ok":
            raise self._error(f"websocket authentication failed: {answer}")
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            data = json.loads(message.data)
            for item in data if isinstance(data, list) else [data]:
                if item.get("type") == "event":
                    self.events.setdefault(item["id"], []).append(item["event"])
                elif (waiter := self._waiting.pop(item.get("id"), None)) is not None:
                    waiter.set_result(item)

    async def send(self, kind: str, within: float = 30.0, **data: Any) -> dict[str, Any]:
        """Send a command; its answer (`result`, or `pong` for a ping)."""
        assert self._ws is not None
        self._next_id += 1
        ident = self._next_id
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = waiter
        await self._ws.send_json({"id": ident, "type": kind, **data})
        answer = await asyncio.wait_for(waiter, within)
        if answer.get("type") == "result" and not answer.get("success"):
            raise self._error(f"{kind} failed: {answer.get('error')}")
        return answer

    async def command(self, kind: str, **data: Any) -> Any:
        return (await self.send(kind, **data)).get("result")

    async def subscribe(self, event_type: str) -> list[dict[str, Any]]:
        """The list that collects the events of `event_type` from now on."""
        answer = await self.send("subscribe_events", event_type=event_type)
        return self.events.setdefault(answer["id"], [])

    async def flush(self) -> None:
        """Return once every event fired before this call has been received: the server
        answers a ping after the events it sent before."""
        await self.send("ping")


async def until(check: Callable[[], Any], within: float, what: str,
                interval: float = 0.2) -> Any:
    """Poll an async or plain `check` until it returns something truthy; fail after
    `within` seconds, naming `what`."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(interval)
