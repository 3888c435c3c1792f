"""One instance per prefix: the retained owner record, its liveness probe, and `online`.

Two instances on one prefix and broker would each clear the other's entities (different
libraries), or mark them unavailable when one stops (the same library). So an instance
claims the prefix: it reads the retained owner record (`<prefix>/owner`) and the status
topic. The prefix is free when there is no record, the record is ours, or the status is
not `online` (the owner stopped, or crashed and its Last Will said `offline`). A record of
another instance with status `online` may still be stale (the broker died with it): that
instance is asked on `<prefix>/owner/ping` and must answer on `<prefix>/owner/alive`
within `PROBE_TIMEOUT`; only an answer refuses the newcomer.

While connected, the owner answers pings, and repairs the status topic when anything but
`online` appears there (a stray retained `offline` published by hand).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from ..core.discovery import Topics
from .broker_errors import BrokerError, BrokerRefused
from .session import BrokerSession

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 3.0
REPAIR_DELAY = 0.5


class PrefixTaken(BrokerError):
    """Another running instance serves this topic prefix on this broker."""


@dataclass(frozen=True, slots=True)
class OwnerRecord:
    """Who serves a prefix: enough for the user to find the other instance."""

    instance: str
    host: str
    pid: int
    started: float

    @classmethod
    def mine(cls) -> OwnerRecord:
        return cls(secrets.token_hex(6), socket.gethostname(), os.getpid(), time.time())

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, payload: bytes) -> OwnerRecord | None:
        try:
            data = json.loads(payload)
            return cls(str(data["instance"]), str(data["host"]), int(data["pid"]),
                       float(data["started"]))
        except (ValueError, TypeError, KeyError, RecursionError):
            return None

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"instance {self.instance} (host {self.host}, pid {self.pid}, since {since})"


def taken_message(topics: Topics, other: OwnerRecord) -> str:
    return (f"Another spotify-to-plex-mqtt, {other.describe()}, already serves "
            f"MQTT_TOPIC_PREFIX={topics.topic_prefix!r} on this broker; two instances on one "
            "prefix would remove or hide each other's entities. Stop the other one, or give "
            "this one its own MQTT_TOPIC_PREFIX.")


class Presence:
    """This instance's claim on its prefix, across the connections of one process."""

    def __init__(self, topics: Topics, on_problem: Callable[[str | None], None],
                 on_taken: Callable[[str], None] | None = None) -> None:
        self.topics = topics
        self.me = OwnerRecord.mine()
        self._on_problem = on_problem
        self._on_taken = on_taken
        self._session: BrokerSession | None = None
        self._scanned: str | None = None  # the owner record's instance when we claimed
        self._alive: asyncio.Queue[bytes] = asyncio.Queue()
        self._repair: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.repairs = 0

    @property
    def ping_topic(self) -> str:
        return f"{self.topics.owner}/ping"

    @property
    def alive_topic(self) -> str:
        return f"{self.topics.owner}/alive"

    async def claim(self, session: BrokerSession, *, record: bool = True) -> None:
        """Take the prefix on `session`, or raise `PrefixTaken`. Without `record` (one-shot)
        only check, leaving the owner record as it is."""
        owner, status = self.topics.owner, self.topics.status
        found = (await session.scan([owner, status], lambda _t, _p: True,
                                    self.topics.scan_marker_prefix)).found
        other = OwnerRecord.decode(found.get(owner, b""))
        if other is not None and other.instance != self.me.instance \
                and found.get(status) == b"online":
            live = await self._answer(session)
            if live is not None:
                raise PrefixTaken(taken_message(self.topics, live))
            log.info("the owner record names %s, which did not answer within %.0f s: taking "
                     "over MQTT_TOPIC_PREFIX=%r", other.describe(), PROBE_TIMEOUT,
                     self.topics.topic_prefix)
        if not record:
            return
        # Set before subscribing: a rival's record can arrive while our own is in flight.
        self._session = session
        self._scanned = other.instance if other is not None else None
        await session.subscribe(owner, self._on_owner)
        await session.publish_one(owner, self.me.encode())
        await session.subscribe(self.ping_topic, self._on_ping)
        await session.subscribe(status, self._on_status)

    async def go_online(self, session: BrokerSession) -> None:
        """Publish `online`; a refusal (ACL) is reported and the service carries on."""
        try:
            await session.set_status(True)
        except BrokerRefused as exc:
            self._on_problem(f"Home Assistant shows every entity unavailable: {exc}")
            return
        self._on_problem(None)

    async def _answer(self, session: BrokerSession) -> OwnerRecord | None:
        """The instance that answers a ping within `PROBE_TIMEOUT`, if any does."""
        nonce = secrets.token_hex(8)
        while not self._alive.empty():
            self._alive.get_nowait()
        await session.subscribe(self.alive_topic, self._on_alive)
        await session.client.publish(self.ping_topic, nonce.encode(), qos=1)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PROBE_TIMEOUT
        while (left := deadline - loop.time()) > 0:
            try:
                answer = await asyncio.wait_for(self._alive.get(), left)
            except TimeoutError:
                return None
            heard, _, record = answer.partition(b" ")
            if heard == nonce.encode() and (live := OwnerRecord.decode(record)) is not None:
                return live
        return None

    def _on_owner(self, _topic: str, payload: bytes, retained: bool) -> None:
        """Another instance wrote its record while we hold the prefix: two started at the
        same moment (both found it free). The lower instance id keeps it."""
        other = OwnerRecord.decode(payload)
        session = self._session
        if other is None or other.instance == self.me.instance or session is None:
            return
        if retained and other.instance == self._scanned:
            return  # the record the scan found and took over: its writer did not answer
        if other.instance < self.me.instance:
            if self._on_taken is not None:
                self._on_taken(taken_message(self.topics, other))
            return
        log.warning("%s claimed MQTT_TOPIC_PREFIX=%r as this instance did; it yields to this "
                    "one", other.describe(), self.topics.topic_prefix)
        self._tasks.add(task := asyncio.create_task(session.publish_one(
            self.topics.owner, self.me.encode())))
        task.add_done_callback(self._tasks.discard)

    def _on_alive(self, _topic: str, payload: bytes, _retained: bool) -> None:
        self._alive.put_nowait(payload)

    async def _on_ping(self, _topic: str, payload: bytes, retained: bool) -> None:
        session = self._session
        if session is None or retained or session.closed.is_set():
            return
        answer = payload[:32] + b" " + self.me.encode()
        try:
            await session.client.publish(self.alive_topic, answer, qos=0)
        except Exception as exc:
            log.debug("could not answer a ping: %s", exc)

    def _on_status(self, _topic: str, payload: bytes, retained: bool) -> None:
        # A retained `offline` replayed as we subscribe is our own Last Will of an earlier
        # connection: the connection loop publishes `online` anyway.
        session = self._session
        if payload == b"online" or retained or session is None or session.closed.is_set() \
                or self._repair is not None:
            return
        # Not awaited here: this runs in the session's reader, which must go on reading.
        self._repair = asyncio.create_task(self._republish(session, payload),
                                           name="status-repair")

    async def _republish(self, session: BrokerSession, payload: bytes) -> None:
        try:
            # A broker that shuts down sends our own Last Will to us before it closes our
            # connection: that `offline` is no stray one, and the reconnect repairs it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.closed.wait(), REPAIR_DELAY)
            if session.closed.is_set():
                return
            log.warning("%s says %r although this instance is connected: publishing online "
                        "again", self.topics.status, payload.decode(errors="replace")[:40])
            await session.set_status(True)
            self.repairs += 1
            self._on_problem(None)
        except BrokerError as exc:
            if not session.closed.is_set():
                self._on_problem(f"{self.topics.status} is not online and cannot be "
                                 f"repaired: {exc}")
        finally:
            self._repair = None

    def release(self) -> None:
        """Stop answering for the prefix (before publishing `offline` at shutdown)."""
        self._session = None
