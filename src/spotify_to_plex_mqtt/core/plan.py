"""Pure: the plan of a sync — the desired state rendered from the library, reconciled with
what the broker holds. `engine.sync` does the I/O around it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import overload

from .bridge import bridge_configs, bridge_state
from .discovery import Topics, render
from .entities import Resolution, resolve
from .reconcile import Payload, Plan, reconcile
from .snapshot import Snapshot


def _kept_categories(topics: Topics, resolution: Resolution,
                     actual: Mapping[str, Payload]) -> Counter[str]:
    """Categories of item states that stay on the broker although not rendered this time."""
    counts: Counter[str] = Counter()
    prefix = topics.item_state("")
    rendered = {topics.item_state(e.slug) for e in resolution.entities}
    for topic, payload in actual.items():
        if topic.startswith(prefix) and topic not in rendered and isinstance(payload, bytes):
            try:
                category = json.loads(payload).get("category")
            except (ValueError, AttributeError):
                continue
            if isinstance(category, str) and category:
                counts[category] += 1
    return counts


@overload
def desired_state(topics: Topics, resolution: Resolution, actual: Mapping[str, Payload],
                  allow_removal: bool, *, problems: tuple[str, ...] = (),
                  bridge: bool = True, rendered: None = None) -> dict[str, bytes]: ...


@overload
def desired_state(topics: Topics, resolution: Resolution, actual: Mapping[str, Payload],
                  allow_removal: bool, *, problems: tuple[str, ...] = (),
                  bridge: bool = True,
                  rendered: Mapping[str, Payload]) -> dict[str, Payload]: ...


def desired_state(topics: Topics, resolution: Resolution, actual: Mapping[str, Payload],
                  allow_removal: bool, *, problems: tuple[str, ...] = (),
                  bridge: bool = True, rendered: Mapping[str, Payload] | None = None
                  ) -> dict[str, bytes] | dict[str, Payload]:
    """Render the entities; when removal is withheld, count kept items in the categories.

    With `bridge`, add the bridge entities; their timestamp moves only if the rest changed.
    `rendered` is `render()` of the entities already done (with removal allowed), reused.
    """
    # Withheld removals stay sensors in HA: count them in before rendering, once.
    kept = Counter() if allow_removal else _kept_categories(topics, resolution, actual)
    # A copy of `rendered`: the caller's dict stays as it was (the bridge is added here).
    desired: dict[str, Payload] = dict(rendered) if allow_removal and rendered is not None \
        else dict(render(topics, resolution.entities, kept))
    if bridge:
        desired.update(bridge_configs(topics))
        changed = any(actual.get(t) != p for t, p in desired.items()) or (allow_removal and any(
            t not in desired and t != topics.bridge_state for t in actual))
        # Items kept on the broker while their removal is withheld are still sensors in HA.
        desired[topics.bridge_state] = bridge_state(
            len(resolution.entities) + sum(kept.values()), problems, changed=changed,
            previous=_bytes(actual.get(topics.bridge_state)))
    return desired


def _bytes(payload: Payload | None) -> bytes | None:
    return payload if isinstance(payload, bytes) else None


def explain_skips(resolution: Resolution, snapshot: Snapshot) -> Resolution:
    """Blame an unreadable file, not the item, for items it left unmapped."""
    broken = [s.file for s in snapshot.files.values() if not s.has_good_version]
    if not broken:
        return resolution
    skipped = tuple(
        replace(s, reason=f"{name} cannot be read; kept as published until it can")
        if (name := next((f for f in broken if f in s.reason), None)) else s
        for s in resolution.skipped)
    return replace(resolution, skipped=skipped)


def expected_topics(topics: Topics, slugs: Iterable[str]) -> list[str]:
    """Topics that may hold our retained messages: those of `slugs` and the fixed ones.

    The bridge's topics are always among them: they must be found to be cleared when the
    bridge entities were turned off.
    """
    expected = [topics.categories_state, topics.config(topics.categories_object_id)]
    for slug in slugs:
        expected += topics.item_topics(slug)
    return [*expected, *bridge_configs(topics), topics.bridge_state]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A sync worked out, before anything is sent: the entities (skips explained), the
    desired retained state, and the plan against what the broker holds."""

    resolution: Resolution
    desired: Mapping[str, Payload]
    plan: Plan


def prepare(topics: Topics, snapshot: Snapshot, actual: Mapping[str, Payload],
            resolution: Resolution | None = None, *, bridge: bool = True,
            rendered: Mapping[str, Payload] | None = None) -> Prepared:
    """The pure part of a sync, shared by the sync itself and the dry run."""
    resolution = explain_skips(resolution or resolve(snapshot.library), snapshot)
    allow_removal = snapshot.complete
    desired = desired_state(topics, resolution, actual, allow_removal,
                            problems=snapshot.errors, bridge=bridge, rendered=rendered)
    return Prepared(resolution, desired, reconcile(desired, actual, allow_removal=allow_removal))


def plan_sync(topics: Topics, snapshot: Snapshot, actual: Mapping[str, Payload],
              resolution: Resolution | None = None, *, bridge: bool = True,
              rendered: Mapping[str, Payload] | None = None) -> tuple[Resolution, Plan]:
    """`prepare()`'s entities and plan."""
    prepared = prepare(topics, snapshot, actual, resolution, bridge=bridge, rendered=rendered)
    return prepared.resolution, prepared.plan
