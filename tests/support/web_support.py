"""The web page's test rig: Debian's Chromium through Playwright, the real service in
process (HTTP API on a free port, real Mosquitto, the Plex stand-in), and screenshots.

Chromium that cannot start is a test failure, never a skip: run `.ci/browser.sh`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import struct
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, ViewportSize, async_playwright, expect

from library_files import SettingsDir, varied_library
from mosquitto import Mosquitto
from plex_standin import PlexStandIn
from spotify_to_plex_mqtt.engine.events import (
    Event,
    EventBus,
    FileError,
    FileRecovered,
    SyncFinished,
)
from spotify_to_plex_mqtt.service.service import Service
from spotify_to_plex_mqtt.settings.config import load_settings

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
PLEX_TOKEN = "PLEX-t0ken-that-must-never-reach-the-browser"  # noqa: S105 - made up
DEBOUNCE = 0.3
NOT_FOUND_THUMB = "/library/metadata/51003/thumb/1700000003"  # Plex has no image for it
NARROW: ViewportSize = {"width": 390, "height": 844}
WIDE: ViewportSize = {"width": 1280, "height": 860}


def chromium_path() -> str:
    """Debian's Chromium (or `CHROMIUM`); a failure with the fix when there is none."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Chromium is not installed; the browser tests need it: run "
                    "`bash .ci/browser.sh` (apt-get install chromium) or set CHROMIUM")
    return path


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        try:
            browser = await playwright.chromium.launch(
                executable_path=chromium_path(), args=CHROMIUM_FLAGS, timeout=30_000)
        except Exception as exc:  # Playwright's errors are untyped: any failure fails here
            pytest.fail(f"Chromium could not start: {exc}")
        try:
            yield browser
        finally:
            await browser.close()


def png(rgb: tuple[int, int, int], size: int = 8) -> bytes:
    """A small solid-colour PNG (a stand-in for album art)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    row = b"\x00" + bytes(rgb) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(row * size)) + chunk(b"IEND", b""))


def write_plex_json(directory: Path, plex: PlexStandIn) -> None:
    (directory / "plex.json").write_text(json.dumps(
        {"uri": plex.url, "token": plex.token, "id": plex.machine_id}))


@dataclass
class Running:
    """A `Service` running as a task in this loop, and what its bus emitted."""

    service: Service
    task: asyncio.Task[int]
    events: list[Event] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        assert self.service.http is not None
        return self.service.http.url

    @property
    def port(self) -> int:
        assert self.service.http is not None
        assert self.service.http.bound_port is not None
        return self.service.http.bound_port

    def record(self, event: Event) -> None:
        self.events.append(event)
        self.changed.set()

    async def until(self, predicate: Callable[[], Any], what: str, within: float = 15.0) -> Any:
        """Wait (re-checking on every event) until `predicate()` is truthy."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not (found := predicate()):
            if self.task.done():
                raise AssertionError(f"the service ended while waiting for {what}: {self.task}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no {what} within {within} s; events: {self.events}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return found

    def syncs(self) -> list[SyncFinished]:
        return [e for e in self.events if isinstance(e, SyncFinished)]

    def file_events(self) -> list[FileError | FileRecovered]:
        return [e for e in self.events if isinstance(e, FileError | FileRecovered)]

    async def stop(self) -> None:
        if not self.task.done():
            self.service.stop("test")
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.task, 15.0)


async def start_service(broker: Mosquitto, directory: Path, *, token: str | None = None,
                        port: int = 0, prefixes: tuple[str, str] | None = None,
                        debounce: float = 0.3) -> Running:
    """The service on 127.0.0.1:`port` (0: a free one), after its first sync and with the
    settings directory watched; `prefixes` (topic, discovery) are unique ones if not given."""
    tag = f"web-{uuid.uuid4().hex[:8]}"
    topic, discovery = prefixes or (tag, f"ha-{tag}")
    env = {"MQTT_BROKER_URL": broker.url, "MQTT_USERNAME": broker.username,
           "MQTT_PASSWORD": broker.password, "MQTT_TOPIC_PREFIX": topic,
           "MQTT_DISCOVERY_PREFIX": discovery}
    if token:
        env["API_TOKEN"] = token
    settings = load_settings(["--settings-dir", str(directory), "--debounce", str(debounce),
                              "--min-gap", "0", "--interval", "0", "--http-host", "127.0.0.1",
                              "--http-port", str(port)], env)
    bus = EventBus()
    service = Service(settings, bus)
    running = Running(service, asyncio.create_task(service.run()))
    bus.listen(running.record)
    await running.until(running.syncs, "first sync", 60.0)
    await asyncio.wait_for(service.watcher.ready.wait(), 10.0)
    return running


@dataclass
class Seen:
    """Everything a page loaded: URLs, response headers and bodies."""

    urls: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("response", lambda response: self.tasks.append(
            asyncio.ensure_future(self._read(response))))
        page.on("websocket", lambda ws: ws.on(
            "framereceived", lambda frame: self.texts.append(str(frame))))

    async def _read(self, response: Any) -> None:
        self.statuses[response.url] = response.status
        headers = await response.all_headers()
        self.texts.append(json.dumps(headers))
        with contextlib.suppress(Exception):  # a redirect or a dropped body has none
            self.texts.append((await response.body()).decode("latin-1"))

    async def settle(self) -> None:
        await asyncio.gather(*self.tasks)


class Screenshots:
    """Screenshots of the views, narrow and wide, light and dark, into `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.taken: list[Path] = []

    async def take(self, page: Page, view: str) -> None:
        await page.evaluate("(view) => { location.hash = view; }", view)
        await page.locator(f"#view-{view}").wait_for(state="visible")
        for scheme in ("light", "dark"):
            await page.emulate_media(color_scheme=scheme)
            for name, size in (("wide", WIDE), ("narrow", NARROW)):
                await page.set_viewport_size(size)
                path = self.directory / f"{view}-{name}-{scheme}.png"
                await page.screenshot(path=str(path), full_page=True)
                self.taken.append(path)
        await page.set_viewport_size(WIDE)
        await page.emulate_media(color_scheme="light")


def library_dir(root: Path, plex: PlexStandIn) -> SettingsDir:
    """The varied library, one malformed saved item, and Plex configured by plex.json."""
    lib = varied_library(root)
    lib.items.append({"type": "spotify-playlist", "title": "No id here", "label": "Jazz"})
    lib.write()
    write_plex_json(root, plex)
    return lib


async def open_page(browser: Browser, url: str, view: str = "library") -> Page:
    """A new browser context (light, wide) on the page, once it follows the events."""
    context = await browser.new_context(viewport=WIDE, color_scheme="light")
    page = await context.new_page()
    await page.goto(f"{url}/#{view}")
    await expect(page.locator("#live")).to_have_text("Live", timeout=10_000)
    return page
