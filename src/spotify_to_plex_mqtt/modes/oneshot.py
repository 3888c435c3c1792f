"""The one-shot and dry-run modes: one sync, a summary, an exit code."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..core.discovery import Topics
from ..core.entities import resolve
from ..core.input_report import log_details
from ..core.plan import prepare
from ..core.result import SyncResult
from ..engine.sync import read_ours, run_sync
from ..inputs.ledger import ledger_topics, read_ledger, write_ledger
from ..inputs.source import LibrarySource
from ..mqtt.presence import PrefixTaken, Presence
from ..mqtt.session import BrokerError, BrokerSession
from ..plex.enricher import PlexLink
from ..settings.config import Settings
from .report import entity_table, summary, write_manifest

log = logging.getLogger(__name__)


def topics_for(settings: Settings) -> Topics:
    return Topics(settings.mqtt.topic_prefix, settings.mqtt.discovery_prefix)


def _log_inputs(result: SyncResult, settings_dir: Path) -> None:
    # The summary printed next groups them per reason and file; each one only at debug.
    log_details(result.skipped, result.warnings)
    if not result.entities and not result.errors:
        log.warning("no labelled items to publish in %s: give playlists or albums a label "
                    "(category) in Spotify-to-Plex", settings_dir)


async def one_shot(settings: Settings, *, show_table: bool = False) -> int:
    """Connect, reconcile, publish `online`, print the summary; 0 on success, 1 otherwise."""
    topics = topics_for(settings)
    snapshot = LibrarySource(settings.settings_dir).read()
    plex = PlexLink(settings.settings_dir, os.environ)
    try:
        async with BrokerSession(settings.mqtt) as session:
            # Only a check: a one-shot leaves the owner record to the service it may run
            # beside; one on the prefix of another library would clear that one's entities.
            await Presence(topics, lambda _problem: None).claim(session, record=False)
            result = await run_sync(
                session, topics, snapshot, plex, bridge=settings.bridge_entities,
                earlier_topics=lambda: ledger_topics(settings.settings_dir, topics))
            await session.set_status(True)
    except PrefixTaken as exc:
        log.error("%s", exc)
        return 2
    except BrokerError as exc:
        log.error("%s", exc)
        return 1
    finally:
        await plex.aclose()
    _log_inputs(result, settings.settings_dir)
    if result.ok:
        write_ledger(settings.settings_dir, result.entities, topics.node_id)
    print(summary(result))
    if show_table:
        print(entity_table(result, topics))
    # The entities were published (Plex is enrichment), but a cron job or CI must notice a
    # broken plex.json or PLEX_URL: the error is already logged.
    return 0 if result.ok and plex.error is None else 1


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
    _log_inputs(result, settings.settings_dir)
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
