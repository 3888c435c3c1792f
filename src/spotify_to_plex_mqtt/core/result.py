"""Pure: what a sync did, as one value for the summary, the events, the metrics and the API."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from .entities import Entity, Skipped
from .reconcile import Plan


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What a sync did, for the summary, the event bus and the API."""

    entities: tuple[Entity, ...]
    skipped: tuple[Skipped, ...]
    plan: Plan
    published: int
    removed: int
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors

    def without_payloads(self) -> SyncResult:
        """The same result without the plan's messages: what a long-running service keeps,
        since the payloads of a 10k-item sync weigh more than everything else it holds."""
        plan = Plan(unchanged=self.plan.unchanged)
        return replace(self, plan=plan)

    @property
    def categories(self) -> dict[str, int]:
        return dict(Counter(e.category for e in self.entities))

    @property
    def by_type(self) -> dict[str, int]:
        return dict(Counter(e.type for e in self.entities))
