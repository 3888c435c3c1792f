"""Pure tests of `scheduler.Scheduler` on a virtual clock.

Each test runs on an event loop whose clock is virtual: when nothing is ready to run, the
loop jumps straight to its next timer instead of sleeping. The scheduler gets that same
clock (`loop.time`), so "wait 10 s of minimum gap" takes no real time, and the instant a
batch is released can be asserted exactly.
"""

from __future__ import annotations

import asyncio
import itertools
import selectors
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeVar

import pytest

from spotify_to_plex_mqtt.engine.scheduler import Batch, Scheduler

T = TypeVar("T")

REAL_IDLE_LIMIT = 5.0  # real seconds a test may sit with nothing scheduled at all


class _VirtualSelector(selectors.BaseSelector):
    """Delegates to a real selector, but a wait with a timeout advances the virtual clock."""

    def __init__(self) -> None:
        self._real = selectors.DefaultSelector()
        self.now = 0.0

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            # Nothing scheduled: only another thread can wake the loop (the executor).
            ready = self._real.select(REAL_IDLE_LIMIT)
            if not ready:
                raise RuntimeError("deadlock: the test waits for something nothing schedules")
            return ready
        self.now += timeout
        return []

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._virtual = _VirtualSelector()
        super().__init__(self._virtual)

    def time(self) -> float:
        return self._virtual.now


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        runner.run(test())


def now() -> float:
    return asyncio.get_running_loop().time()


async def timed(awaitable: Awaitable[T]) -> tuple[T, float]:
    """The result and the virtual time at which it came."""
    result = await awaitable
    return result, now()


async def nothing_within(sched: Scheduler, seconds: float) -> None:
    """No batch is released within `seconds` of virtual time."""
    task = asyncio.create_task(sched.next_batch())
    done, _ = await asyncio.wait({task}, timeout=seconds)
    task.cancel()
    assert not done, f"unexpected batch {task.result()!r}"


def test_a_burst_of_50_requests_is_one_batch() -> None:
    async def scenario() -> None:
        sched = scheduler(debounce=2.0)
        start = now()
        ids = []
        for _ in range(50):
            ids.append(sched.request("file", debounce=True))
            await asyncio.sleep(0.01)
        last = start + 0.49
        batch, released = await timed(sched.next_batch())
        assert batch is not None
        assert batch.reasons == ("file",)
        assert set(ids) == {batch.id}
        assert batch.requested_at == pytest.approx(start)
        assert released == pytest.approx(last + 2.0)
        assert sched.running is batch
        sched.finished()
        assert sched.pending == ()
        assert sched.due_at() is None
        await nothing_within(sched, 3600)

    run(scenario)


def test_a_request_while_a_batch_runs_gives_exactly_one_more_batch() -> None:
    async def scenario() -> None:
        sched = scheduler(debounce=0.5)
        first_id = sched.request("start")
        first = await sched.next_batch()
        assert first is not None
        assert first.id == first_id
        assert first.reasons == ("start",)

        waiter = asyncio.create_task(sched.next_batch())
        ids = {sched.request("file", debounce=True) for _ in range(5)}
        ids.add(sched.request("command"))
        ids.add(sched.request("file", debounce=True))
        assert ids == {first_id + 1}
        assert sched.pending == ("file", "command")
        # However long the running sync takes, nothing is released while it runs.
        done, _ = await asyncio.wait({waiter}, timeout=600)
        assert not done
        assert sched.running is first

        sched.finished()
        second, released = await timed(waiter)
        assert second is not None
        assert second.id == first_id + 1
        assert second.reasons == ("file", "command")
        # The debounce had long passed: released as soon as the first one finished.
        assert released == pytest.approx(600, abs=0.01)
        sched.finished()
        await nothing_within(sched, 3600)

    run(scenario)


def scheduler(*, debounce: float = 0.0, min_gap: float = 0.0, burst: int = 5) -> Scheduler:
    return Scheduler(debounce=debounce, min_gap=min_gap, burst=burst, clock=now)


async def sync_once(sched: Scheduler, duration: float = 0.1) -> tuple[Batch, float]:
    """Wait for the next batch, "run" it for `duration`; the batch and its release time."""
    batch, released = await timed(sched.next_batch())
    assert batch is not None
    await asyncio.sleep(duration)
    sched.finished()
    return batch, released


def test_a_few_edits_seconds_apart_are_each_released_after_the_debounce_only() -> None:
    async def scenario() -> None:
        sched = scheduler(debounce=0.5, min_gap=10.0)
        for edit in range(5):
            edited = now()
            sched.request("file", debounce=True)
            _, released = await sync_once(sched)
            assert released == pytest.approx(edited + 0.5), f"edit {edit + 1} waited"
            await asyncio.sleep(3.0 - 0.6)  # the next edit 3 s after this one

    run(scenario)


def test_a_writer_in_a_loop_is_held_to_one_sync_per_min_gap_after_the_burst() -> None:
    async def scenario() -> None:
        sched = scheduler(min_gap=10.0)
        start = now()

        async def writer() -> None:
            while now() < start + 300:
                sched.request("file")
                await asyncio.sleep(0.05)

        task = asyncio.create_task(writer())
        releases = []
        while now() < start + 300:
            _, released = await sync_once(sched, 0.2)
            releases.append(released - start)
        task.cancel()
        # The burst goes at once (each right after the previous sync), then one per 10 s.
        assert releases[4] < 1.5
        gaps = [b - a for a, b in itertools.pairwise(releases[5:])]
        assert all(g == pytest.approx(10.0, abs=0.01) for g in gaps), gaps
        assert len(releases) <= 5 + 300 // 10 + 1

    run(scenario)


def test_the_bucket_refills_while_idle_but_never_above_the_burst() -> None:
    async def scenario() -> None:
        sched = scheduler(min_gap=10.0, burst=3)
        for _ in range(3):
            sched.request("command")
            await sync_once(sched, 0.0)
        sched.request("command")
        assert sched.due_at() == pytest.approx(now() + 10.0)
        await sync_once(sched, 0.0)
        await asyncio.sleep(3600)  # a long quiet time refills at most `burst` tokens
        releases = []
        for _ in range(4):
            sched.request("command")
            releases.append((await sync_once(sched, 0.0))[1])
        assert releases[2] == pytest.approx(releases[0])
        assert releases[3] == pytest.approx(releases[0] + 10.0)

    run(scenario)


def test_min_gap_defers_but_never_discards() -> None:
    async def scenario() -> None:
        sched = scheduler(min_gap=10.0, burst=1)
        sched.request("start")
        first = await sched.next_batch()
        assert first is not None
        started = now()
        await asyncio.sleep(1.0)  # the sync takes 1 s
        sched.finished()

        reasons = ["timer", "command", "homeassistant", "file", "timer"]
        ids = set()
        for reason in reasons:
            await asyncio.sleep(0.5)
            ids.add(sched.request(reason, debounce=reason == "file"))
        assert sched.due_at() == pytest.approx(started + 10.0)
        second, released = await timed(sched.next_batch())
        assert second is not None
        assert released == pytest.approx(started + 10.0)
        assert second.reasons == ("timer", "command", "homeassistant", "file")
        assert ids == {second.id}
        sched.finished()

        # A request long after the gap is released at once.
        await asyncio.sleep(30)
        sched.request("command")
        third, released = await timed(sched.next_batch())
        assert third is not None
        assert third.reasons == ("command",)
        assert released == pytest.approx(now())

    run(scenario)


def test_nothing_starts_while_a_slow_sync_runs_and_its_time_counts_towards_the_gap() -> None:
    async def scenario() -> None:
        sched = scheduler(min_gap=5.0, burst=1)
        sched.request("start")
        first = await sched.next_batch()
        assert first is not None
        sched.request("file")
        await nothing_within(sched, 20)  # a slow sync
        sched.finished()
        ended = now()
        second, released = await timed(sched.next_batch())
        assert second is not None
        assert second.reasons == ("file",)
        assert released == pytest.approx(ended)

    run(scenario)


def test_min_gap_0_is_no_limit() -> None:
    async def scenario() -> None:
        sched = scheduler(min_gap=0.0, burst=1)
        start = now()
        for _ in range(50):
            sched.request("command")
            _, released = await sync_once(sched, 0.0)
            assert released == pytest.approx(start)

    run(scenario)


def test_debounce_pushes_the_due_time_from_the_last_file_trigger() -> None:
    async def scenario() -> None:
        sched = scheduler(debounce=2.0)
        start = now()
        sched.request("file", debounce=True)
        assert sched.due_at() == pytest.approx(start + 2.0)
        await asyncio.sleep(1.5)
        sched.request("file", debounce=True)
        assert sched.due_at() == pytest.approx(start + 3.5)
        await asyncio.sleep(1.5)
        sched.request("file", debounce=True)
        assert sched.due_at() == pytest.approx(start + 5.0)
        batch, released = await timed(sched.next_batch())
        assert batch is not None
        assert released == pytest.approx(start + 5.0)
        assert batch.requested_at == pytest.approx(start)

    run(scenario)


def test_a_waiting_next_batch_sees_the_pushed_due_time() -> None:
    async def scenario() -> None:
        sched = scheduler(debounce=2.0)
        start = now()
        waiter = asyncio.create_task(sched.next_batch())
        await asyncio.sleep(0)
        sched.request("file", debounce=True)
        await asyncio.sleep(1.9)
        assert not waiter.done()
        sched.request("file", debounce=True)  # while next_batch waits for the first due time
        batch, released = await timed(waiter)
        assert batch is not None
        assert released == pytest.approx(start + 3.9)

    run(scenario)


def test_requests_without_debounce_are_due_at_once() -> None:
    async def scenario() -> None:
        sched = scheduler(debounce=2.0)
        start = now()
        sched.request("command")
        assert sched.due_at() == pytest.approx(start)
        batch, released = await timed(sched.next_batch())
        assert batch is not None
        assert batch.reasons == ("command",)
        assert released == pytest.approx(start)

    run(scenario)


def test_delay() -> None:
    async def scenario() -> None:
        sched = scheduler(debounce=2.0)
        start = now()
        sched.request("homeassistant", delay=3.0)
        assert sched.due_at() == pytest.approx(start + 3.0)
        # A request that would be due earlier does not pull the delayed one forward ...
        sched.request("command")
        assert sched.due_at() == pytest.approx(start + 3.0)
        # ... and a later one pushes it.
        await asyncio.sleep(2.0)
        sched.request("file", debounce=True)
        assert sched.due_at() == pytest.approx(start + 4.0)
        await asyncio.sleep(0.5)
        sched.request("retry", delay=5.0)
        assert sched.due_at() == pytest.approx(start + 7.5)
        batch, released = await timed(sched.next_batch())
        assert batch is not None
        assert batch.reasons == ("homeassistant", "command", "file", "retry")
        assert released == pytest.approx(start + 7.5)

    run(scenario)


def test_close_releases_waiters() -> None:
    async def scenario() -> None:
        sched = scheduler(debounce=2.0, min_gap=10.0)
        idle = asyncio.create_task(sched.next_batch())
        await asyncio.sleep(1.0)
        assert not idle.done()
        sched.close()
        assert await idle is None

        sched = scheduler(debounce=60.0)
        start = now()
        sched.request("file", debounce=True)
        pending = asyncio.create_task(sched.next_batch())
        await asyncio.sleep(1.0)
        assert not pending.done()
        sched.close()
        result, released = await timed(pending)
        assert result is None
        assert released == pytest.approx(start + 1.0)  # at once, not after the 60 s debounce
        assert await sched.next_batch() is None

    run(scenario)


def test_close_while_a_batch_runs_releases_the_waiter() -> None:
    async def scenario() -> None:
        sched = scheduler()
        sched.request("start")
        running = await sched.next_batch()
        assert running is not None
        sched.request("file")
        waiter = asyncio.create_task(sched.next_batch())
        await asyncio.sleep(5.0)
        assert not waiter.done()
        sched.close()
        assert await waiter is None

    run(scenario)


def test_batch_ids_returned_by_request_match_the_released_batch() -> None:
    async def scenario() -> None:
        sched = scheduler(debounce=1.0)
        seen: list[Batch] = []
        for round_ in range(5):
            ids = {sched.request("file", debounce=True), sched.request(f"r{round_}")}
            assert len(ids) == 1
            batch = await sched.next_batch()
            assert batch is not None
            assert batch.id == ids.pop()
            # A request while this batch runs belongs to the next batch.
            assert sched.request("during") == batch.id + 1
            seen.append(batch)
            sched.finished()
            during = await sched.next_batch()
            assert during is not None
            assert during.id == batch.id + 1
            assert during.reasons == ("during",)
            sched.finished()
            seen.append(during)
        assert [b.id for b in seen] == list(range(1, 11))

    run(scenario)
