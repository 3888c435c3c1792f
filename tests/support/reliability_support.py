"""Shared pieces of the reliability suite: sizes, a library generator, the oracle, a service
runner, and process gauges.

The oracle for every broker test is the pure code: the desired retained state is computed
from the files on disk with the app's own loaders (`library.load_file`), `entities.resolve`
and `sync.desired_state`, and compared with the broker's retained messages under our topics
(read with an independent paho client, `mosquitto.retained`, filtered by `Topics.is_ours`).
The bridge state carries a timestamp: it is compared field by field without `last_sync`.

Sizes: `RELIABILITY_SCALE` (a float, default 1 = the CI size) multiplies every count;
`scaled(n)` never returns less than 1, so nothing is ever skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import random
import string
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mosquitto import Mosquitto, retained
from spotify_to_plex_mqtt.core.backoff import Backoff
from spotify_to_plex_mqtt.core.discovery import Topics
from spotify_to_plex_mqtt.core.entities import Resolution, resolve
from spotify_to_plex_mqtt.core.library import PLAYLISTS, SAVED_ITEMS, TRACK_LINKS, Library
from spotify_to_plex_mqtt.core.plan import desired_state
from spotify_to_plex_mqtt.core.problems import FileProblem
from spotify_to_plex_mqtt.engine.events import Event
from spotify_to_plex_mqtt.inputs.library_files import load_file
from spotify_to_plex_mqtt.service import service as service_module
from spotify_to_plex_mqtt.service import sync_loop as sync_loop_module
from spotify_to_plex_mqtt.service.service import Service
from spotify_to_plex_mqtt.settings.config import Settings, load_settings

SCALE = float(os.environ.get("RELIABILITY_SCALE", "1") or "1")
INPUTS = (SAVED_ITEMS, PLAYLISTS, TRACK_LINKS)
CATEGORIES = ("Jazz", "Rock", "Kids", "Focus", "Kinder 🎈", "Café del Mar", "Sleep")


def scaled(count: int | float) -> int:
    """`count` times RELIABILITY_SCALE, at least 1."""
    return max(1, round(count * SCALE))


# -- a generated Spotify-to-Plex library -------------------------------------------------------

_BASE62 = string.ascii_letters + string.digits


@dataclass
class GenLibrary:
    """The three input files as data, in the shapes Spotify-to-Plex writes.

    Every item gets a Plex mapping, so every labelled item is published; `keys` (rating key ->
    kind) lists the Plex keys in use, for a Plex stand-in.
    """

    root: Path
    rng: random.Random
    items: list[dict[str, Any]] = field(default_factory=list)
    playlists: list[dict[str, Any]] = field(default_factory=list)
    track_links: list[dict[str, Any]] = field(default_factory=list)
    next_key: int = 100000

    def _key(self) -> str:
        self.next_key += 1
        return str(self.next_key)

    def _spotify_id(self) -> str:
        return "".join(self.rng.choice(_BASE62) for _ in range(22))

    def add(self, kind: str | None = None, label: str | None = None) -> str:
        """Add one labelled item of `kind` (random if None); return its id."""
        kind = kind or self.rng.choice(("spotify-playlist", "spotify-album", "plex-media"))
        label = label if label is not None else self.rng.choice(CATEGORIES)
        title = f"{kind.split('-')[1].title()} {len(self.items)} {self.rng.choice('ÄéxZ🎷')}"
        key = self._key()
        if kind == "spotify-playlist":
            ident = self._spotify_id()
            uri = f"spotify:playlist:{ident}"
            self.playlists.append({"type": "spotify-playlist", "id": ident, "plex": key})
        elif kind == "spotify-album":
            ident = self._spotify_id()
            uri = f"spotify:album:{ident}"
            self.track_links.append({"spotify_id": ident,
                                     "plex_id": [f"/library/metadata/{key}"]})
        else:
            ident = f"plex://album/{self.rng.getrandbits(64):016x}"
            uri = f"/library/metadata/{key}/children"
        self.items.append({"type": kind, "uri": uri, "id": ident, "title": title,
                           "image": "", "label": label})
        return ident

    def add_many(self, count: int) -> list[str]:
        return [self.add() for _ in range(count)]

    def remove(self, ident: str) -> None:
        self.items = [i for i in self.items if i["id"] != ident]

    def relabel(self, ident: str, label: str) -> None:
        for item in self.items:
            if item["id"] == ident:
                item["label"] = label

    def mutate(self, changes: int = 3) -> None:
        """A user's edit: relabel, unlabel, add or delete a few items."""
        for _ in range(changes):
            roll = self.rng.random()
            if roll < 0.35 and self.items:
                self.rng.choice(self.items)["label"] = self.rng.choice(CATEGORIES)
            elif roll < 0.5 and self.items:
                self.rng.choice(self.items)["label"] = ""
            elif roll < 0.75 or not self.items:
                self.add()
            else:
                self.items.remove(self.rng.choice(self.items))

    def churn(self, changes: int = 2) -> None:
        """Edits that keep the size: replace `changes` items (mappings too), relabel one."""
        for _ in range(min(changes, len(self.items))):
            gone = self.items.pop(self.rng.randrange(len(self.items)))["id"]
            self.playlists = [p for p in self.playlists if p["id"] != gone]
            self.track_links = [t for t in self.track_links if t["spotify_id"] != gone]
            self.add()
        if self.items:
            self.rng.choice(self.items)["label"] = self.rng.choice((*CATEGORIES, ""))

    def content(self, name: str) -> Any:
        if name == SAVED_ITEMS:
            return self.items
        if name == PLAYLISTS:
            return {"data": self.playlists}
        return self.track_links

    def write(self, *names: str, atomic: bool = False) -> GenLibrary:
        self.root.mkdir(parents=True, exist_ok=True)
        for name in names or INPUTS:
            write_json(self.root / name, self.content(name), atomic=atomic)
        return self

    @property
    def keys(self) -> dict[str, str]:
        """Plex rating key -> "playlist" or "album", for every mapped item."""
        out = {p["plex"]: "playlist" for p in self.playlists}
        for link in self.track_links:
            out[link["plex_id"][0].rsplit("/", 1)[1]] = "album"
        for item in self.items:
            if item["type"] == "plex-media":
                out[item["uri"].split("/")[3]] = "album"
        return out


def make_library(root: Path, count: int, seed: int = 1) -> GenLibrary:
    lib = GenLibrary(root, random.Random(seed))
    lib.add_many(count)
    return lib


def write_json(path: Path, data: Any, *, atomic: bool = False) -> None:
    """Write as Spotify-to-Plex does: in place (a reader may see it half-written) or by
    atomic rename."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if atomic:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    else:
        path.write_text(text, encoding="utf-8")


# -- the oracle -----------------------------------------------------------------------------------


def library_from_files(root: Path) -> Library:
    """The library the files on disk hold, read with the app's own loaders (all must be good)."""
    return Library(items=load_file(root, "saved_items").value,
                   playlists=load_file(root, "playlists").value,
                   track_links=load_file(root, "track_links").value)


def expected_state(topics: Topics, library: Library, *, bridge: bool = True,
                   thumbs: Mapping[str, str] | None = None,
                   server_id: str = "") -> dict[str, bytes]:
    """The retained messages the broker must end up with (status excluded)."""
    resolution: Resolution = resolve(library)
    if thumbs is not None or server_id:
        resolution = resolution.with_artwork(thumbs or {}, server_id)
    return desired_state(topics, resolution, {}, True, bridge=bridge)


def broker_state(broker: Mosquitto, topics: Topics, timeout: float = 10.0) -> dict[str, bytes]:
    """The broker's retained messages that are ours (what the service scans)."""
    got = retained(broker, [f"{topics.discovery_prefix}/+/+/config",
                            f"{topics.topic_prefix}/#"], timeout=timeout)
    return {t: p for t, p in got.items() if topics.is_ours(t, p)}


def _bridge_fields(payload: bytes | None) -> Any:
    if payload is None:
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        return payload
    if isinstance(data, dict):
        data.pop("last_sync", None)
    return data


def state_diff(actual: Mapping[str, bytes], expected: Mapping[str, bytes],
               topics: Topics) -> dict[str, Any]:
    """Empty when equal: missing entities, ghosts, stale payloads (bridge without last_sync)."""
    diff: dict[str, Any] = {}
    missing = sorted(set(expected) - set(actual))
    ghosts = sorted(set(actual) - set(expected))
    stale = sorted(t for t in set(actual) & set(expected) if t != topics.bridge_state
                   and actual[t] != expected[t])
    if missing:
        diff["missing"] = missing[:10] + ([f"... {len(missing)} in all"] if len(missing) > 10
                                          else [])
    if ghosts:
        diff["ghosts"] = ghosts[:10] + ([f"... {len(ghosts)} in all"] if len(ghosts) > 10
                                        else [])
    if stale:
        diff["stale"] = {t: (actual[t][:200], expected[t][:200]) for t in stale[:5]}
        diff["stale_count"] = len(stale)
    if topics.bridge_state in expected:
        got = _bridge_fields(actual.get(topics.bridge_state))
        want = _bridge_fields(expected[topics.bridge_state])
        if got != want:
            diff["bridge"] = (got, want)
    return diff


async def wait_converged(broker: Mosquitto, topics: Topics,
                         expected: Callable[[], Mapping[str, bytes]], *,
                         deadline: float = 30.0, status: bytes | None = b"online"
                         ) -> tuple[dict[str, bytes], float]:
    """Poll the broker until its retained state (ours) equals `expected()` and the status
    topic holds `status`; return the state and the seconds it took. Fails at the deadline
    with the last difference."""
    started = time.monotonic()
    diff: dict[str, Any] = {"never read": True}
    while True:
        try:
            every = await asyncio.to_thread(retained, broker, (
                f"{topics.discovery_prefix}/+/+/config", f"{topics.topic_prefix}/#"))
        except (OSError, TimeoutError, ConnectionError) as exc:
            diff = {"broker unreachable": str(exc)}
        else:
            actual = {t: p for t, p in every.items() if topics.is_ours(t, p)}
            diff = state_diff(actual, expected(), topics)
            if status is not None and every.get(topics.status) != status:
                diff["status"] = every.get(topics.status)
            if not diff:
                return actual, time.monotonic() - started
        if time.monotonic() - started > deadline:
            pytest.fail(f"the broker did not converge within {deadline} s: {diff}")
        await asyncio.sleep(0.1)


# -- the service, in process -----------------------------------------------------------------


def broker_env(broker: Mosquitto, **extra: str) -> dict[str, str]:
    return {"MQTT_BROKER_URL": broker.url, "MQTT_USERNAME": broker.username,
            "MQTT_PASSWORD": broker.password, **extra}


def service_settings(broker: Mosquitto, settings_dir: Path, *args: str,
                     env: Mapping[str, str] | None = None, **replace: Any) -> Settings:
    """Service-mode settings with quick timings: debounce and gap 50 ms, no timer, no HTTP
    (unless `args` asks for it). `replace` overrides fields of the result."""
    argv = ["--settings-dir", str(settings_dir), "--debounce", "0.05", "--min-gap", "0.05",
            "--retry-delay", "0.1", "--interval", "0", *args]
    if not any(a.startswith("--http") for a in args):
        argv.append("--no-http")
    settings = load_settings(argv, {**broker_env(broker), **(env or {})})
    return dataclasses.replace(settings, **replace) if replace else settings


def fast_reconnect(monkeypatch: pytest.MonkeyPatch, factor: float = 20.0) -> None:
    """Scale the service's backoffs down by `factor` and count a connection as stable after
    one second (instead of 60): many broker deaths a minute would otherwise push the
    reconnect delay to its 60 s cap. Correctness does not depend on these durations."""

    def scaled_backoff(base: float = 1.0, cap: float = 60.0, attempt: int = 0) -> Backoff:
        return Backoff(base=base / factor, cap=cap / factor, attempt=attempt)

    monkeypatch.setattr(service_module, "Backoff", scaled_backoff)
    monkeypatch.setattr(sync_loop_module, "Backoff", scaled_backoff)
    monkeypatch.setattr(service_module, "STABLE_AFTER", 1.0)


@dataclass
class Running:
    """A `Service` running in the test's loop, with every event it emitted."""

    service: Service
    task: asyncio.Task[int]
    events: list[Event]

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, predicate: Callable[[], bool], what: str,
                       deadline: float = 20.0) -> float:
        """Poll `predicate` every 20 ms; fail at the deadline (and if the service ended)."""
        started = time.monotonic()
        while not predicate():
            if self.task.done():
                pytest.fail(f"the service ended ({self.task!r}) while waiting for {what}")
            if time.monotonic() - started > deadline:
                pytest.fail(f"{what} did not happen within {deadline} s")
            await asyncio.sleep(0.02)
        return time.monotonic() - started


@contextlib.asynccontextmanager
async def running_service(settings: Settings, *, ready: bool = True,
                          stop_within: float = 15.0) -> AsyncIterator[Running]:
    """Run a `Service`; stop it at the end and check that it exited 0 within `stop_within`.

    With `ready`, wait for the first finished sync before yielding."""
    events: list[Event] = []
    service = Service(settings)
    service.bus.listen(events.append)
    task = asyncio.create_task(service.run(), name="service-under-test")
    run = Running(service, task, events)
    try:
        if ready:
            await run.wait_for(lambda: service.status.last_sync is not None, "the first sync")
        yield run
    finally:
        if not task.done():
            service.stop("test over")
        async with asyncio.timeout(stop_within):
            code = await task
    assert code == 0, f"the service exited with {code}"


# -- process gauges -----------------------------------------------------------------------------


def rss_bytes() -> int:
    """Resident set size of this process, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def must_fail(call: Callable[[], object]) -> FileProblem:
    """The `FileProblem` raised by `call` (fails the test if it returned)."""
    try:
        call()
    except FileProblem as problem:
        return problem
    pytest.fail("no FileProblem raised")


def contains_any(haystack: str | bytes, needles: Sequence[str]) -> list[str]:
    """Which of `needles` (and their JSON-escaped forms) occur in `haystack`."""
    text = haystack.decode("utf-8", "replace") if isinstance(haystack, bytes) else haystack
    found = []
    for needle in needles:
        forms = {needle, json.dumps(needle)[1:-1]}
        if any(form in text for form in forms):
            found.append(needle)
    return found


# -- the command line, as a subprocess ----------------------------------------------------------

_OURS = ("MQTT_", "PLEX_", "SETTINGS_DIR", "STORAGE_DIR", "ONE_SHOT", "DEBUG", "SYNC_INTERVAL",
         "DISABLE_", "WATCH_POLL", "RETRY_", "DEBOUNCE", "MIN_SYNC_GAP", "API_", "HTTP_")


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment without the service's variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    env.update(extra or {})
    return env


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "spotify_to_plex_mqtt", *args]
