"""Exponential backoff, with full jitter (or without: `ceiling`), reset after a stable period."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(slots=True)
class Backoff:
    """`next()` gives a random delay in [0, min(cap, base * 2**attempt)]."""

    base: float = 1.0
    cap: float = 60.0
    attempt: int = 0
    rng: random.Random | None = None

    @property
    def ceiling(self) -> float:
        """The longest delay of this attempt: without jitter, for one retrier alone."""
        return min(self.cap, self.base * float(2 ** min(self.attempt, 30)))

    def next(self) -> float:
        ceiling = self.ceiling
        self.attempt += 1
        return (self.rng or random).uniform(0, ceiling) if ceiling > 0 else 0.0

    def reset(self) -> None:
        self.attempt = 0
