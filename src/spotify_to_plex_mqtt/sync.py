"""One sync: read the library, render the desired state, reconcile it with the broker."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from .bridge import bridge_configs, bridge_state
from .discovery import UNCHANGED, Topics, render
from .entities import Entity, Resolution, Skipped, resolve
from .keepart import keep_retained_artwork
from .library import Library
from .mirror import Mirror
from .mqtt import BrokerSession
from .plexlink import PlexLink
from .reconcile import Plan, reconcile
from .retained import Retained
from .source import Snapshot

log = logging.getLogger(__name__)


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


def _kept_categories(topics: Topics, resolution: Resolution,
                     actual: Mapping[str, bytes]) -> Counter[str]:
    """Categories of item states that stay on the broker although not rendered this time."""
    counts: Counter[str] = Counter()
    prefix = topics.item_state("")
    rendered = {topics.item_state(e.slug) for e in resolution.entities}
    for topic, payload in actual.items():
        if topic.startswith(prefix) and topic not in rendered:
            try:
                category = json.loads(payload).get("category")
            except (ValueError, AttributeError):
                continue
            if isinstance(category, str) and category:
                counts[category] += 1
    return counts


def desired_state(topics: Topics, resolution: Resolution, actual: Mapping[str, bytes],
                  allow_removal: bool, *, problems: tuple[str, ...] = (),
                  bridge: bool = True,
                  rendered: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """Render the entities; when removal is withheld, count kept items in the categories.

    With `bridge`, add the bridge entities; their timestamp moves only if the rest changed.
    `rendered` is `render()` of the entities already done (with removal allowed), reused.
    """
    # Withheld removals stay sensors in HA: count them in before rendering, once.
    kept = Counter() if allow_removal else _kept_categories(topics, resolution, actual)
    desired = rendered if allow_removal and rendered is not None else \
        render(topics, resolution.entities, kept)
    if bridge:
        desired.update(bridge_configs(topics))
        changed = any(actual.get(t) != p for t, p in desired.items()) or (allow_removal and any(
            t not in desired and t != topics.bridge_state for t in actual))
        # Items kept on the broker while their removal is withheld are still sensors in HA.
        desired[topics.bridge_state] = bridge_state(
            len(resolution.entities) + sum(kept.values()), problems, changed=changed,
            previous=actual.get(topics.bridge_state))
    return desired


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


async def read_ours(session: BrokerSession, topics: Topics, slugs: Iterable[str],
                    earlier_topics: Iterable[str] = ()) -> Retained:
    """Our retained messages on the broker; the topics of `slugs`, and `earlier_topics`, are
    read by name if the broker cut the wildcard read short."""
    expected = [*expected_topics(topics, dict.fromkeys(slugs)), *earlier_topics]
    return await session.scan(topics.scan_filters, topics.is_ours, topics.scan_marker_prefix,
                              expected=expected, probe_prefix=topics.scan_probe_prefix)


def plan_sync(topics: Topics, snapshot: Snapshot, actual: Mapping[str, bytes],
              resolution: Resolution | None = None, *, bridge: bool = True,
              rendered: dict[str, bytes] | None = None) -> tuple[Resolution, Plan]:
    """The pure part of a sync: entities and the plan against `actual`."""
    resolution = explain_skips(resolution or resolve(snapshot.library), snapshot)
    allow_removal = snapshot.complete
    desired = desired_state(topics, resolution, actual, allow_removal,
                            problems=snapshot.errors, bridge=bridge, rendered=rendered)
    return resolution, reconcile(desired, actual, allow_removal=allow_removal)


async def _enrich_fresh(plex: PlexLink, resolution: Resolution,
                        sources: Mapping[str, object]) -> Resolution:
    """Enrich the entities that are not as rendered last time, lack artwork, or whose
    artwork is due for its refresh; the others stay as they are."""
    due = plex.cache.due
    fresh = tuple(e for e in resolution.entities if sources.get(e.slug) is not e
                  or not (e.thumb and e.plex_server_id) or due(e.media_content_type, e.plex_key))
    if not fresh:
        return resolution
    enriched = {e.slug: e for e in (await plex.enrich_some(Resolution(fresh, ()))).entities}
    return Resolution(tuple(enriched.get(e.slug, e) for e in resolution.entities),
                      resolution.skipped)


async def _compare_with_mirror(topics: Topics, mirror: Mirror, library: Library,
                               plex: PlexLink | None
                               ) -> tuple[Resolution, dict[str, bytes], dict[str, bytes]]:
    """Resolve, enrich and render only what changed, and stand the mirror in for the broker.

    An item whose data is as last time is the entity rendered then, artwork included,
    unless the Plex settings changed since: then every entity is enriched again. Entities
    without artwork, or whose artwork is due for a refresh, are enriched again too, so that
    artwork Plex could not give then, or has changed since, comes now.
    """
    sources = mirror.sources
    if plex is not None:
        await plex.refresh()
        if plex.settings != mirror.context:
            resolution = await plex.enrich(resolve(library), refresh=False)
        else:
            resolution = await _enrich_fresh(plex, resolve(library, previous=sources), sources)
    else:
        resolution = resolve(library, previous=sources)

    def unchanged(entity: Entity, state_topic: str, config_topic: str) -> bool:
        old = sources.get(entity.slug)
        return (old is entity or old == entity) and mirror.has(state_topic) \
            and mirror.has(config_topic)

    rendered = render(topics, resolution.entities, Counter(), unchanged=unchanged)
    return resolution, mirror.actual_for({**rendered, **bridge_configs(topics)}), rendered


def _keep_known_artwork(topics: Topics, resolution: Resolution, actual: Mapping[str, bytes],
                        plex: PlexLink) -> Resolution:
    """With Plex configured (or its settings unreadable) but not answering, keep the artwork
    the broker holds: nothing in memory knows it yet (one-shot, service start)."""
    if not plex.configured and plex.error is None:
        return resolution  # no Plex at all: thumbs are meant to be empty
    unknown = plex.last.missing if plex.last is not None else ()
    return keep_retained_artwork(topics, resolution, actual, frozenset(unknown))


_CUT_SHORT = (
    "the broker returned only part of its retained messages (Mosquitto: max_queued_messages) "
    "and no record of earlier runs (mqtt_published_items.json) says which topics to read by "
    "name: retained topics of items removed before this run may stay on the broker; raise "
    "max_queued_messages above the number of retained messages, or keep the ledger")


async def run_sync(session: BrokerSession, topics: Topics, snapshot: Snapshot,
                   plex: PlexLink | None = None, *, bridge: bool = True,
                   earlier_topics: Iterable[str] = (), keep_mirror: bool = False,
                   trust_mirror: bool = False) -> SyncResult:
    """Scan the broker, publish what differs, clear what is gone; QoS 1, counted on ack.

    Plex artwork is fetched while the broker is scanned; it only ever adds to entities.
    `earlier_topics` may hold what earlier runs published (see `ledger.ledger_topics`): they
    are read by name if the broker cuts the wildcard read short, so that removals are not
    missed.
    With `keep_mirror`, the session keeps a mirror of what the broker holds afterwards; with
    `trust_mirror`, that mirror of an earlier sync on this connection stands in for the read,
    unless an input file cannot be read (withheld removals need the payloads).
    """
    started = time.monotonic()
    warnings = list(snapshot.warnings)
    mirror = session.mirror if trust_mirror and snapshot.complete else None
    rendered: dict[str, bytes] | None = None
    if mirror is not None:
        resolution, actual, rendered = await _compare_with_mirror(
            topics, mirror, snapshot.library, plex)
    else:
        resolution = resolve(snapshot.library)
        before = await asyncio.to_thread(tuple, earlier_topics)  # may read the ledger
        scan = read_ours(session, topics, (e.slug for e in resolution.entities), before)
        if plex is not None:
            read, resolution = await asyncio.gather(scan, plex.enrich(resolution))
            resolution = _keep_known_artwork(topics, resolution, read.found, plex)
        else:
            read = await scan
        actual = read.found
        if read.recovered and not before:
            warnings.append(_CUT_SHORT)
        if keep_mirror:
            mirror = Mirror(whole=lambda t: t == topics.bridge_state).load(actual.items())
    resolution, plan = plan_sync(topics, snapshot, actual, resolution, bridge=bridge,
                                 rendered=rendered)
    log.debug("plan: %d to publish, %d to clear, %d unchanged, %d withheld",
              len(plan.publish), len(plan.clear), plan.unchanged, len(plan.withheld))
    # Until every publish is acknowledged the broker's state is not known: no mirror.
    session.mirror = None
    if any(payload is UNCHANGED for _, payload in plan.publish):
        raise RuntimeError("a placeholder payload reached the plan")  # never publish it
    acked = await session.publish_many(plan.messages,
                                       on_ack=mirror.record if mirror is not None else None)
    if mirror is not None:
        mirror.sources = {e.slug: e for e in resolution.entities}
        mirror.context = plex.settings if plex is not None else None
        session.mirror = mirror
    errors = list(snapshot.errors)
    if plan.withheld:
        errors.append(f"{len(plan.withheld)} retained messages were not removed because an "
                      "input file could not be read, or holds an entry never read well")
    return SyncResult(
        entities=resolution.entities,
        skipped=resolution.skipped,
        plan=plan,
        published=min(acked, len(plan.publish)),
        removed=max(0, acked - len(plan.publish)),
        errors=tuple(errors),
        warnings=tuple(warnings),
        duration=time.monotonic() - started,
    )
