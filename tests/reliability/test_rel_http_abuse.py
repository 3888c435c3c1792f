"""8. HTTP API abuse against a running service: it stays responsive and keeps syncing.

A `Service` runs with its HTTP API on a real port (`--http-port 0`, `API_TOKEN` set) while,
all at once: slow clients send their request headers one byte at a time (a slowloris),
50 WebSocket clients hold `/events` open, oversized bodies are posted (413), and requests
with missing or wrong tokens pour in (401). Meanwhile `GET /health` is timed every 50 ms
and must always answer within a bound, and a change to the library must still sync: the
broker reaches the desired state and every WebSocket client receives that sync's events.
"""

# ruff: noqa: S105 - made-up tokens

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mosquitto import Mosquitto
from reliability_support import (
    expected_state,
    library_from_files,
    make_library,
    running_service,
    scaled,
    service_settings,
    wait_converged,
)
from spotify_to_plex_mqtt.core.discovery import Topics
from spotify_to_plex_mqtt.engine.events import SyncFinished

pytestmark = pytest.mark.broker

TOKEN = "Api-Abuse-9c41d2"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WEBSOCKETS = scaled(50)
SLOW_CLIENTS = scaled(20)
OVERSIZED = scaled(30)
WRONG_TOKENS = scaled(300)
HEALTH_BOUND = 1.0  # seconds


async def slow_client(port: int, gap: float) -> bytes:
    """A request whose bytes trickle in; returns the status line it finally gets."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"y" * 40 + \
            b"\r\nConnection: close\r\n\r\n"
        for byte in request:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(gap)
        async with asyncio.timeout(10):
            return await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()


async def websocket_client(session: aiohttp.ClientSession, path: str, connected: asyncio.Event,
                           count: list[int], stop: asyncio.Event) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with session.ws_connect(path, headers=AUTH) as ws:
        count[0] += 1
        if count[0] == WEBSOCKETS:
            connected.set()
        while not stop.is_set():
            try:
                async with asyncio.timeout(0.2):
                    message = await ws.receive()
            except TimeoutError:
                continue
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            events.append(json.loads(message.data))
    return events


async def test_http_abuse_leaves_the_service_responsive(  # noqa: PLR0915 - a scenario
        fresh_mosquitto: Mosquitto, tmp_path: Path) -> None:
    broker = fresh_mosquitto
    topics = Topics()
    lib = make_library(tmp_path / "settings", 50, seed=81).write()
    settings = service_settings(broker, lib.root, "--http-port", "0",
                                env={"API_TOKEN": TOKEN})
    assert settings.http.enabled
    async with running_service(settings) as run:
        assert run.service.http is not None
        port = run.service.http.bound_port
        assert port
        base = f"http://127.0.0.1:{port}"
        await wait_converged(broker, topics, lambda: expected_state(
            topics, library_from_files(lib.root)))
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(base, connector=connector) as session:
            stop = asyncio.Event()
            connected = asyncio.Event()
            count = [0]
            sockets = [asyncio.create_task(websocket_client(session, "/events", connected,
                                                            count, stop))
                       for _ in range(WEBSOCKETS)]
            async with asyncio.timeout(20):
                await connected.wait()
            slow = [asyncio.create_task(slow_client(port, 0.03)) for _ in range(SLOW_CLIENTS)]

            latencies: list[float] = []

            async def probe_health() -> None:
                while not stop.is_set():
                    started = time.monotonic()
                    async with asyncio.timeout(5), aiohttp.ClientSession(base) as fresh, \
                            fresh.get("/health") as response:
                        assert response.status in (200, 503)
                        await response.read()
                    latencies.append(time.monotonic() - started)
                    await asyncio.sleep(0.05)

            async def oversized() -> list[int]:
                statuses = []
                for n in range(OVERSIZED):
                    headers = AUTH if n % 2 == 0 else {}
                    async with session.post("/sync", data=b"z" * 1_000_000,
                                            headers=headers) as response:
                        statuses.append(response.status)
                return statuses

            async def wrong_tokens() -> list[int]:
                async def one(n: int) -> int:
                    headers = {"Authorization": f"Bearer {TOKEN}{n}"} if n % 3 else {}
                    path = "/events" if n % 5 == 0 else "/sync"
                    method = "GET" if path == "/events" else "POST"
                    async with session.request(method, path, headers=headers) as response:
                        await response.read()
                        return response.status
                statuses = []
                for start in range(0, WRONG_TOKENS, 50):
                    statuses += await asyncio.gather(*(one(n) for n in range(
                        start, min(start + 50, WRONG_TOKENS))))
                return statuses

            prober = asyncio.create_task(probe_health())
            abuse = asyncio.gather(oversized(), wrong_tokens())
            # Meanwhile, the library changes: the sync loop must not notice the abuse.
            finished = len(run.of(SyncFinished))
            lib.mutate(5)
            lib.write()
            _, synced_in = await wait_converged(broker, topics, lambda: expected_state(
                topics, library_from_files(lib.root)), deadline=20.0)
            sync_ids = {e.id for e in run.of(SyncFinished)[finished:]}
            assert sync_ids
            big, wrong = await abuse
            slow_status = await asyncio.gather(*slow)
            stop.set()
            await prober
            received = await asyncio.gather(*sockets)
    assert set(big) == {413, 401}
    assert big.count(413) == (OVERSIZED + 1) // 2
    assert set(wrong) == {401}
    assert all(line.startswith(b"HTTP/1.1 200") for line in slow_status), slow_status
    missed = [n for n, events in enumerate(received)
              if not any(e["event"] == "sync_finished" and e["id"] in sync_ids for e in events)]
    assert missed == [], f"{len(missed)} WebSocket clients missed the sync"
    assert latencies
    assert max(latencies) < HEALTH_BOUND
    print(f"\n[reliability] HTTP abuse: {WEBSOCKETS} WebSockets (all got the sync), "
          f"{SLOW_CLIENTS} slowloris clients (all answered), {len(big)} oversized bodies "
          f"({big.count(413)} x 413, {big.count(401)} x 401 without token), {len(wrong)} "
          f"wrong or missing tokens (all 401); /health {len(latencies)} probes, max "
          f"{max(latencies) * 1000:.0f} ms; the file change synced in {synced_in:.2f} s")
