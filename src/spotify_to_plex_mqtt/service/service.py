"""The long-running service: triggers -> one single-flight sync loop -> the broker.

Phases: start (tasks and signal handlers), run until a signal, shut down within the grace
(finish or abandon the current sync, publish `offline`, disconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import time
from collections.abc import Coroutine, Iterator
from typing import Any

from .. import __version__
from ..core.backoff import Backoff
from ..core.discovery import Topics
from ..core.input_report import InputReport
from ..core.result import SyncResult
from ..engine.events import (
    Availability,
    Connected,
    Disconnected,
    EventBus,
    FileChanged,
    FileError,
    FileRecovered,
    HomeAssistantOnline,
    Started,
    Status,
    Stopped,
    SyncFailed,
    SyncFinished,
    SyncStarted,
)
from ..engine.scheduler import Batch, Scheduler
from ..engine.sync import run_sync
from ..http.metrics import Metrics
from ..http.server import HttpServer, HttpServerError
from ..inputs.ledger import ledger_topics, write_ledger
from ..inputs.source import LibrarySource
from ..inputs.watch import DirectoryWatcher
from ..mqtt.presence import PrefixTaken, Presence
from ..mqtt.session import BrokerError, BrokerRefused, BrokerSession
from ..plex.enricher import PlexLink
from ..settings.config import Settings
from ..settings.values import ConfigError
from .eventlog import log_event
from .memory import settle_after_sync

log = logging.getLogger(__name__)

STABLE_AFTER = 60.0


class Service:
    """Keeps Home Assistant in step with the settings directory until stopped."""

    def __init__(self, settings: Settings, bus: EventBus | None = None) -> None:
        self.settings = settings
        self.topics = Topics(settings.mqtt.topic_prefix, settings.mqtt.discovery_prefix)
        self.bus = bus or EventBus()
        self.status = Status()
        self.bus.listen(self.status.on_event)
        self.metrics = Metrics()
        self.bus.listen(self.metrics.on_event)
        self.scheduler = Scheduler(debounce=settings.debounce, min_gap=settings.min_gap)
        self.source = LibrarySource(settings.settings_dir)
        self.watcher = DirectoryWatcher(settings.settings_dir, self._on_files, poll=settings.poll)
        self.plex = PlexLink(settings.settings_dir, os.environ)
        self.http = HttpServer.for_settings(
            settings.http, self, self.metrics,
            lambda: {"configured": self.plex.configured, "error": self.plex.error})
        self.last_result: SyncResult | None = None
        self.inputs = InputReport()
        self.presence = Presence(self.topics, lambda problem: self.bus.emit(
            Availability(problem)), self._yield_prefix)
        self._exit_code = 0
        self._session: BrokerSession | None = None
        self._connected = asyncio.Event()
        self._stopping = asyncio.Event()
        self._disconnect = asyncio.Event()
        self._stop_reason = ""
        self._connections = 0
        broker = settings.mqtt.url
        self._broker = broker.display if broker else "(no broker)"

    # Triggers -------------------------------------------------------------------------

    def request_sync(self, reason: str, *, debounce: bool = False, delay: float = 0.0) -> int:
        if self._stopping.is_set():
            return 0
        return self.scheduler.request(reason, debounce=debounce, delay=delay)

    def _on_files(self, names: tuple[str, ...]) -> None:
        self.bus.emit(FileChanged(names))
        self.request_sync("file", debounce=True)

    def _on_ha_status(self, topic: str, payload: bytes, retained: bool) -> None:
        # Home Assistant's birth message: it may have lost MQTT entities; republish after a
        # random delay so that many bridges do not answer at the same instant.
        if payload.strip() == b"online" and not retained:
            self.bus.emit(HomeAssistantOnline(topic))
            self.request_sync("homeassistant", delay=random.uniform(1.0, 5.0))

    def _on_command(self, _topic: str, _payload: bytes, retained: bool) -> None:
        if not retained:
            self.request_sync("command")

    async def wait_for_sync(self, batch_id: int) -> SyncFinished | SyncFailed:
        """Wait until the sync answering `batch_id` (from `request_sync`) ends."""
        queue = self.bus.queue()
        try:
            while True:
                event = await queue.get()
                if isinstance(event, SyncFinished | SyncFailed) and event.id >= batch_id:
                    return event
        finally:
            self.bus.unqueue(queue)

    def stop(self, reason: str) -> None:
        if self._stopping.is_set():
            log.warning("second %s: exiting at once", reason)
            os._exit(1)
        self._stop_reason = reason
        self._stopping.set()

    # Phases ---------------------------------------------------------------------------

    async def run(self) -> int:
        http = self.http
        if http is not None:
            try:
                await http.start()
            except ConfigError as exc:
                log.error("%s", exc)
                return 2
            except HttpServerError as exc:
                log.error("%s", exc)
                return 1
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop, sig.name)
        self.bus.emit(Started(__version__))
        tasks = [asyncio.create_task(self._connection_loop(), name="connection")]
        sync_task = asyncio.create_task(self._sync_loop(), name="sync")
        if self.settings.watch:
            tasks.append(asyncio.create_task(self.watcher.run(), name="watch"))
        if self.settings.interval > 0:
            tasks.append(asyncio.create_task(self._timer(), name="timer"))
        await self._stopping.wait()
        await self._shutdown(sync_task, tasks)
        if http is not None:
            # After `stopped` was emitted, so that WebSocket clients still receive it.
            await http.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        return self._exit_code

    async def _shutdown(self, sync_task: asyncio.Task[None],
                        tasks: list[asyncio.Task[None]]) -> None:
        self.scheduler.close()
        self.watcher.stop()
        try:
            await asyncio.wait_for(asyncio.shield(sync_task), self.settings.grace)
        except TimeoutError:
            log.warning("the running sync did not finish within %.1f s; abandoning it",
                        self.settings.grace)
            sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sync_task
        session = self._session
        self.presence.release()
        if session is not None:
            try:
                await asyncio.wait_for(session.set_status(False), 2.0)
            except (BrokerError, TimeoutError) as exc:
                log.warning("could not publish offline: %s", exc)
        self._disconnect.set()
        for task in tasks:
            if task.get_name() != "connection":
                task.cancel()
        _, pending = await asyncio.wait(tasks, timeout=3.0)
        for task in pending:
            task.cancel()
        await self.plex.aclose()
        self.bus.emit(Stopped(self._stop_reason or "stopped"))

    def _yield_prefix(self, message: str) -> None:
        if self._stopping.is_set():
            return
        log.error("%s", message)
        self._exit_code = 2  # like a configuration error: a restart would not help
        self.presence.release()  # so that stopping does not publish `offline` over the other
        self._session = None
        self.stop("another instance serves this prefix")

    # Loops ----------------------------------------------------------------------------

    async def _timer(self) -> None:
        while True:
            await asyncio.sleep(self.settings.interval)
            self.request_sync("timer")

    async def _connection_loop(self) -> None:
        backoff = Backoff(base=1.0, cap=60.0)
        while not self._stopping.is_set():
            reason = "connection closed"
            connected_at = None
            try:
                async with BrokerSession(self.settings.mqtt) as session:
                    await session.subscribe(f"{self.topics.discovery_prefix}/status",
                                            self._on_ha_status)
                    await session.subscribe(f"{self.topics.command_prefix}/refresh",
                                            self._on_command)
                    await self.presence.claim(session)
                    await self.presence.go_online(session)
                    connected_at = time.monotonic()
                    self._session = session
                    self._connected.set()
                    self.bus.emit(Connected(self._broker))
                    # A broker may have lost its retained messages: every (re)connect syncs.
                    self.request_sync("reconnect" if self._connections else "start")
                    self._connections += 1
                    await _first(session.closed.wait(), self._disconnect.wait())
                    if self._disconnect.is_set():
                        return
            except PrefixTaken as exc:
                self._yield_prefix(str(exc))
                return
            except BrokerError as exc:
                reason = str(exc)
            finally:
                self._session = None
                self.presence.release()
                self._connected.clear()
            if connected_at is not None and time.monotonic() - connected_at > STABLE_AFTER:
                backoff.reset()
            delay = backoff.next()
            self.bus.emit(Disconnected(self._broker, reason, delay))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def _sync_loop(self) -> None:
        failures = 0
        while True:
            batch = await self.scheduler.next_batch()
            if batch is None:
                return
            try:
                failures = await self._sync(batch, failures)
            except Exception as exc:
                # Never deaf: an unexpected error fails this sync, not every later one.
                failures += 1
                log.exception("sync #%d failed unexpectedly", batch.id)
                self.bus.emit(SyncFailed(batch.id, batch.reasons,
                                         f"unexpected error: {exc!r}", failures, None))
            finally:
                self.scheduler.finished()
            # The sync's payloads are garbage now; without this the idle service keeps
            # their pages (its high-water mark) until the next sync.
            settle_after_sync()

    def _earlier_topics(self) -> Iterator[str]:
        """Topics earlier runs may have left: the ledger's (rewritten only after a complete
        sync, so it still names what a sync with an unreadable file kept) and the last
        sync's. Lazy: only a sync that reads the broker needs them."""
        yield from ledger_topics(self.settings.settings_dir, self.topics)
        if self.last_result is not None:
            for entity in self.last_result.entities:
                yield from self.topics.item_topics(entity.slug)

    async def _sync(self, batch: Batch, failures: int) -> int:
        """Run one sync for `batch`; returns the new count of consecutive failures."""
        await self._connected.wait()
        session = self._session
        # In a thread: parsing a 10k-item library takes ~70 ms, time the HTTP API would wait.
        snapshot = await asyncio.to_thread(self.source.read)
        self.status.malformed = {s.file: s.warnings for s in snapshot.files.values()}
        for file, error in snapshot.new_errors:
            self.bus.emit(FileError(file, error))
        for file in snapshot.recovered:
            self.bus.emit(FileRecovered(file))
        self.bus.emit(SyncStarted(batch.id, batch.reasons))
        try:
            if session is None:
                raise BrokerError("not connected to the MQTT broker")
            result = await run_sync(session, self.topics, snapshot, self.plex,
                                    bridge=self.settings.bridge_entities,
                                    earlier_topics=self._earlier_topics(),
                                    keep_mirror=True, trust_mirror=batch.reasons == ("file",))
        except BrokerError as exc:
            failures += 1
            lost = session is None or session.closed.is_set()
            retry = None
            # A refusal (ACL) would be refused again: wait for the next trigger.
            if not lost and failures <= self.settings.retry_count and \
                    not isinstance(exc, BrokerRefused):
                retry = Backoff(base=self.settings.retry_delay, attempt=failures - 1).next()
                self.request_sync("retry", delay=retry)
            # A lost connection is not the sync's fault: the reconnect will trigger a sync.
            self.bus.emit(SyncFailed(batch.id, batch.reasons, str(exc), failures, retry))
            return 0 if lost else failures
        self.last_result = result.without_payloads()
        self.inputs.update(result.skipped, result.warnings)
        self.metrics.set_entities(result)
        plan = result.plan
        self.bus.emit(SyncFinished(
            batch.id, batch.reasons, len(result.entities), result.published, plan.unchanged,
            result.removed, len(plan.withheld), len(result.skipped), result.duration,
            result.errors))
        if snapshot.complete and len(plan):
            await asyncio.to_thread(write_ledger, self.settings.settings_dir, result.entities,
                                    self.topics.node_id)
        return 0


async def _first(*aws: Coroutine[Any, Any, Any]) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


async def run_service(settings: Settings) -> int:
    if settings.mqtt.url is None:
        log.error("MQTT_BROKER_URL is not set")
        return 2
    bus = EventBus()
    bus.listen(log_event)
    return await Service(settings, bus).run()
