"""The small control interface the HTTP API is given: what it reads of the service and the
two things it may do (ask for a sync, wait for one). `Service` implements it; tests pass a
lighter object."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ..core.discovery import Topics
from ..core.result import SyncResult
from ..engine.events import EventBus, Status, SyncFailed, SyncFinished
from ..engine.scheduler import Batch
from ..settings.config import Settings

PlexState = Callable[[], Mapping[str, Any]]


class SchedulerView(Protocol):
    @property
    def pending(self) -> tuple[str, ...]: ...

    @property
    def running(self) -> Batch | None: ...


class ControlPlane(Protocol):
    """What the API uses of `Service`; tests may pass a lighter object."""

    @property
    def settings(self) -> Settings: ...

    @property
    def status(self) -> Status: ...

    @property
    def bus(self) -> EventBus: ...

    @property
    def scheduler(self) -> SchedulerView: ...

    @property
    def topics(self) -> Topics: ...

    @property
    def last_result(self) -> SyncResult | None: ...

    def request_sync(self, reason: str) -> int: ...

    async def wait_for_sync(self, batch_id: int) -> SyncFinished | SyncFailed: ...
