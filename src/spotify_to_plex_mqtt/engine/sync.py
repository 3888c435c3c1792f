"""One sync: read the library, render the desired state, reconcile it with the broker."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from ..core.bridge import bridge_configs
from ..core.discovery import Topics, render
from ..core.entities import Entity, Resolution, resolve
from ..core.keepart import keep_retained_artwork
from ..core.library import Library
from ..core.mirror import Mirror
from ..core.plan import expected_topics, plan_sync
from ..core.reconcile import Payload
from ..core.result import SyncResult
from ..core.snapshot import Snapshot
from ..mqtt.retained import Retained
from ..mqtt.session import BrokerSession
from ..plex.enricher import PlexLink

log = logging.getLogger(__name__)


async def read_ours(session: BrokerSession, topics: Topics, slugs: Iterable[str],
                    earlier_topics: Iterable[str] = ()) -> Retained:
    """Our retained messages on the broker; the topics of `slugs`, and `earlier_topics`, are
    read by name if the broker cut the wildcard read short."""
    expected = [*expected_topics(topics, dict.fromkeys(slugs)), *earlier_topics]
    return await session.scan(topics.scan_filters, topics.is_ours, topics.scan_marker_prefix,
                              expected=expected, probe_prefix=topics.scan_probe_prefix)


async def _enrich_fresh(plex: PlexLink, resolution: Resolution,
                        sources: Mapping[str, object]) -> Resolution:
    """Enrich the entities that are not as rendered last time, lack artwork, or whose
    artwork is due for its refresh; the others stay as they are."""
    fresh = tuple(e for e in resolution.entities if sources.get(e.slug) is not e
                  or not (e.thumb and e.plex_server_id) or plex.artwork_due(e))
    if not fresh:
        return resolution
    enriched = {e.slug: e for e in (await plex.enrich_some(Resolution(fresh, ()))).entities}
    return Resolution(tuple(enriched.get(e.slug, e) for e in resolution.entities),
                      resolution.skipped)


async def _compare_with_mirror(topics: Topics, mirror: Mirror, library: Library,
                               plex: PlexLink | None
                               ) -> tuple[Resolution, dict[str, Payload], dict[str, Payload]]:
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
    return keep_retained_artwork(topics, resolution, actual, plex.unknown_keys())


_CUT_SHORT = (
    "the broker returned only part of its retained messages (Mosquitto: max_queued_messages) "
    "and no record of earlier runs (mqtt_published_items.json) says which topics to read by "
    "name: retained topics of items removed before this run may stay on the broker; raise "
    "max_queued_messages above the number of retained messages, or keep the ledger")


async def _read_broker(session: BrokerSession, topics: Topics, snapshot: Snapshot,
                       plex: PlexLink | None,
                       earlier_topics: Callable[[], Iterable[str]] | None
                       ) -> tuple[Resolution, dict[str, bytes], bool]:
    """Read what the broker holds of ours while Plex enriches the entities; also whether the
    read was cut short with no earlier topics to read by name."""
    resolution = resolve(snapshot.library)
    # In a thread: it reads the ledger.
    before = await asyncio.to_thread(lambda: tuple(earlier_topics())) if earlier_topics else ()
    scan = read_ours(session, topics, (e.slug for e in resolution.entities), before)
    if plex is not None:
        read, resolution = await asyncio.gather(scan, plex.enrich(resolution))
        resolution = _keep_known_artwork(topics, resolution, read.found, plex)
    else:
        read = await scan
    return resolution, read.found, bool(read.recovered and not before)


async def run_sync(session: BrokerSession, topics: Topics, snapshot: Snapshot,
                   plex: PlexLink | None = None, *, bridge: bool = True,
                   earlier_topics: Callable[[], Iterable[str]] | None = None,
                   keep_mirror: bool = False,
                   trust_mirror: bool = False) -> SyncResult:
    """Scan the broker, publish what differs, clear what is gone; QoS 1, counted on ack.

    Plex artwork is fetched while the broker is scanned; it only ever adds to entities.
    `earlier_topics()` gives what earlier runs published (`inputs.ledger.ledger_topics`); it
    is called (in a thread: it reads the ledger) only when the broker is read, not when the
    mirror stands in: those topics are read by name if the broker cuts the wildcard read
    short, so that removals are not missed.
    With `keep_mirror`, the session keeps a mirror of what the broker holds afterwards; with
    `trust_mirror`, that mirror of an earlier sync on this connection stands in for the read,
    unless an input file cannot be read (withheld removals need the payloads).
    """
    started = time.monotonic()
    warnings = list(snapshot.warnings)
    mirror = session.mirror if trust_mirror and snapshot.complete else None
    rendered: dict[str, Payload] | None = None
    actual: Mapping[str, Payload]
    if mirror is not None:
        resolution, actual, rendered = await _compare_with_mirror(
            topics, mirror, snapshot.library, plex)
    else:
        resolution, found, cut_short = await _read_broker(session, topics, snapshot, plex,
                                                          earlier_topics)
        actual = found
        if cut_short:
            warnings.append(_CUT_SHORT)
        if keep_mirror:
            mirror = Mirror(whole=lambda t: t == topics.bridge_state).load(found.items())
    resolution, plan = plan_sync(topics, snapshot, actual, resolution, bridge=bridge,
                                 rendered=rendered)
    log.debug("plan: %d to publish, %d to clear, %d unchanged, %d withheld",
              len(plan.publish), len(plan.clear), plan.unchanged, len(plan.withheld))
    # Until every publish is acknowledged the broker's state is not known: no mirror.
    session.mirror = None
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
