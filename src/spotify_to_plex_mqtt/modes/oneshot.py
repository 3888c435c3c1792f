"""The one-shot mode: one sync, a summary, an exit code."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..core.discovery import Topics
from ..core.input_report import log_details
from ..core.result import SyncResult
from ..engine.sync import run_sync
from ..inputs.ledger import ledger_topics, write_ledger
from ..inputs.source import LibrarySource
from ..mqtt.presence import PrefixTaken, Presence
from ..mqtt.session import BrokerError, BrokerSession
from ..plex.enricher import PlexLink
from ..settings.config import Settings
from .report import entity_table, summary

log = logging.getLogger(__name__)


def topics_for(settings: Settings) -> Topics:
    return Topics(settings.mqtt.topic_prefix, settings.mqtt.discovery_prefix)


def log_inputs(result: SyncResult, settings_dir: Path) -> None:
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
    log_inputs(result, settings.settings_dir)
    if result.ok:
        write_ledger(settings.settings_dir, result.entities, topics.node_id)
    print(summary(result))
    if show_table:
        print(entity_table(result, topics))
    # The entities were published (Plex is enrichment), but a cron job or CI must notice a
    # broken plex.json or PLEX_URL: the error is already logged.
    return 0 if result.ok and plex.error is None else 1
