"""The dry-run mode: the sync worked out (`core.plan.prepare`) and written down as a
manifest; nothing published."""

from __future__ import annotations

import logging
import os

from ..core.entities import resolve
from ..core.plan import prepare
from ..core.result import SyncResult
from ..engine.sync import read_ours
from ..inputs.ledger import ledger_topics, read_ledger
from ..inputs.source import LibrarySource
from ..mqtt.session import BrokerError, BrokerSession
from ..plex.enricher import PlexLink
from ..settings.config import Settings
from .oneshot import log_inputs, topics_for
from .report import summary, write_manifest

log = logging.getLogger(__name__)


async def dry_run(settings: Settings) -> int:
    """Publish nothing; compare with the broker when one is configured, else with the ledger."""
    topics = topics_for(settings)
    snapshot = LibrarySource(settings.settings_dir).read()
    actual: dict[str, bytes] = {}
    if settings.mqtt.url is not None:
        try:
            async with BrokerSession(settings.mqtt, read_only=True) as session:
                slugs = [e.slug for e in resolve(snapshot.library).entities]
                earlier = ledger_topics(settings.settings_dir, topics)
                actual = (await read_ours(session, topics, slugs, earlier)).found
        except BrokerError as exc:
            log.error("%s", exc)
            return 1
    plex = PlexLink(settings.settings_dir, os.environ)
    try:
        resolution = await plex.enrich(resolve(snapshot.library))
    finally:
        await plex.aclose()
    prepared = prepare(topics, snapshot, actual, resolution, bridge=settings.bridge_entities)
    resolution, plan = prepared.resolution, prepared.plan
    if settings.mqtt.url is not None:
        would_remove = list(plan.clear or plan.withheld)
    else:
        wanted = {e.id for e in resolution.entities}
        would_remove = [entry.entity_id or entry.id for entry in read_ledger(settings.settings_dir)
                        if entry.id not in wanted]
    result = SyncResult(entities=resolution.entities, skipped=resolution.skipped, plan=plan,
                        published=0, removed=0, errors=snapshot.errors,
                        warnings=snapshot.warnings)
    log_inputs(result, settings.settings_dir)
    print(summary(result, dry_run=True))
    try:
        # No mirror here, so no payload is `UNCHANGED`: all are bytes.
        desired = {t: p for t, p in prepared.desired.items() if isinstance(p, bytes)}
        path = write_manifest(settings, topics, result, desired, would_remove)
    except OSError as exc:
        log.error("cannot write the dry-run manifest into %s (%s): check --settings-dir",
                  settings.settings_dir, exc.strerror or exc)
        return 1
    print(f"dry run: nothing published; manifest written to {path}")
    return 0 if result.ok else 1
