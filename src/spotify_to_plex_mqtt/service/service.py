"""The long-running service: triggers -> one single-flight sync loop -> the broker.

Phases, in the style of uvicorn's `Server`: `startup()` (HTTP API, signal handlers, tasks),
`main_loop()` (until a signal), `shutdown()` (finish or abandon the current sync within the
grace, publish `offline`, disconnect). A second signal cuts the grace short: the sync is
abandoned at once, `offline` is still published (within about a second), exit code 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import time
from dataclasses import dataclass

from .. import __version__
from ..aio import first_of
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
    HomeAssistantOnline,
    Started,
    Status,
    Stopped,
    SyncFailed,
    SyncFinished,
)
from ..engine.scheduler import Scheduler
from ..http.metrics import Metrics
from ..http.server import HttpServer, HttpServerError
from ..inputs.source import LibrarySource
from ..inputs.watch import DirectoryWatcher
from ..mqtt.presence import PrefixTaken, Presence
from ..mqtt.session import BrokerError, BrokerSession
from ..plex.enricher import PlexLink
from ..settings.config import Settings
from ..settings.values import ConfigError
from .eventlog import log_event
from .sync_loop import SyncLoop

log = logging.getLogger(__name__)

STABLE_AFTER = 60.0


@dataclass(frozen=True, slots=True)
class _Tasks:
    """The service's tasks, by role."""

    connection: asyncio.Task[None]
    sync: asyncio.Task[None]
    watch: asyncio.Task[None] | None
    timer: asyncio.Task[None] | None


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
        self.plex = PlexLink(settings.settings_dir, os.environ,
                             on_request=self.metrics.record_plex_request)
        self.http = HttpServer.for_settings(
            settings.http, self, self.metrics,
            lambda: {"configured": self.plex.configured, "error": self.plex.error})
        self.inputs = InputReport()
        self.syncs = SyncLoop(self)
        self.presence = Presence(self.topics, lambda problem: self.bus.emit(
            Availability(problem)), self._yield_prefix)
        self._exit_code = 0
        self.force_exit = False
        self._forced = asyncio.Event()
        self._tasks: _Tasks | None = None
        self._session: BrokerSession | None = None
        self._connected = asyncio.Event()
        self._stopping = asyncio.Event()
        self._disconnect = asyncio.Event()
        self._stop_reason = ""
        self._connections = 0
        broker = settings.mqtt.url
        self._broker = broker.display if broker else "(no broker)"

    @property
    def last_result(self) -> SyncResult | None:
        return self.syncs.last_result

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
            if not self.force_exit:
                log.warning("second %s: stopping at once", reason)
                self.force_exit = True
                self._forced.set()
            return
        self._stop_reason = reason
        self._stopping.set()

    # Phases ---------------------------------------------------------------------------

    async def run(self) -> int:
        code = await self.startup()
        if code is not None:
            return code
        await self.main_loop()
        await self.shutdown()
        return self._exit_code

    async def startup(self) -> int | None:
        """Start the HTTP API, the signal handlers and the tasks; an exit code if it failed."""
        if self.http is not None:
            try:
                await self.http.start()
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
        settings = self.settings
        self._tasks = _Tasks(
            connection=asyncio.create_task(self._connection_loop(), name="connection"),
            sync=asyncio.create_task(self.syncs.run(), name="sync"),
            watch=asyncio.create_task(self.watcher.run(), name="watch") if settings.watch
            else None,
            timer=asyncio.create_task(self._timer(), name="timer") if settings.interval > 0
            else None)
        return None

    async def main_loop(self) -> None:
        await self._stopping.wait()

    async def shutdown(self) -> None:
        tasks = self._tasks
        assert tasks is not None, "shutdown() before startup()"
        self.scheduler.close()
        self.watcher.stop()
        await self._end_sync(tasks.sync)
        await self._go_offline()
        self._disconnect.set()
        for task in (tasks.watch, tasks.timer):
            if task is not None:
                task.cancel()
        others = [t for t in (tasks.connection, tasks.watch, tasks.timer) if t is not None]
        _, pending = await asyncio.wait(others, timeout=1.0 if self.force_exit else 3.0)
        for task in pending:
            task.cancel()
        await self.plex.aclose()
        self.bus.emit(Stopped(self._stop_reason or "stopped"))
        if self.http is not None:
            # After `stopped` was emitted, so that WebSocket clients still receive it.
            await self.http.stop()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if self.force_exit and self._exit_code == 0:
            self._exit_code = 1

    async def _end_sync(self, sync_task: asyncio.Task[None]) -> None:
        """Let the running sync finish within the grace, or until a second signal."""
        await first_of(asyncio.shield(sync_task), asyncio.sleep(self.settings.grace),
                       self._forced.wait())
        if sync_task.done():
            return
        if self.force_exit:
            log.warning("abandoning the running sync")
        else:
            log.warning("the running sync did not finish within %.1f s; abandoning it",
                        self.settings.grace)
        sync_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sync_task

    async def _go_offline(self) -> None:
        session = self._session
        self.presence.release()
        if session is None:
            return
        try:
            await asyncio.wait_for(session.set_status(False), 1.0 if self.force_exit else 2.0)
        except (BrokerError, TimeoutError) as exc:
            log.warning("could not publish offline: %s", exc)

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
                    await session.subscribe(self.topics.ha_status,
                                            self._on_ha_status)
                    await session.subscribe(self.topics.refresh_command,
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
                    await first_of(session.closed.wait(), self._disconnect.wait())
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

    async def connected_session(self) -> BrokerSession | None:
        """Once connected: the session (None if it was lost again meanwhile)."""
        await self._connected.wait()
        return self._session


async def run_service(settings: Settings) -> int:
    if settings.mqtt.url is None:
        log.error("MQTT_BROKER_URL is not set")
        return 2
    bus = EventBus()
    bus.listen(log_event)
    return await Service(settings, bus).run()
