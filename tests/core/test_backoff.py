"""Pure tests of `core.backoff.Backoff`: the ceiling doubles up to the cap, the jitter stays
under it, and a reset starts again."""

from __future__ import annotations

import random

from spotify_to_plex_mqtt.core.backoff import Backoff


def test_the_ceiling_doubles_up_to_the_cap() -> None:
    ceilings = [Backoff(base=0.5, cap=30.0, attempt=n).ceiling for n in range(9)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_each_delay_is_at_most_its_attempts_ceiling_and_a_reset_starts_again() -> None:
    backoff = Backoff(base=1.0, cap=60.0, rng=random.Random(7))
    for attempt in range(12):
        ceiling = backoff.ceiling
        assert ceiling == min(60.0, 2.0 ** attempt)
        assert 0.0 <= backoff.next() <= ceiling
    backoff.reset()
    assert backoff.ceiling == 1.0
