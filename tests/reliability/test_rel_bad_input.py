"""3. The input files are replaced 1000+ times with bad versions while the service runs.

Every valid version of each file holds a fixed core of items (plus a random subset of
extra items); the bad versions are random truncations, invalid JSON, non-UTF-8 bytes, wrong
top-level types, empty files, deletions, and a directory in the file's place (the stand-in
for "permission denied", which cannot be shown as root). Writes are in place (a reader can
see them half-written) or by atomic rename, mostly quick, sometimes held long enough for
the service to read them, and sometimes the same bad content is written again.

Checked while it runs, by sampling the broker: every core entity is there with its exact
payloads (the last good version of each file always holds it), and no item appears that no
valid version holds. Checked from the events: every `FileError` names its file, and an
unchanged error is never reported twice in a row; at each hold the service's reported error
is the loader's message for the file as it is. At the end a valid version of every file is
written: it wins (broker == desired state), the errors are cleared, the service still runs.

`test_a_file_whose_every_entry_is_unusable_removes_nothing` probes one kind of bad version
that the loaders accept: a list in which no entry is usable.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mosquitto import Mosquitto
from reliability_support import (
    INPUTS,
    GenLibrary,
    broker_state,
    expected_state,
    library_from_files,
    make_library,
    must_fail,
    running_service,
    scaled,
    service_settings,
    wait_converged,
)
from spotify_to_plex_mqtt.core.discovery import Topics
from spotify_to_plex_mqtt.core.library import PLAYLISTS, SAVED_ITEMS, TRACK_LINKS, FileKind
from spotify_to_plex_mqtt.core.problems import FileProblem
from spotify_to_plex_mqtt.engine.events import FileError, FileRecovered, SyncStarted
from spotify_to_plex_mqtt.inputs.library_files import load_file

pytestmark = pytest.mark.broker

WRITES = scaled(1000)
CORE = 30
EXTRAS = 30
KINDS: dict[str, FileKind] = {SAVED_ITEMS: "saved_items", PLAYLISTS: "playlists",
                              TRACK_LINKS: "track_links"}
FAULTS = ("truncated", "invalid_json", "not_utf8", "wrong_type", "empty", "blank", "deleted",
          "directory", "valid", "valid")


def _valid_text(lib: GenLibrary, name: str, extras: set[str], rng: random.Random) -> str:
    """A valid version: the core plus a random subset of the extras (by item id)."""
    data: Any = lib.content(name)
    if name == SAVED_ITEMS:
        data = [i for i in data if i["id"] not in extras or rng.random() < 0.5]
    elif name == PLAYLISTS:
        data = {"data": [p for p in data["data"] if p["id"] not in extras or rng.random() < 0.5]}
    else:
        data = [t for t in data if t["spotify_id"] not in extras or rng.random() < 0.5]
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _bad_bytes(kind: str, valid: str, rng: random.Random) -> bytes | None:
    """The content of a bad version of `kind`, or None for "no file"."""
    raw = valid.encode()
    if kind == "truncated":
        cut = rng.randrange(1, len(raw) - 2)  # never the whole file, never only its newline
        return raw[:cut]
    if kind == "invalid_json":
        at = rng.randrange(1, len(raw) - 2)
        return raw[:at] + rng.choice([b"}", b",,", b"\x00", b"[", b"'"]) + raw[at:]
    if kind == "not_utf8":
        return b'[{"id": "\xff\xfe"}]'
    if kind == "wrong_type":
        return rng.choice([b"{}", b'"spotify"', b"42", b"null", b"true", b"3.5",
                           b'{"items": []}'])
    if kind == "empty":
        return b""
    if kind == "blank":
        return b" \n\t \n"
    return None


def _place(path: Path, content: bytes | None, kind: str, rng: random.Random) -> None:
    if path.is_dir():
        path.rmdir()
    if kind == "deleted":
        path.unlink(missing_ok=True)
        return
    if kind == "directory":
        path.unlink(missing_ok=True)
        path.mkdir()
        return
    assert content is not None
    if rng.random() < 0.5:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)
    else:
        path.write_bytes(content)  # in place: truncate, then write


def _unusable(scratch: Path, name: str, content: bytes | None) -> bool:
    """Whether the loader refuses `content` as a whole (a FileProblem), as a bad version must."""
    if content is None:
        return True
    (scratch / name).write_bytes(content)
    try:
        load_file(scratch, KINDS[name])
    except FileProblem:
        return True
    return False


def repeated_errors(events: list[Any]) -> list[tuple[str, str]]:
    """(file, error) reported twice in a row without a recovery in between."""
    last: dict[str, str | None] = {}
    repeats = []
    for event in events:
        if isinstance(event, FileError):
            if last.get(event.file) == event.error:
                repeats.append((event.file, event.error))
            last[event.file] = event.error
        elif isinstance(event, FileRecovered):
            last[event.file] = None
    return repeats


async def test_files_replaced_by_bad_versions_a_thousand_times(  # noqa: PLR0915 - a scenario
        fresh_mosquitto: Mosquitto, tmp_path: Path) -> None:
    broker = fresh_mosquitto
    rng = random.Random(31)
    topics = Topics()
    lib = make_library(tmp_path / "settings", CORE + EXTRAS, seed=32).write()
    extras = {item["id"] for item in lib.items[CORE:]}
    everything = expected_state(topics, library_from_files(lib.root))
    core_lib = make_library(tmp_path / "core-only", 0)
    core_lib.items, core_lib.playlists, core_lib.track_links = (
        lib.items[:CORE], lib.playlists, lib.track_links)
    core_lib.write()
    core = {t: p for t, p in expected_state(topics, library_from_files(core_lib.root)).items()
            if t.startswith(topics.item_state("")) or "_item_" in t}
    known_items = {t for t in everything if t.startswith(topics.item_state(""))}
    assert len(core) == 2 * CORE

    settings = service_settings(broker, lib.root)
    written: Counter[str] = Counter()
    violations: list[str] = []
    samples = 0
    holds = 0
    same_again = 0

    async with running_service(settings) as run:
        await wait_converged(broker, topics, lambda: everything)
        stop_sampling = asyncio.Event()

        async def sample() -> None:
            nonlocal samples
            while not stop_sampling.is_set():
                state = await asyncio.to_thread(broker_state, broker, topics)
                samples += 1
                lost = sorted(t for t, p in core.items() if state.get(t) != p)
                if lost:
                    violations.append(f"sample {samples}: core lost or changed: {lost[:5]}")
                ghosts = sorted(t for t in state
                                if t.startswith(topics.item_state("")) and t not in known_items)
                if ghosts:
                    violations.append(f"sample {samples}: unknown items {ghosts[:5]}")
                if run.task.done():
                    violations.append(f"sample {samples}: the service ended")
                    return
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        for index in range(WRITES):
            name = rng.choice(INPUTS)
            path = lib.root / name
            kind = rng.choice(FAULTS)
            valid = _valid_text(lib, name, extras, rng)
            content = valid.encode() if kind == "valid" else _bad_bytes(kind, valid, rng)
            while kind != "valid" and not _unusable(scratch, name, content):
                content = _bad_bytes(kind, valid, rng)  # e.g. a "}" that landed in a string
            _place(path, content, kind, rng)
            written[kind] += 1
            if kind != "valid" and rng.random() < 0.02:
                # Hold the bad version until a sync has read it, then write it once more.
                holds += 1
                expected_error = str(must_fail(lambda n=name: load_file(lib.root, KINDS[n])))  # type: ignore[misc]
                before = len(run.of(SyncStarted))
                await run.wait_for(lambda b=before: len(run.of(SyncStarted)) > b,  # type: ignore[misc]
                                   "a sync after the held write")
                assert run.service.status.file_errors.get(name) == expected_error
                if kind not in ("deleted", "directory"):
                    errors_before = len(run.of(FileError))
                    _place(path, content, kind, rng)
                    same_again += 1
                    before = len(run.of(SyncStarted))
                    await run.wait_for(lambda b=before: len(run.of(SyncStarted)) > b,  # type: ignore[misc]
                                       "a sync after the same bad version again")
                    assert len(run.of(FileError)) == errors_before, "unchanged error repeated"
            elif index % 50 == 49:
                await asyncio.sleep(rng.uniform(0.1, 0.3))  # let a sync run on the mess
            else:
                await asyncio.sleep(rng.uniform(0.0, 0.01))

        # The final valid versions win.
        final_started = time.monotonic()
        lib.write()
        await wait_converged(broker, topics, lambda: expected_state(
            topics, library_from_files(lib.root)), deadline=30.0)
        await run.wait_for(lambda: not run.service.status.file_errors, "the errors to clear")
        converged_in = time.monotonic() - final_started
        stop_sampling.set()
        await sampler
        assert not run.task.done()
        file_errors = run.of(FileError)
        syncs = len(run.of(SyncStarted))

    assert violations == []
    bad_names = [(e.file, e.error) for e in file_errors
                 if e.file not in INPUTS or not e.error.startswith(f"{e.file}: ")]
    assert bad_names == []
    assert repeated_errors(run.events) == []
    assert {e.file for e in file_errors} == set(INPUTS)
    print(f"\n[reliability] bad input: {sum(written.values())} writes "
          f"({', '.join(f'{k} {n}' for k, n in sorted(written.items()))}), {holds} held, "
          f"{same_again} written twice, {syncs} syncs, {len(file_errors)} FileError events "
          f"(0 repeated), {samples} broker samples, core entities lost 0, final version "
          f"converged in {converged_in:.2f} s")


@pytest.mark.parametrize("name", [SAVED_ITEMS, PLAYLISTS, TRACK_LINKS])
async def test_a_file_whose_every_entry_is_unusable_removes_nothing(
        name: str, make_mosquitto: Callable[..., Mosquitto], tmp_path: Path) -> None:
    """A non-empty list in which no entry is usable (every `id` a number, say) is not a
    version of the file that Spotify-to-Plex writes: treating it as a good version with no
    items removes every entity it feeds (invariant 2). DEFECT while this fails: see
    docs/reliability.md."""
    broker = make_mosquitto()
    topics = Topics()
    lib = make_library(tmp_path / "settings", 20, seed=33).write()
    before = expected_state(topics, library_from_files(lib.root))
    settings = service_settings(broker, lib.root)
    garbage: dict[str, Any] = {
        SAVED_ITEMS: [{**item, "id": 1000 + n} for n, item in enumerate(lib.items)],
        PLAYLISTS: {"data": [{**p, "id": None} for p in lib.playlists]},
        TRACK_LINKS: [{**t, "spotify_id": 7} for t in lib.track_links],
    }
    async with running_service(settings) as run:
        await wait_converged(broker, topics, lambda: before)
        syncs = len(run.of(SyncStarted))
        (lib.root / name).write_text(json.dumps(garbage[name], indent=2))
        await run.wait_for(lambda: len(run.of(SyncStarted)) > syncs, "a sync of the bad file")
        await run.wait_for(lambda: run.service.status.syncing is False, "its end")
        state = await asyncio.to_thread(broker_state, broker, topics)
    lost = sorted(t for t in before if t.startswith(topics.item_state("")) and t not in state)
    assert lost == [], f"{len(lost)} entities removed by an unusable {name}"
