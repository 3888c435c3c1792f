"""The service, against a real Mosquitto: the rate limit never makes a person wait, and what
the inputs left out is logged on the first sync and when it changed, and shown in /status.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from mosquitto import Mosquitto
from spotify_to_plex_mqtt.core.library import SAVED_ITEMS
from spotify_to_plex_mqtt.modes.demo import free_port
from spotify_to_plex_mqtt.settings.config import HttpSettings, Settings
from test_service import (
    DEBOUNCE,
    Harness,
    service_settings,
    state_topic,
    time_until_label,
    write_labels,
    write_library,
)

pytestmark = pytest.mark.broker


@pytest.fixture
async def harnesses() -> AsyncIterator[list[Harness]]:
    started: list[Harness] = []
    yield started
    for harness in started:
        await harness.stop()


def _start(harnesses: list[Harness], settings: Settings) -> Harness:
    harness = Harness(settings)
    harnesses.append(harness)
    return harness


async def test_edits_seconds_apart_are_each_published_after_the_debounce(
        mosquitto: Mosquitto, tmp_path: Path, harnesses: list[Harness]) -> None:
    # The default --min-gap of 10 s: with a fixed gap the second edit waited up to 10 s.
    write_library(tmp_path, {"jazz1": "Jazz", "rock1": "Rock"})
    h = _start(harnesses, service_settings(mosquitto, tmp_path, min_gap=10.0))
    await h.started()
    topic = state_topic(h.settings, "jazz1")
    latencies = []
    for label in ("Blues", "Soul", "Funk"):
        edit = functools.partial(write_labels, tmp_path, {"jazz1": label, "rock1": "Rock"})
        latencies.append(await time_until_label(mosquitto, topic, label, edit))
        await asyncio.sleep(1.0)  # the person's next edit, a second later
    print(f"write -> published, s: {', '.join(f'{x:.3f}' for x in latencies)}")
    assert max(latencies) <= DEBOUNCE + 1.0, latencies


async def test_a_writer_in_a_loop_is_held_to_one_sync_per_min_gap(
        mosquitto: Mosquitto, tmp_path: Path, harnesses: list[Harness]) -> None:
    write_library(tmp_path, {"jazz1": "Jazz"})
    h = _start(harnesses, service_settings(mosquitto, tmp_path, min_gap=2.0, debounce=0.05))
    await h.started()
    since = h.mark()
    started = time.monotonic()
    writes = 0
    while time.monotonic() - started < 8.0:
        write_labels(tmp_path, {"jazz1": f"Jazz {writes}"})
        writes += 1
        await asyncio.sleep(0.2)
    # The last write is published in the end: deferred, never dropped.
    await time_until_label(mosquitto, state_topic(h.settings, "jazz1"), f"Jazz {writes - 1}",
                           lambda: None)
    syncs = h.syncs(since)
    # The start sync took one token of 5; then at most one per 2 s.
    assert len(syncs) <= 4 + (time.monotonic() - started) / 2.0 + 1, (writes, len(syncs))
    assert writes >= 30


def _malformed_library(directory: Path, bad: int) -> None:
    write_library(directory, {"jazz1": "Jazz", "rock1": "Rock"})
    items = json.loads((directory / SAVED_ITEMS).read_text())
    items += [{"type": "spotify-playlist", "id": f"num{n}", "title": f"N{n}", "label": n}
              for n in range(bad)]
    items.append({"type": "spotify-playlist", "id": "nomap", "title": "No map", "label": "X"})
    (directory / SAVED_ITEMS).write_text(json.dumps(items))


async def test_what_the_inputs_left_out_is_logged_when_it_changed_and_shown_in_status(
        mosquitto: Mosquitto, tmp_path: Path, harnesses: list[Harness],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="spotify_to_plex_mqtt")
    _malformed_library(tmp_path, 12)
    port = free_port()
    settings = dataclasses.replace(service_settings(mosquitto, tmp_path),
                                   http=HttpSettings(enabled=True, port=port))
    h = _start(harnesses, settings)
    await h.started()

    def summary() -> list[str]:
        lines = [r.getMessage() for r in caplog.records
                 if "malformed entries" in r.getMessage() or "not published" in r.getMessage()]
        caplog.clear()
        return lines

    assert summary() == [
        f"{SAVED_ITEMS}: 12 malformed entries skipped (first: entry #3 (id 'num0'): "
        "skipped, label not text; entry #4 (id 'num1'): skipped, label not text; "
        "entry #5 (id 'num2'): skipped, label not text), and more",
        "not published: 1: no Plex playlist in playlists.json: 'No map'"]
    async with aiohttp.ClientSession() as client, \
            client.get(f"http://127.0.0.1:{port}/status") as response:
        files = (await response.json())["files"]
    # Malformed entries are an input problem (their items keep their last good version).
    assert files[SAVED_ITEMS]["state"] == "error"
    assert "12 entries cannot be used" in files[SAVED_ITEMS]["last_error"]
    assert files[SAVED_ITEMS]["malformed"] == 12
    assert files[SAVED_ITEMS]["malformed_first"][0] == "entry #3 (id 'num0'): skipped, " \
                                                       "label not text"

    await h.probe()  # nothing changed: nothing said
    assert summary() == []
    since = h.mark()
    _malformed_library(tmp_path, 2)
    await h.sync("file", since)
    assert [line.split(": ")[1] for line in summary()][:1] == ["2 malformed entries skipped (first"]
