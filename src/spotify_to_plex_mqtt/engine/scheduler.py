"""Coalescing, debounced, rate-limited trigger queue for the single-flight sync loop.

Triggers are never dropped: a trigger that arrives while a sync runs schedules exactly one
more sync; a burst coalesces into one; the rate limit and the debounce only defer.

The rate limit is a token bucket: `burst` syncs may run back to back, then one per
`min_gap` seconds. A person making a few edits seconds apart never waits for the gap; a
writer rewriting a file in a loop is still held to one sync per `min_gap`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Syncs the bucket holds: a few edits in a row are each published at once.
BURST = 5
_RESOLUTION = 1e-6


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
    batch is due (debounce and rate limit honoured) and `finished()` marks its sync done.
    """

    def __init__(self, *, debounce: float, min_gap: float, burst: int = BURST,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.debounce = debounce
        self.min_gap = min_gap
        self.burst = max(1, burst)
        self._clock = clock
        self._pending: _Pending | None = None
        self._wake = asyncio.Event()
        # The bucket: `_tokens` syncs were allowed at `_counted_at` (None: full).
        self._tokens = float(self.burst)
        self._counted_at: float | None = None
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
        return max(self._pending.not_before, self._token_at())

    def _tokens_at(self, now: float) -> float:
        if self._counted_at is None or self.min_gap <= 0:
            return float(self.burst)
        return min(float(self.burst), self._tokens + (now - self._counted_at) / self.min_gap)

    def _token_at(self) -> float:
        """When the bucket holds a whole token again (it refills one per `min_gap`)."""
        if self._counted_at is None or self.min_gap <= 0 or self._tokens >= 1.0:
            return 0.0
        return self._counted_at + (1.0 - self._tokens) * self.min_gap

    async def next_batch(self) -> Batch | None:
        """Wait for the next due batch; None once `close()` was called."""
        while not self._closed:
            due = self.due_at()
            if due is not None and self._running is None:
                wait = due - self._clock()
                # Not `<= 0`: a timer fires when the clock is within its resolution of the
                # due time, so a rest of a few ulps would otherwise be waited for forever.
                if wait <= _RESOLUTION:
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
        now = self._clock()
        self._tokens = max(0.0, self._tokens_at(now) - 1.0)
        self._counted_at = now
        self._running = Batch(tuple(pending.reasons), pending.first_at, self._next_id)
        return self._running

    def finished(self) -> None:
        """The running batch's sync ended (well or not): the next may start."""
        self._running = None
        self._wake.set()

    def close(self) -> None:
        """Stop releasing batches; waiting `next_batch()` calls return None."""
        self._closed = True
        self._wake.set()
