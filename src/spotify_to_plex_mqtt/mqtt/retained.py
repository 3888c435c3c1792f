"""Reading the broker's retained messages completely, although brokers drop what they queue.

A broker queues a bounded number of packets per client (Mosquitto: `max_queued_messages`,
default 1000, QoS 0 included) and silently drops the rest. A wildcard subscription that
matches more retained messages than that, as 10k items do, loses some of them. So a read is
a wildcard round first; then the topics we expect (what we would publish, and what we
published before) that it did not return are read again by exact name, `CHUNK` per
subscription, each round well below the limit. What a cut-short wildcard round missed and
nobody expected cannot be found this way: `Retained.recovered` tells the caller it happened.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import aiomqtt

from ..errors import Error

log = logging.getLogger(__name__)

Owned = Callable[[str, bytes], bool]
Tap = Callable[[str, bytes], None]

SCAN_TIMEOUT = 15.0
# A round that read messages and then heard nothing for this long is over: the marker that
# normally ends it can itself be dropped by a broker whose queue overflowed. Ending early is
# safe: such a round counts as cut short, and the expected topics are then read by name.
QUIET = 0.3
# A round that heard nothing at all, not even its marker, for this long is over too: the
# retained messages follow the SUBACK at once, and an ACL may deny the marker.
EMPTY_QUIET = 2.0
CHUNK = 500
UNSUBACK_TIMEOUT = 2.0


@dataclass(slots=True)
class Retained:
    """What a read found, by topic, and how many of those the wildcard round had missed."""

    found: dict[str, bytes] = field(default_factory=dict)
    recovered: int = 0


class Connection(Protocol):
    """What a read needs from the broker session (see `mqtt.BrokerSession`)."""

    @property
    def client(self) -> aiomqtt.Client: ...

    @property
    def closed(self) -> asyncio.Event: ...

    def add_tap(self, tap: Tap) -> None: ...

    def remove_tap(self, tap: Tap) -> None: ...


class LostWhileReading(Error):
    """The connection dropped during the read."""


class ReadDenied(Error):
    """A probe published under a filter never came back: the broker (its ACL) does not let
    us read that filter, although it accepted the subscription."""

    def __init__(self, topic_filter: str) -> None:
        super().__init__(topic_filter)
        self.topic_filter = topic_filter


class _Round:
    """One subscription's worth of retained messages, ended by a marker or by quiet."""

    def __init__(self, owned: Owned, marker: str, found: dict[str, bytes],
                 probe: str | None = None) -> None:
        self.owned = owned
        self.marker = marker
        self.probe = probe
        self.probe_seen = False
        # Shared by the rounds of a read, so that a clear seen in a later round applies.
        self.found = found
        self.received = 0
        self.done = asyncio.Event()

    def __call__(self, topic: str, payload: bytes) -> None:
        if topic == self.probe:
            self.probe_seen = True
        if topic in (self.marker, self.probe):
            if topic == self.marker:
                self.done.set()
            return
        self.received += 1
        if self.owned(topic, payload):
            if payload:
                self.found[topic] = payload
            else:
                self.found.pop(topic, None)


async def _wait(connection: Connection, current: _Round, wait_s: float) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + wait_s
    while not current.done.is_set() and not connection.closed.is_set():
        before = current.received
        try:
            await asyncio.wait_for(current.done.wait(), QUIET)
        except TimeoutError:
            if current.received and current.received == before:
                log.debug("retained read ended by quiet after %d messages", current.received)
                return
            if not current.received and loop.time() - started >= EMPTY_QUIET:
                log.debug("retained read ended: nothing, not even the marker %s, came back",
                          current.marker)
                return
            if loop.time() >= deadline:
                log.warning("Reading retained messages took over %.0f s; continuing with the "
                            "%d read so far", wait_s, len(current.found))
                return


async def _unsubscribe(connection: Connection, filters: list[str]) -> None:
    if connection.closed.is_set():
        return
    try:
        await connection.client.unsubscribe(filters, timeout=UNSUBACK_TIMEOUT)
    except aiomqtt.MqttError as exc:
        # The broker unsubscribed us; only its answer may have been dropped.
        log.debug("no UNSUBACK: %s", exc)


def probe_topic(probe_prefix: str) -> str:
    """A fresh probe topic: `probe_prefix` and a random tail (see `read_retained`)."""
    return f"{probe_prefix}{secrets.token_hex(8)}/config"


async def _round(connection: Connection, filters: Sequence[str], owned: Owned,
                 marker_prefix: str, *, wait_s: float, found: dict[str, bytes],
                 probe: str | None = None) -> _Round:
    # The marker has its own exact filter: exact-topic rounds have no wildcard matching it.
    # QoS 0: the broker sends it after the retained messages, and there is no PUBACK to lose.
    # The probe, if any, goes first: it arrives through the wildcard filter it tests.
    marker = f"{marker_prefix}/{secrets.token_hex(8)}" if marker_prefix else probe or ""
    current = _Round(owned, marker, found, probe)
    subscribed = [*filters, current.marker]
    client = connection.client
    connection.add_tap(current)
    try:
        try:
            await client.subscribe([(f, 0) for f in dict.fromkeys(subscribed)])
            if probe is not None and probe != current.marker:
                await client.publish(probe, b"", qos=0)
            await client.publish(current.marker, b"", qos=0)
            await _wait(connection, current, wait_s)
        finally:
            # Also after a failure: a subscription left behind would feed later rounds.
            await _unsubscribe(connection, subscribed)
        if connection.closed.is_set():
            raise LostWhileReading
    finally:
        connection.remove_tap(current)
    return current


async def _check_probe(connection: Connection, first: _Round, topic_filter: str,
                       probe_prefix: str, wait_s: float) -> None:
    """Raise `ReadDenied` unless the first round's probe, or a probe of its own, came back.

    A probe of its own, on its exact topic, tells a denial from a probe that a broker whose
    queue overflowed dropped."""
    if first.probe_seen:
        return
    probe = probe_topic(probe_prefix)
    again = await _round(connection, [], lambda _t, _p: False, "", wait_s=min(
        wait_s, EMPTY_QUIET), found={}, probe=probe)
    if not again.probe_seen:
        raise ReadDenied(topic_filter)


async def read_retained(connection: Connection, filters: Sequence[str], owned: Owned,
                        marker_prefix: str, *, expected: Sequence[str] = (),
                        wait_s: float = SCAN_TIMEOUT, probe_prefix: str | None = None
                        ) -> Retained:
    """The retained messages under `filters` for which `owned` holds, by topic.

    `expected` are topics that may hold one of ours: those the wildcard round did not return
    are read by name, since the broker may have cut that round short.
    With `probe_prefix`, a probe published on a topic under the first filter must come back,
    else `ReadDenied`: an ACL that denies reading it would make every config look missing.
    """
    result = Retained()
    probe = probe_topic(probe_prefix) if probe_prefix else None
    first = await _round(connection, filters, owned, marker_prefix, wait_s=wait_s,
                         found=result.found, probe=probe)
    if probe_prefix:
        await _check_probe(connection, first, filters[0], probe_prefix, wait_s)
    if not first.received and first.done.is_set():
        return result  # nothing was queued, so nothing was dropped
    missing = [t for t in dict.fromkeys(expected) if t not in result.found]
    if not missing:
        return result
    before = len(result.found)
    log.debug("wildcard read returned %d messages (%d ours); reading %d expected topics "
              "by name", first.received, before, len(missing))
    for start in range(0, len(missing), CHUNK):
        await _round(connection, missing[start:start + CHUNK], owned, marker_prefix,
                     wait_s=wait_s, found=result.found)
    result.recovered = max(0, len(result.found) - before)
    if result.recovered:
        log.info("%d retained messages were found only by reading their topics by name "
                 "(the broker cut its answer to the wildcard read short, or they lie outside "
                 "its filters)", result.recovered)
    return result
