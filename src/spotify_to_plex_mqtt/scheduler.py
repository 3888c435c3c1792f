"""Coalescing, debounced, rate-limited trigger queue for the single-flight sync loop.

Triggers are never dropped: a trigger that arrives while a sync runs schedules exactly one
more sync; a burst coalesces into one; the rate limit and the debounce only defer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Batch:
    """The triggers that one sync answers."""

    reasons: tuple[str, ...]
    requested_at: float
    id: int = 0


@dataclass(slots=True)
class _Pending:
    reasons: list[str] = field(default_factory=list)
    first_at: float = 0.0
    not_before: float = 0.0


class Scheduler:
    """Collects triggers and releases them as batches, one at a time.

    `request()` never blocks and may be called from any task; `next_batch()` waits until a
    batch is due (debounce and minimum gap honoured) and `finished()` marks its sync done.
    """

    def __init__(self, *, debounce: float, min_gap: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.debounce = debounce
        self.min_gap = min_gap
        self._clock = clock
        self._pending: _Pending | None = None
        self._wake = asyncio.Event()
        self._last_end: float | None = None
        self._running: Batch | None = None
        self._closed = False
        self._next_id = 0

    @property
    def running(self) -> Batch | None:
        return self._running

    @property
    def pending(self) -> tuple[str, ...]:
        return tuple(self._pending.reasons) if self._pending else ()

    def request(self, reason: str, *, debounce: bool = False, delay: float = 0.0) -> int:
        """Ask for a sync; returns the id of the batch that will answer it."""
        now = self._clock()
        if self._pending is None:
            self._next_id += 1
            self._pending = _Pending(first_at=now)
        pending = self._pending
        if reason not in pending.reasons:
            pending.reasons.append(reason)
        quiet = self.debounce if debounce else 0.0
        pending.not_before = max(pending.not_before, now + max(quiet, delay))
        self._wake.set()
        return self._next_id

    def due_at(self) -> float | None:
        """When the pending batch may start, or None if nothing is pending."""
        if self._pending is None:
            return None
        gap_end = self._last_end + self.min_gap if self._last_end is not None else 0.0
        return max(self._pending.not_before, gap_end)

    async def next_batch(self) -> Batch | None:
        """Wait for the next due batch; None once `close()` was called."""
        while not self._closed:
            due = self.due_at()
            if due is not None and self._running is None:
                wait = due - self._clock()
                if wait <= 0:
                    return self._release()
            else:
                wait = None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
        return None

    def _release(self) -> Batch:
        pending = self._pending
        assert pending is not None
        self._pending = None
        self._running = Batch(tuple(pending.reasons), pending.first_at, self._next_id)
        return self._running

    def finished(self) -> None:
        """The running batch's sync ended (well or not); the gap is counted from now."""
        self._running = None
        self._last_end = self._clock()
        self._wake.set()

    def close(self) -> None:
        """Stop releasing batches; waiting `next_batch()` calls return None."""
        self._closed = True
        self._wake.set()
