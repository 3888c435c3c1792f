"""The single-flight sync loop: one batch of triggers at a time, each synced through
`engine.sync`; failures counted and retried, the ledger rewritten after a complete sync."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..core.backoff import Backoff
from ..core.result import SyncResult
from ..engine.events import FileError, FileRecovered, SyncFailed, SyncFinished, SyncStarted
from ..engine.scheduler import Batch
from ..engine.sync import run_sync
from ..inputs.ledger import ledger_topics, write_ledger
from ..mqtt.session import BrokerError, BrokerRefused
from .memory import settle_after_sync

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)


class SyncLoop:
    """Runs the service's syncs; keeps the last result (without its payloads)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.last_result: SyncResult | None = None

    async def run(self) -> None:
        failures = 0
        while True:
            batch = await self.service.scheduler.next_batch()
            if batch is None:
                return
            try:
                failures = await self._sync(batch, failures)
            except Exception as exc:
                # Never deaf: an unexpected error fails this sync, not every later one.
                failures += 1
                log.exception("sync #%d failed unexpectedly", batch.id)
                self.service.bus.emit(SyncFailed(batch.id, batch.reasons,
                                                 f"unexpected error: {exc!r}", failures, None))
            finally:
                self.service.scheduler.finished()
            # The sync's payloads are garbage now; without this the idle service keeps
            # their pages (its high-water mark) until the next sync.
            settle_after_sync()

    def _earlier_topics(self) -> list[str]:
        """Topics earlier runs may have left: the ledger's (rewritten only after a complete
        sync, so it still names what a sync with an unreadable file kept) and the last
        sync's. Reads the ledger: `run_sync` calls it only when it reads the broker."""
        found = ledger_topics(self.service.settings.settings_dir, self.service.topics)
        if self.last_result is not None:
            for entity in self.last_result.entities:
                found += self.service.topics.item_topics(entity.slug)
        return found

    async def _sync(self, batch: Batch, failures: int) -> int:
        """Run one sync for `batch`; returns the new count of consecutive failures."""
        session = await self.service.connected_session()
        # In a thread: parsing a 10k-item library takes ~70 ms, time the HTTP API would wait.
        snapshot = await asyncio.to_thread(self.service.source.read)
        self.service.status.malformed = {s.file: s.warnings for s in snapshot.files.values()}
        for file, error in snapshot.new_errors:
            self.service.bus.emit(FileError(file, error))
        for file in snapshot.recovered:
            self.service.bus.emit(FileRecovered(file))
        self.service.bus.emit(SyncStarted(batch.id, batch.reasons))
        try:
            if session is None:
                raise BrokerError("not connected to the MQTT broker")
            result = await run_sync(session, self.service.topics, snapshot, self.service.plex,
                                    bridge=self.service.settings.bridge_entities,
                                    earlier_topics=self._earlier_topics,
                                    keep_mirror=True, trust_mirror=batch.reasons == ("file",))
        except BrokerError as exc:
            failures += 1
            lost = session is None or session.closed.is_set()
            retry = None
            # A refusal (ACL) would be refused again: wait for the next trigger.
            if not lost and failures <= self.service.settings.retry_count and \
                    not isinstance(exc, BrokerRefused):
                retry = Backoff(base=self.service.settings.retry_delay, attempt=failures - 1).next()
                self.service.request_sync("retry", delay=retry)
            # A lost connection is not the sync's fault: the reconnect will trigger a sync.
            self.service.bus.emit(SyncFailed(batch.id, batch.reasons, str(exc), failures, retry))
            return 0 if lost else failures
        self.last_result = result.without_payloads()
        self.service.inputs.update(result.skipped, result.warnings)
        self.service.metrics.set_entities(result)
        plan = result.plan
        self.service.bus.emit(SyncFinished(
            batch.id, batch.reasons, len(result.entities), result.published, plan.unchanged,
            result.removed, len(plan.withheld), len(result.skipped), result.duration,
            result.errors))
        if snapshot.complete and len(plan):
            await asyncio.to_thread(write_ledger, self.service.settings.settings_dir,
                                    result.entities, self.service.topics.node_id)
        return 0
