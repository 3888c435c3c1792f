"""Fixtures of the browser tests (loaded with `pytest_plugins`): Chromium, the Plex
stand-in with artwork, the service on the varied library, the screenshot directory."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from library_files import SettingsDir
from mosquitto import Mosquitto, clear_retained
from plex_standin import PlexStandIn
from web_support import (
    DEBOUNCE,
    NOT_FOUND_THUMB,
    PLEX_TOKEN,
    Running,
    Screenshots,
    chromium,
    library_dir,
    png,
    start_service,
)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest.fixture
async def plex() -> AsyncIterator[PlexStandIn]:
    standin = PlexStandIn(token=PLEX_TOKEN, machine_id="standin-machine-0001")
    standin.albums = {"51001": "/library/metadata/51001/thumb/1700000001",
                      "51002": "/library/metadata/51002/thumb/1700000002",
                      "51003": NOT_FOUND_THUMB,
                      "48213": "/library/metadata/48213/thumb/1700000004"}
    standin.playlists = {key: f"/playlists/{key}/composite/1700000100"
                         for key in ("90001", "90002", "90004", "90005", "90010", "90011",
                                     "90211")}
    colours = [(200, 60, 60), (60, 160, 90), (60, 90, 200), (220, 170, 40), (150, 70, 190)]
    for n, thumb in enumerate([*standin.albums.values(), *standin.playlists.values()]):
        if thumb != NOT_FOUND_THUMB:
            standin.images[thumb] = png(colours[n % len(colours)])
    async with standin:
        yield standin


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Screenshots:
    target = os.environ.get("WEB_SCREENSHOTS")
    directory = Path(target) if target else tmp_path_factory.mktemp("web-screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return Screenshots(directory)


@pytest.fixture
async def service(clean_broker: Mosquitto, tmp_path: Path, plex: PlexStandIn,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Running, SettingsDir]]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    lib = library_dir(tmp_path / "settings", plex)
    # The default prefixes (the broker is cleared first): entity ids as users see them.
    running = await start_service(clean_broker, lib.root, debounce=DEBOUNCE,
                                  prefixes=("spotify-to-plex", "homeassistant"))
    try:
        yield running, lib
    finally:
        await running.stop()
        # Leave the shared broker as found: tests after this one may use these prefixes.
        await asyncio.to_thread(clear_retained, clean_broker)
