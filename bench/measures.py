"""The measurements P1-P7. Each returns `Row`s for the final table and prints its details."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mosquitto import Mosquitto
from spotify_to_plex_mqtt.public import (
    MAX_INFLIGHT,
    BrokerError,
    BrokerSession,
    Event,
    LibrarySource,
    PlexLink,
    Retained,
    Service,
    Settings,
    SyncFailed,
    SyncFinished,
    Topics,
    run_sync,
)

from . import REPO
from .common import (
    Cli,
    PlexProcess,
    Watcher,
    broker,
    broker_env,
    broker_stats,
    clean_env,
    context_switches,
    free_port,
    median,
    mib,
    mosquitto_pub,
    mqtt_settings,
    percentile,
    proc_status,
    read_back,
)
from .library import CATEGORIES, BenchLibrary, generate, replace_atomically

TOPICS = Topics()
OURS = (f"{TOPICS.topic_prefix}/#", f"{TOPICS.discovery_prefix}/#")
# What a scan publishes besides our messages: its markers and probes (QoS 0, never retained).
SCAN_MARKERS = (f"{TOPICS.scan_marker_prefix}/", TOPICS.scan_probe_prefix)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the final table; `passed` is None when there is no target."""

    measure: str
    value: str
    target: str = ""
    passed: bool | None = None


@dataclass
class Context:
    """What every measurement may use: options, a scratch directory, the Plex stand-in."""

    root: Path
    size: int
    repeat: int
    plex_latency: float
    quick: bool
    _libraries: dict[int, BenchLibrary] = field(default_factory=dict)
    _plex: dict[int, PlexProcess] = field(default_factory=dict)
    _brokers: int = 0

    def plex_env(self, size: int) -> dict[str, str]:
        """PLEX_URL/PLEX_TOKEN of a Plex stand-in (own process) knowing the library of `size`
        items, and no more: its playlist listing is part of what a sync reads."""
        if size not in self._plex:
            self._plex[size] = PlexProcess(size, self.plex_latency).__enter__()
        return self._plex[size].env

    def close(self) -> None:
        for process in self._plex.values():
            process.__exit__()
        self._plex.clear()

    def library(self, size: int) -> BenchLibrary:
        """The generated library of `size` items, written once and shared (read-only)."""
        if size not in self._libraries:
            self._libraries[size] = generate(self.root / f"library-{size}", size).write()
        return self._libraries[size]

    def scratch_library(self, size: int, name: str) -> BenchLibrary:
        """A library of its own, for measurements that edit or add files."""
        return generate(self.root / name, size).write()

    @contextlib.contextmanager
    def broker(self) -> Iterator[Mosquitto]:
        """A fresh, empty Mosquitto."""
        self._brokers += 1
        with broker(self.root / f"mosquitto-{self._brokers}") as running:
            yield running


def say(text: str) -> None:
    print(text, flush=True)


# -- in-process syncs -------------------------------------------------------------------------


class TimedSession(BrokerSession):
    """`BrokerSession` that times its scan and publishing and counts retained publishes."""

    scan_seconds = 0.0
    publish_seconds = 0.0
    retained_publishes = 0
    scanned = 0

    async def scan(self, *args: Any, **kwargs: Any) -> Retained:
        started = time.perf_counter()
        try:
            read = await super().scan(*args, **kwargs)
            self.scanned = len(read.found)
            return read
        finally:
            self.scan_seconds += time.perf_counter() - started

    async def publish_many(self, messages: Sequence[tuple[str, bytes]],
                           *args: Any, **kwargs: Any) -> int:
        started = time.perf_counter()
        self.retained_publishes += len(messages)
        try:
            return await super().publish_many(messages, *args, **kwargs)
        finally:
            self.publish_seconds += time.perf_counter() - started


@dataclass
class SyncRun:
    """One in-process sync: connect, read the files, reconcile, disconnect."""

    seconds: float
    entities: int
    published: int
    removed: int
    scan_seconds: float
    publish_seconds: float
    retained_publishes: int
    plex_requests: int
    errors: tuple[str, ...]
    scanned: int = 0
    messages: tuple[tuple[str, bytes], ...] = field(repr=False, default=())


def _plex_requests(plex: PlexLink | None) -> int:
    client = plex.client() if plex is not None else None
    return client.requests if client is not None else 0


async def _sync(session: TimedSession, root: Path, plex: PlexLink | None,
                started: float) -> SyncRun:
    session.scan_seconds = session.publish_seconds = 0.0
    session.retained_publishes = session.scanned = 0
    requests = _plex_requests(plex)
    snapshot = LibrarySource(root).read()
    result = await run_sync(session, TOPICS, snapshot, plex)
    return SyncRun(time.perf_counter() - started, len(result.entities), result.published,
                   result.removed, session.scan_seconds, session.publish_seconds,
                   session.retained_publishes, _plex_requests(plex) - requests,
                   result.errors, session.scanned, result.plan.messages)


async def full_sync(lib: BenchLibrary, running: Mosquitto,
                    plex_env: Mapping[str, str] | None = None,
                    protocol: str = "auto") -> SyncRun:
    """Connect, read, sync once against a cold broker, disconnect; timed end to end."""
    plex = PlexLink(lib.root, plex_env) if plex_env is not None else None
    started = time.perf_counter()
    try:
        async with TimedSession(mqtt_settings(running, protocol)) as session:
            run = await _sync(session, lib.root, plex, started)
        run.seconds = time.perf_counter() - started
        return run
    finally:
        if plex is not None:
            await plex.aclose()


def _check_broker(running: Mosquitto, run: SyncRun) -> None:
    """The broker holds, retained, exactly the messages the sync says it published."""
    wanted = dict(run.messages)
    held = read_back(running, list(wanted))
    wrong = [t for t, p in wanted.items() if held.get(t) != p]
    if wrong or len(wanted) != run.published:
        raise AssertionError(f"{len(wrong)} of {len(wanted)} retained messages differ from "
                             f"what the sync published, e.g. {wrong[:3]}")


def _payloads(run: SyncRun) -> list[bytes]:
    return [payload for _, payload in run.messages]


# -- P1 ---------------------------------------------------------------------------------------


def p1_full_sync(ctx: Context) -> tuple[list[Row], float]:
    """Full sync vs mosquitto_pub; returns the rows and the reference's median seconds."""
    lib = ctx.library(ctx.size)
    ours: list[SyncRun] = []
    reference: list[float] = []
    for trial in range(ctx.repeat):
        with ctx.broker() as running:
            run = asyncio.run(full_sync(lib, running))
            if trial == 0:
                _check_broker(running, run)
        ours.append(run)
        with ctx.broker() as running:
            reference.append(mosquitto_pub(running, _payloads(ours[0]), MAX_INFLIGHT,
                                           ctx.root))
        say(f"  P1 trial {trial + 1}: ours {run.seconds:.3f} s (scan {run.scan_seconds:.3f}, "
            f"publish {run.publish_seconds:.3f}), mosquitto_pub {reference[-1]:.3f} s")
    messages = ours[0].published
    seconds = median([r.seconds for r in ours])
    publish = median([r.publish_seconds for r in ours])
    ref = median(reference)
    ratio = (messages / seconds) / (messages / ref)
    say(f"P1 full sync, {ctx.size} items, {messages} messages (QoS 1, retained), median of "
        f"{ctx.repeat}: ours {seconds:.3f} s = {ctx.size / seconds:,.0f} items/s, "
        f"{messages / seconds:,.0f} msg/s (publishing alone {messages / publish:,.0f} msg/s); "
        f"mosquitto_pub -l -M {MAX_INFLIGHT}: {ref:.3f} s = {messages / ref:,.0f} msg/s; "
        f"ratio {ratio:.2f}x")
    # MQTT 5 (what the service speaks to Mosquitto 2) holds the window to the broker's
    # Receive Maximum (Mosquitto: max_inflight_messages, 20); 3.1.1 allows our 64.
    v311 = []
    for _ in range(ctx.repeat):
        with ctx.broker() as running:
            v311.append(asyncio.run(full_sync(lib, running, protocol="3.1.1")).seconds)
    ratio_v311 = ref / median(v311)
    say(f"P1 over MQTT 3.1.1 (MQTT_PROTOCOL=3.1.1): {median(v311):.3f} s, ratio "
        f"{ratio_v311:.2f}x")
    rows = [
        Row(f"P1 full sync {ctx.size} items: time", f"{seconds:.2f} s"),
        Row("P1 items/s", f"{ctx.size / seconds:,.0f}"),
        Row("P1 messages/s (ours)", f"{messages / seconds:,.0f}"),
        Row("P1 messages/s (mosquitto_pub)", f"{messages / ref:,.0f}"),
        Row("P1 ratio ours / mosquitto_pub", f"{ratio:.2f}x", ">= 0.5x", ratio >= 0.5),
        Row("P1 ratio over MQTT 3.1.1 (Receive Maximum not in play)", f"{ratio_v311:.2f}x"),
    ]
    return rows, ref


# -- P2 + P3 ----------------------------------------------------------------------------------


@dataclass
class Resync:
    first: SyncRun
    second: SyncRun | None  # None: the re-sync failed with `error`
    error: str
    seconds: float  # of the re-sync, failed or not
    payload_bytes: float  # publish payload bytes the broker received during the re-sync
    dropped: float  # messages the broker dropped (for our session) during the re-sync


async def _sync_then_resync(lib: BenchLibrary, running: Mosquitto,
                            plex_env: Mapping[str, str]) -> Resync:
    plex = PlexLink(lib.root, plex_env)
    try:
        started = time.perf_counter()
        async with TimedSession(mqtt_settings(running)) as session:
            first = await _sync(session, lib.root, plex, started)
            first.seconds = time.perf_counter() - started
            before = await asyncio.to_thread(broker_stats, running)
            began = time.perf_counter()
            second: SyncRun | None = None
            error = ""
            try:
                second = await _sync(session, lib.root, plex, began)
            except BrokerError as exc:
                error = str(exc)
            seconds = time.perf_counter() - began
            after = await asyncio.to_thread(broker_stats, running)
    finally:
        await plex.aclose()
    payload = after["publish/bytes/received"] - before["publish/bytes/received"]
    dropped = after["publish/messages/dropped"] - before["publish/messages/dropped"]
    return Resync(first, second, error, seconds, payload, dropped)


def p2_p3_plex(ctx: Context, p1_reference: float) -> list[Row]:
    lib = ctx.library(ctx.size)
    runs: list[Resync] = []
    reference: list[float] = []
    for trial in range(ctx.repeat):
        with ctx.broker() as running:
            runs.append(asyncio.run(_sync_then_resync(lib, running, ctx.plex_env(ctx.size))))
        run = runs[-1]
        if run.first.errors or not run.first.messages:
            raise RuntimeError(f"P2 sync failed: {run.first.errors}")
        with ctx.broker() as running:
            reference.append(mosquitto_pub(running, _payloads(runs[0].first), MAX_INFLIGHT,
                                           ctx.root))
        again = f"{run.seconds:.3f} s" + (f" FAILED: {run.error}" if run.second is None else
                                          f", read back {run.second.scanned} retained")
        say(f"  P2 trial {trial + 1}: ours {run.first.seconds:.3f} s ({run.first.plex_requests} "
            f"Plex requests, publish {run.first.publish_seconds:.3f}), mosquitto_pub "
            f"{reference[-1]:.3f} s; re-sync {again}; broker dropped {run.dropped:.0f}")
    first = runs[0].first
    thumbs = sum(1 for _, p in first.messages if b'"thumb":"/' in p)
    seconds = median([r.first.seconds for r in runs])
    ref = median(reference)
    ratio = seconds / ref
    say(f"P2 full sync with Plex (stand-in, {ctx.plex_latency * 1000:g} ms per request), "
        f"{ctx.size} items: {seconds:.3f} s, {first.plex_requests} Plex requests, "
        f"{thumbs} items with thumbs; mosquitto_pub of the same {first.published} "
        f"messages {ref:.3f} s (P1's: {p1_reference:.3f} s); ratio {ratio:.2f}x "
        f"({seconds / p1_reference:.2f}x P1's publish-alone time)")
    rows = [
        Row(f"P2 full sync {ctx.size} items + Plex {ctx.plex_latency * 1000:g} ms: time",
            f"{seconds:.2f} s"),
        Row("P2 ratio to publish-alone (mosquitto_pub)", f"{ratio:.2f}x", "<= 3x", ratio <= 3),
    ]
    return rows + _p3_rows(runs)


def _p3_rows(runs: Sequence[Resync]) -> list[Row]:
    failed = [r for r in runs if r.second is None]
    done = [r.second for r in runs if r.second is not None]
    expected = runs[0].first.published
    sent = max((r.retained_publishes for r in done), default=0)
    payload = max(r.payload_bytes for r in runs)
    requests = max((r.plex_requests for r in done), default=0)
    scanned = min((r.scanned for r in done), default=0)
    dropped = max(r.dropped for r in runs)
    seconds = median([r.seconds for r in runs])
    say(f"P3 unchanged re-sync (same session and Plex cache), {len(runs)} trials: "
        f"{len(failed)} failed{' (' + failed[0].error + ')' if failed else ''}; "
        f"median {seconds:.3f} s; retained publishes sent (worst) {sent}, publish payload "
        f"bytes received by the broker {payload:.0f}; Plex requests {requests}; the scan "
        f"read back {scanned} of {expected} retained messages (worst), the broker dropped "
        f"{dropped:.0f} messages for the session")
    rows = [
        Row("P3 unchanged re-sync: time", f"{seconds:.2f} s" + (" (failed)" if failed else "")),
        Row("P3 MQTT publishes (sent / payload bytes at broker)",
            "re-sync failed" if failed else f"{sent} / {payload:.0f}", "0",
            not failed and sent == 0 and payload == 0),
        Row("P3 Plex requests", str(requests) if done else "re-sync failed", "<= 2",
            bool(done) and requests <= 2),
        Row("P3 retained messages read back by the scan",
            f"{scanned} of {expected}" if done else f"failed ({dropped:.0f} dropped)",
            "all", bool(done) and scanned >= expected),
    ]
    if failed:
        rows.append(Row("P3 re-syncs that failed", f"{len(failed)} of {len(runs)}", "0", False))
    return rows


# -- P4 ---------------------------------------------------------------------------------------

TRIAL_TIMEOUT = 20.0  # seconds after the write before a change counts as not delivered


@dataclass
class _Change:
    latency: float | None  # write -> the sync's last PUBACK; None: not seen in time
    seen: float | None = None  # write -> the new state at a subscriber in this process
    observed: int = 0
    reported: int = 0
    syncs: int = 0
    sync_seconds: float = 0.0
    errors: tuple[str, ...] = ()


@contextlib.contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


class _ServiceProbe:
    """A `Service` run in this process, with its sync events timestamped."""

    def __init__(self, lib: BenchLibrary, running: Mosquitto, debounce: float,
                 min_gap: float = 0.0) -> None:
        settings = Settings(command="run", settings_dir=lib.root, mqtt=mqtt_settings(running),
                            interval=0.0, debounce=debounce, min_gap=min_gap)
        self.service = Service(settings)
        self.finished: list[SyncFinished | SyncFailed] = []
        # When each sync ended: the service emits SyncFinished once the broker acknowledged
        # every publish of the sync, before its own bookkeeping (ledger, memory).
        self.ended_at: list[float] = []
        self._ended = asyncio.Event()
        self.service.bus.listen(self._on_event)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, SyncFinished | SyncFailed):
            self.finished.append(event)
            self.ended_at.append(time.monotonic())
            self._ended.set()

    async def idle(self, after: int, within: float) -> bool:
        """Until a sync after the first `after` ended and nothing is pending or running;
        False if that did not happen `within` seconds."""
        deadline = time.monotonic() + within
        scheduler = self.service.scheduler
        while len(self.finished) <= after or scheduler.running or scheduler.pending:
            if time.monotonic() > deadline:
                return False
            self._ended.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ended.wait(), 0.05)
        return True


async def _change(probe: _ServiceProbe, watcher: Watcher, lib: BenchLibrary,
                  slugs: Mapping[str, str], *, trial: int, debounce: float) -> _Change:
    """Relabel one item (chosen by `trial`) and time it: write -> PUBACK, -> subscriber."""
    index = (trial * 7919 + 13) % lib.size
    item = lib.labelled[index]
    label = CATEGORIES[(CATEGORIES.index(item["label"]) + 1 + trial % 5) % len(CATEGORIES)]
    content, path = await asyncio.to_thread(lib.relabel, index, label)
    wanted = json.dumps({"category": label}, ensure_ascii=False,
                        separators=(",", ":"))[1:-1].encode()
    before = len(probe.finished)
    began = time.monotonic()
    await asyncio.to_thread(replace_atomically, content, path)
    try:
        seen = await asyncio.to_thread(
            watcher.wait_for, TOPICS.item_state(slugs[item["id"]]), began, wanted,
            TRIAL_TIMEOUT + debounce)
    except TimeoutError:
        errors = tuple(e.error for e in probe.finished[before:] if isinstance(e, SyncFailed))
        return _Change(None, errors=errors)
    await probe.idle(before, 60.0)
    await asyncio.sleep(0.3)
    mine = probe.finished[before:]
    done = [e for e in mine if isinstance(e, SyncFinished)]
    acked = next(at for at, e in zip(probe.ended_at[before:], mine, strict=True)
                 if isinstance(e, SyncFinished) and e.published)
    return _Change(
        acked - began, seen=seen.at - began,
        observed=len(watcher.live_between(began, time.monotonic(), SCAN_MARKERS)),
        reported=sum(e.published + e.removed for e in done), syncs=len(mine),
        sync_seconds=sum(e.duration for e in done),
        errors=tuple(e.error for e in mine if isinstance(e, SyncFailed)))


async def _with_service(lib: BenchLibrary, running: Mosquitto, debounce: float,
                        min_gap: float, trials: Callable[..., Awaitable[list[_Change]]]
                        ) -> list[_Change]:
    """Start a service, wait for its first sync, run `trials(probe, watcher, slugs)`."""
    probe = _ServiceProbe(lib, running, debounce, min_gap)
    service = probe.service
    with Watcher(running, OURS) as watcher:
        task = asyncio.create_task(service.run())
        try:
            if not await probe.idle(0, 300.0) or service.last_result is None:
                raise RuntimeError(f"the first sync failed: {probe.finished[:1]}")
            slugs = {e.id: e.slug for e in service.last_result.entities}
            await service.watcher.ready.wait()
            await asyncio.sleep(0.5)
            return await trials(probe, watcher, slugs)
        finally:
            service.stop("benchmark done")
            await asyncio.wait_for(task, 60.0)


async def _service_changes(lib: BenchLibrary, running: Mosquitto, debounce: float,
                           trials: int) -> list[_Change]:
    async def run(probe: _ServiceProbe, watcher: Watcher,
                  slugs: Mapping[str, str]) -> list[_Change]:
        changes: list[_Change] = []
        for trial in range(trials):
            changes.append(await _change(probe, watcher, lib, slugs, trial=trial,
                                         debounce=debounce))
            if changes[-1].latency is None:
                break  # the service is stuck in retries; the rest would wait for them
        return changes

    return await _with_service(lib, running, debounce, 0.0, run)


SECOND_EDIT_AFTER = 3.0
DEFAULT_MIN_GAP = 10.0


async def _second_edits(lib: BenchLibrary, running: Mosquitto, debounce: float,
                        pairs: int) -> list[tuple[_Change, _Change]]:
    """Pairs of edits 3 s apart in a service with the default --min-gap (10 s); between
    pairs, time for the rate limit's bucket to refill (a person's next pair of edits)."""
    found: list[tuple[_Change, _Change]] = []

    async def run(probe: _ServiceProbe, watcher: Watcher,
                  slugs: Mapping[str, str]) -> list[_Change]:
        for pair in range(pairs):
            if pair:
                await asyncio.sleep(2 * DEFAULT_MIN_GAP)
            began = time.monotonic()
            first = await _change(probe, watcher, lib, slugs, trial=2 * pair,
                                  debounce=debounce)
            await asyncio.sleep(max(0.0, began + SECOND_EDIT_AFTER - time.monotonic()))
            second = await _change(probe, watcher, lib, slugs, trial=2 * pair + 1,
                                   debounce=debounce)
            found.append((first, second))
        return []

    await _with_service(lib, running, debounce, DEFAULT_MIN_GAP, run)
    return found


def p4_change_latency(ctx: Context, size: int, debounce: float, trials: int) -> list[Row]:
    lib = ctx.scratch_library(size, f"library-p4-{size}")
    with ctx.broker() as running, _environ(ctx.plex_env(size)):
        changes = asyncio.run(_service_changes(lib, running, debounce, trials))
    delivered = [c for c in changes if c.latency is not None]
    latencies = [c.latency for c in delivered if c.latency is not None]
    lost = len(changes) - len(delivered)
    errors = sorted({e for c in changes for e in c.errors})
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    per_change = [max(c.observed, c.reported) for c in delivered]
    worst = max(per_change, default=0)
    seen = [c.seen for c in delivered if c.seen is not None]
    summary = (f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, min "
               f"{min(latencies) * 1000:.0f} ms; write -> new state at a subscriber in this "
               f"process p50 {percentile(seen, 50) * 1000:.0f} ms, p95 "
               f"{percentile(seen, 95) * 1000:.0f} ms" if latencies else "none delivered")
    say(f"P4 relabel one of {size} items in a running service (debounce {debounce:g} s, "
        f"min_gap 0, Plex stand-in): write -> broker acknowledgement of the sync's last "
        f"publish, {len(changes)} of {trials} trials run, {lost} not delivered within "
        f"{TRIAL_TIMEOUT + debounce:g} s: {summary}; publishes per change mean "
        f"{sum(per_change) / max(1, len(per_change)):.1f}, max {worst} (seen by a subscriber "
        f"/ reported by the service); syncs per change max "
        f"{max((c.syncs for c in delivered), default=0)}; the sync itself took "
        f"{median([c.sync_seconds for c in delivered]) * 1000:.0f} ms (median)"
        + (f"; sync errors: {errors}" if errors else ""))
    say("  P4 trials, write -> PUBACK / the sync's own time, ms: " + ", ".join(
        f"{c.latency * 1000:.0f}/{c.sync_seconds * 1000:.0f}" for c in delivered
        if c.latency is not None))
    rows = [
        Row(f"P4 {size} items: write -> PUBACK p50 / p95 (debounce {debounce:g} s)",
            f"{p50 * 1000:.0f} / {p95 * 1000:.0f} ms" if latencies else "-"),
        Row(f"P4 {size} items: p95 minus debounce ({len(latencies)} trials)",
            f"{(p95 - debounce) * 1000:.0f} ms" if latencies else "-", "<= 200 ms",
            bool(latencies) and p95 - debounce <= 0.2),
        Row(f"P4 {size} items: publishes per change (max)", str(worst) if delivered else "-",
            "<= 4", bool(delivered) and worst <= 4),
    ]
    if lost:
        rows.append(Row(f"P4 {size} items: changes not delivered",
                        f"{lost} of {len(changes)}", "0", False))
    return rows


def p4_second_edit(ctx: Context, size: int, debounce: float, pairs: int) -> list[Row]:
    """P4b: a second edit 3 s after the first, with the default --min-gap of 10 s."""
    lib = ctx.scratch_library(size, f"library-p4b-{size}")
    with ctx.broker() as running, _environ(ctx.plex_env(size)):
        found = asyncio.run(_second_edits(lib, running, debounce, pairs))
    seconds = [b.latency for _, b in found if b.latency is not None]
    firsts = [a.latency for a, _ in found if a.latency is not None]

    def ms(values: list[float]) -> str:
        return ", ".join(f"{v * 1000:.0f}" for v in values)

    say(f"P4 second edit {SECOND_EDIT_AFTER:g} s after the first, {size} items (debounce "
        f"{debounce:g} s, min_gap {DEFAULT_MIN_GAP:g} s, {len(found)} pairs): write -> PUBACK "
        f"of the first edits {ms(firsts)} ms, of the second edits {ms(seconds)} ms")
    worst = max(seconds, default=None)
    return [Row(f"P4 {size} items: 2nd edit {SECOND_EDIT_AFTER:g} s after the 1st, minus "
                f"debounce (min_gap {DEFAULT_MIN_GAP:g} s, worst of {len(found)})",
                f"{(worst - debounce) * 1000:.0f} ms" if worst is not None else "-",
                "<= 200 ms",
                worst is not None and len(seconds) == len(found) and worst - debounce <= 0.2)]


# -- P5 + P6 ----------------------------------------------------------------------------------


def _service_env(ctx: Context, running: Mosquitto, size: int) -> dict[str, str]:
    return clean_env({**broker_env(running), **ctx.plex_env(size),
                      "HTTP_PORT": str(free_port())})


def p5_idle(ctx: Context, size: int, idle_seconds: float) -> list[Row]:
    lib = ctx.library(size)
    with ctx.broker() as running, Cli(["--settings-dir", str(lib.root)],
                                      _service_env(ctx, running, size)) as cli:
        synced = cli.wait_for_line("sync #1", 300.0)
        time.sleep(2.0)
        status = proc_status(cli.pid)
        rss, hwm = mib(status["VmRSS"]), mib(status["VmHWM"])
        before = context_switches(cli.pid)
        cpu_before = _cpu_seconds(cli.pid)
        time.sleep(idle_seconds)
        after = context_switches(cli.pid)
        cpu = _cpu_seconds(cli.pid) - cpu_before
        rss_after = mib(proc_status(cli.pid)["VmRSS"])
    voluntary = (after[0] - before[0]) / idle_seconds
    involuntary = (after[1] - before[1]) / idle_seconds
    say(f"P5 idle service (CLI subprocess, HTTP API on, Plex stand-in), {size} items: "
        f"first sync done {synced - cli.started:.2f} s after spawn; VmRSS {rss:.1f} MiB "
        f"(after {idle_seconds:g} s idle {rss_after:.1f} MiB, peak VmHWM {hwm:.1f} MiB); "
        f"{after[2]} threads; over {idle_seconds:g} s idle: {voluntary:.1f} voluntary + "
        f"{involuntary:.1f} involuntary context switches/s, CPU {cpu * 1000:.0f} ms")
    if size == 0:
        return [Row("P5 idle RSS, empty library (floor)", f"{rss:.1f} MiB")]
    return [
        Row(f"P5 idle RSS, {size} items", f"{rss:.1f} MiB", "<= 45 MiB", rss <= 45),
        Row("P5 peak RSS during first sync (VmHWM)", f"{hwm:.1f} MiB"),
        Row("P5 idle wake-ups (voluntary ctx switches)", f"{voluntary:.1f} /s"),
        Row("P5 idle CPU", f"{cpu / idle_seconds * 1000:.1f} ms/s"),
    ]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def p6_first_publish(ctx: Context, size: int, trials: int) -> list[Row]:
    lib = ctx.library(size)
    latencies: list[float] = []
    for _ in range(trials):
        with ctx.broker() as running, \
                Watcher(running, [f"{TOPICS.topic_prefix}/items/#"]) as watcher, \
                Cli(["--settings-dir", str(lib.root)], _service_env(ctx, running, size)) as cli:
            first = watcher.wait_for(f"{TOPICS.topic_prefix}/items/", 0.0, timeout=60.0)
            latencies.append(first.at - cli.started)
    value = median(latencies)
    say(f"P6 process start -> first item message at a subscriber, {size} items (CLI "
        f"subprocess, HTTP API on, Plex stand-in), {trials} trials: median "
        f"{value * 1000:.0f} ms, all {', '.join(f'{v * 1000:.0f}' for v in latencies)} ms")
    return [Row(f"P6 start -> first publish, {size} items", f"{value * 1000:.0f} ms",
                "<= 1000 ms", value <= 1.0)]


# -- P7 ---------------------------------------------------------------------------------------


def p7_scaling(ctx: Context, sizes: Sequence[int]) -> list[Row]:
    points: list[tuple[int, dict[str, Any]]] = []
    for size in sizes:
        lib = ctx.library(size) if size == ctx.size else ctx.scratch_library(
            size, f"library-p7-{size}")
        with ctx.broker() as running:
            proc = subprocess.run(
                [sys.executable, "-m", "bench.worker", "--settings-dir", str(lib.root)],
                cwd=REPO, env=clean_env({**broker_env(running), **ctx.plex_env(size)}),
                capture_output=True, text=True, timeout=1200, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"worker failed for {size} items: {proc.stderr[-2000:]}")
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        points.append((size, report))
        say(f"  P7 {size:>7} items: {report['seconds']:.2f} s, peak RSS "
            f"{report['peak_rss_mib']:.1f} MiB")
    say("P7 scaling (one sync in a fresh process, Plex stand-in, cold broker):")
    say(f"  {'items':>7} | {'time s':>7} | {'items/s':>8} | {'msg/s':>8} | "
        f"{'peak RSS MiB':>12} | {'after imports':>13} | {'KiB/item':>8}")
    rows: list[Row] = []
    for size, r in points:
        per_item = (r["peak_rss_mib"] - r["baseline_mib"]) * 1024 / size
        say(f"  {size:>7} | {r['seconds']:>7.2f} | {size / r['seconds']:>8,.0f} | "
            f"{r['published'] / r['seconds']:>8,.0f} | {r['peak_rss_mib']:>12.1f} | "
            f"{r['baseline_mib']:>13.1f} | {per_item:>8.2f}")
        rows.append(Row(f"P7 {size} items: time / peak RSS",
                        f"{r['seconds']:.2f} s / {r['peak_rss_mib']:.0f} MiB"))
    if len(points) > 1:
        (small, a), (large, b) = points[0], points[-1]
        growth = (b["seconds"] / large) / (a["seconds"] / small)
        rows.append(Row(f"P7 time per item, {large} vs {small} items", f"{growth:.2f}x"))
    return rows
