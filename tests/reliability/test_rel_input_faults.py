"""9. Bad input that used to remove entities or stop every sync (issue 14, "Bad input").

Against a real Mosquitto and the in-process `Service` (or `one_shot`): `NaN`/`Infinity` in
the saved items and playlists, malformed entries (their items keep their last good version
and their entities until a good version or a real removal), a plex.json nested 100k levels
deep (Plex is enrichment: no sync may fail), a corrupt ledger (reported once, ignored), and
a settings directory given through a symlink that is switched to another directory.
The oracle is the pure code on the last good files (`expected_state` / `desired_state`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from mosquitto import Mosquitto
from reliability_support import (
    GenLibrary,
    Running,
    broker_env,
    broker_state,
    expected_state,
    library_from_files,
    make_library,
    running_service,
    service_settings,
    wait_converged,
)
from spotify_to_plex_mqtt.core.discovery import Topics
from spotify_to_plex_mqtt.core.entities import resolve
from spotify_to_plex_mqtt.core.library import LEDGER, PLAYLISTS, SAVED_ITEMS, Library
from spotify_to_plex_mqtt.core.plan import desired_state
from spotify_to_plex_mqtt.engine.events import FileError, FileRecovered, SyncFailed, SyncFinished
from spotify_to_plex_mqtt.modes.oneshot import one_shot
from spotify_to_plex_mqtt.settings.config import load_settings

pytestmark = pytest.mark.broker

TOPICS = Topics()
DEADLINE = 10.0


def with_problems(library: Library, *problems: str) -> dict[str, bytes]:
    """What the broker must hold: `library` published, the bridge showing `problems`."""
    return desired_state(TOPICS, resolve(library), {}, True, problems=problems)


async def next_sync(run: Running, action: Any) -> None:
    """Do `action()` (an edit) and wait for a sync that started after it to finish."""
    done = len(run.of(SyncFinished))
    action()
    await run.wait_for(lambda: len(run.of(SyncFinished)) > done, "the sync after the edit",
                       DEADLINE)


async def file_error(run: Running, name: str, seen: int = 0) -> str:
    await run.wait_for(lambda: len([e for e in run.of(FileError) if e.file == name]) > seen,
                       f"an error reported for {name}", DEADLINE)
    return str([e for e in run.of(FileError) if e.file == name][-1].error)


def playlist_item(lib: GenLibrary) -> dict[str, Any]:
    return next(i for i in lib.items if i["type"] == "spotify-playlist")


@pytest.mark.parametrize("target", [SAVED_ITEMS, PLAYLISTS])
@pytest.mark.parametrize("constant", ["NaN", "Infinity"])
async def test_nan_or_infinity_is_invalid_json_and_removes_nothing(
        fresh_mosquitto: Mosquitto, tmp_path: Path, target: str, constant: str) -> None:
    broker = fresh_mosquitto
    lib = make_library(tmp_path / "settings", 12, seed=3).write()
    good = library_from_files(lib.root)
    async with running_service(service_settings(broker, lib.root)) as run:
        await wait_converged(broker, TOPICS, lambda: with_problems(good), deadline=DEADLINE)
        item = playlist_item(lib)
        text = json.dumps(lib.content(target), indent=2)
        if target == SAVED_ITEMS:
            old = f'"title": {json.dumps(item["title"])}'
        else:
            key = next(p["plex"] for p in lib.playlists if p["id"] == item["id"])
            old = f'"plex": "{key}"'
        assert old in text
        (lib.root / target).write_text(text.replace(old, old.split(":")[0] + f": {constant}"))
        message = await file_error(run, target)
        assert message.startswith(f"{target}: invalid JSON at line ")
        assert f"{constant} is not a JSON value" in message
        await wait_converged(broker, TOPICS, lambda: with_problems(good, message),
                             deadline=DEADLINE)


async def test_a_malformed_entry_keeps_its_entity_until_fixed_or_really_removed(
        fresh_mosquitto: Mosquitto, tmp_path: Path) -> None:
    broker = fresh_mosquitto
    lib = make_library(tmp_path / "settings", 16, seed=8).write()
    good = library_from_files(lib.root)
    async with running_service(service_settings(broker, lib.root)) as run:
        await wait_converged(broker, TOPICS, lambda: with_problems(good), deadline=DEADLINE)
        first = lib.items[0]
        playlist = playlist_item(lib)
        other = next(i for i in lib.items if i not in (first, playlist))
        # A half-edited entry in each of two files, and a relabel elsewhere that must go
        # through: the file is not rejected whole.
        first["title"] = 42
        other["label"] = "Relabelled"
        entry = next(p for p in lib.playlists if p["id"] == playlist["id"])
        plex_key = entry["plex"]
        entry["plex"] = "not a rating key"
        await next_sync(run, lambda: lib.write(SAVED_ITEMS, PLAYLISTS))
        saved_error = await file_error(run, SAVED_ITEMS)
        playlist_error = await file_error(run, PLAYLISTS)
        assert "entry #1" in saved_error
        assert "keeps its last good version" in saved_error
        assert repr(playlist["id"]) in playlist_error
        kept = dataclasses.replace(good, items=tuple(
            dataclasses.replace(i, label="Relabelled") if i.id == other["id"] else i
            for i in good.items))
        await wait_converged(broker, TOPICS,
                             lambda: with_problems(kept, saved_error, playlist_error),
                             deadline=DEADLINE)
        # A good version wins; then a real removal (gone from a file that parsed) removes.
        first["title"] = "Fixed title"
        entry["plex"] = plex_key
        await next_sync(run, lambda: lib.write(SAVED_ITEMS, PLAYLISTS))
        await wait_converged(broker, TOPICS, lambda: with_problems(
            library_from_files(lib.root)), deadline=DEADLINE)
        assert {e.file for e in run.of(FileRecovered)} >= {SAVED_ITEMS, PLAYLISTS}
        lib.remove(first["id"])
        await next_sync(run, lambda: lib.write(SAVED_ITEMS))
        final = library_from_files(lib.root)
        assert first["id"] not in {i.id for i in final.items}
        await wait_converged(broker, TOPICS, lambda: with_problems(final), deadline=DEADLINE)


async def test_one_shot_with_a_malformed_entry_keeps_the_entity(
        fresh_mosquitto: Mosquitto, tmp_path: Path) -> None:
    broker = fresh_mosquitto
    lib = make_library(tmp_path / "settings", 10, seed=9).write()
    good = library_from_files(lib.root)
    settings = load_settings(["--one-shot", "--settings-dir", str(lib.root)],
                             broker_env(broker))
    assert await one_shot(settings) == 0
    await wait_converged(broker, TOPICS, lambda: with_problems(good), deadline=DEADLINE)
    lib.items[0]["id"] = 1234  # malformed down to its id: no earlier version to compare
    lib.items[1]["title"] = None
    lib.write(SAVED_ITEMS)
    assert await one_shot(settings) == 1  # reported as a problem

    def items(state: dict[str, bytes]) -> dict[str, bytes]:
        return {t: p for t, p in state.items() if t.startswith(TOPICS.item_state(""))}

    assert items(broker_state(broker, TOPICS)) == items(with_problems(good))


@pytest.mark.parametrize("name", ["plex.json", LEDGER])
async def test_a_deep_plex_json_or_ledger_never_fails_a_sync(
        fresh_mosquitto: Mosquitto, tmp_path: Path, name: str,
        caplog: pytest.LogCaptureFixture) -> None:
    broker = fresh_mosquitto
    lib = make_library(tmp_path / "settings", 8, seed=4).write()
    (lib.root / name).write_text("[" * 100_000 + "]" * 100_000)
    caplog.set_level(logging.WARNING)
    async with running_service(service_settings(broker, lib.root)) as run:
        await wait_converged(broker, TOPICS, lambda: expected_state(
            TOPICS, library_from_files(lib.root)), deadline=DEADLINE)
        await next_sync(run, lambda: run.service.request_sync("command"))
        assert run.of(SyncFailed) == []
    assert any(name in r.getMessage() and "nested too deeply" in r.getMessage()
               for r in caplog.records)


async def test_a_corrupt_ledger_is_reported_once_and_ignored(
        fresh_mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broker = fresh_mosquitto
    lib = make_library(tmp_path / "settings", 8, seed=6).write()
    settings = load_settings(["--one-shot", "--settings-dir", str(lib.root)],
                             broker_env(broker))
    assert await one_shot(settings) == 0  # the broker is in step: the service changes nothing
    (lib.root / LEDGER).write_text('[{"id": "x", "entity_id": NaN}]')
    caplog.set_level(logging.WARNING)
    async with running_service(service_settings(broker, lib.root)) as run:
        for _ in range(3):  # syncs that read the broker, and so the ledger
            await next_sync(run, lambda: run.service.request_sync("command"))
        await wait_converged(broker, TOPICS, lambda: expected_state(
            TOPICS, library_from_files(lib.root)), deadline=DEADLINE)
    reports = [r.getMessage() for r in caplog.records if LEDGER in r.getMessage()]
    assert len(reports) == 1, reports
    assert str(lib.root) in reports[0]
    assert "line 1, column 27" in reports[0]
    assert "ignored" in reports[0]
    assert "Delete it" in reports[0]


async def test_a_switched_settings_symlink_is_followed(fresh_mosquitto: Mosquitto,
                                                      tmp_path: Path) -> None:
    broker = fresh_mosquitto
    first = make_library(tmp_path / "release-1", 10, seed=11).write()
    second = make_library(tmp_path / "release-2", 14, seed=12).write()
    link = tmp_path / "current"
    link.symlink_to(first.root)
    async with running_service(service_settings(broker, link)):
        await wait_converged(broker, TOPICS, lambda: expected_state(
            TOPICS, library_from_files(first.root)), deadline=DEADLINE)
        # As a deployment switches releases: a new link renamed over the old one.
        (tmp_path / "current.new").symlink_to(second.root)
        os.replace(tmp_path / "current.new", link)
        _, took = await wait_converged(broker, TOPICS, lambda: expected_state(
            TOPICS, library_from_files(second.root)), deadline=DEADLINE)
        # And later edits in the new target are watched.
        second.add()
        second.write()
        await wait_converged(broker, TOPICS, lambda: expected_state(
            TOPICS, library_from_files(second.root)), deadline=DEADLINE)
    print(f"\n[reliability] switched symlink followed in {took:.2f} s")
