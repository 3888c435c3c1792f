"""Reading retained messages past a broker's per-client queue limit (pure: a fake broker)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import aiomqtt
from paho.mqtt.client import topic_matches_sub

from spotify_to_plex_mqtt.mqtt import retained
from spotify_to_plex_mqtt.mqtt.retained import Tap, read_retained


class DroppingBroker:
    """Delivers at most `limit` packets per SUBSCRIBE, as Mosquitto's queue limit does."""

    def __init__(self, messages: dict[str, bytes], limit: int) -> None:
        self.messages = messages
        self.limit = limit
        self.taps: list[Tap] = []
        self.closed = asyncio.Event()
        self.subscribes: list[list[str]] = []
        self._queued = 0

    # the Connection protocol
    @property
    def client(self) -> aiomqtt.Client:
        return cast(aiomqtt.Client, self)

    def add_tap(self, tap: Tap) -> None:
        self.taps.append(tap)

    def remove_tap(self, tap: Tap) -> None:
        self.taps.remove(tap)

    # the client calls a read makes
    def _deliver(self, topic: str, payload: bytes) -> None:
        if self._queued >= self.limit:
            return  # dropped, as the broker's queue is full
        self._queued += 1
        loop = asyncio.get_running_loop()
        for tap in list(self.taps):
            loop.call_soon(tap, topic, payload)

    async def subscribe(self, filters: list[tuple[str, int]]) -> None:
        patterns = [f for f, _ in filters]
        self.subscribes.append(patterns)
        self._queued = 0
        wildcards = [p for p in patterns if "#" in p or "+" in p]
        for pattern in patterns:  # exact names, in order
            if pattern not in wildcards and pattern in self.messages:
                self._deliver(pattern, self.messages[pattern])
        for topic, payload in self.messages.items():
            if any(topic_matches_sub(p, topic) for p in wildcards):
                self._deliver(topic, payload)

    async def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        self._deliver(topic, payload)

    async def unsubscribe(self, filters: list[str], **_options: float) -> None:
        return None


def ours(topic: str, _payload: bytes) -> bool:
    return topic.startswith("p/")


def _read(broker: DroppingBroker, expected: list[str]) -> dict[str, bytes]:
    return asyncio.run(read_retained(broker, ["p/#"], ours, "p/_scan", expected=expected,
                                     wait_s=5.0)).found


def test_a_small_read_is_one_wildcard_round() -> None:
    messages = {f"p/items/{i}": b"x" for i in range(20)}
    broker = DroppingBroker({**messages, "other/x": b"y"}, limit=1000)
    assert _read(broker, list(messages)) == messages
    assert len(broker.subscribes) == 1


def test_what_the_broker_dropped_is_read_again_by_name(monkeypatch: Any) -> None:
    monkeypatch.setattr(retained, "QUIET", 0.05)
    messages = {f"p/items/{i}": str(i).encode() for i in range(2500)}
    broker = DroppingBroker(messages, limit=1000)
    expected = [*messages, "p/items/never-published"]
    assert _read(broker, expected) == messages
    # One wildcard round (marker dropped: ended by quiet), then exact rounds of <= CHUNK.
    exact = broker.subscribes[1:]
    assert exact
    assert all(len(f) <= retained.CHUNK + 1 for f in exact)
    assert sum(len(f) - 1 for f in exact) == len(expected) - 1000


def test_unexpected_topics_beyond_the_limit_are_not_invented(monkeypatch: Any) -> None:
    monkeypatch.setattr(retained, "QUIET", 0.05)
    messages = {f"p/items/{i}": b"x" for i in range(1500)}
    broker = DroppingBroker(messages, limit=1000)
    found = _read(broker, [])
    assert len(found) == 1000
    assert set(found) <= set(messages)


def test_the_read_says_how_many_messages_only_the_reading_by_name_found(
        monkeypatch: Any) -> None:
    monkeypatch.setattr(retained, "QUIET", 0.05)
    messages = {f"p/items/{i}": b"x" for i in range(1200)}
    broker = DroppingBroker(messages, limit=1000)
    read = asyncio.run(read_retained(broker, ["p/#"], ours, "p/_scan", expected=list(messages),
                                     wait_s=5.0))
    assert read.found == messages
    assert read.recovered == 200


def test_nothing_is_recovered_when_the_wildcard_round_was_whole() -> None:
    messages = {f"p/items/{i}": b"x" for i in range(700)}
    broker = DroppingBroker(messages, limit=1000)
    expected = [*messages, "p/items/new"]
    read = asyncio.run(read_retained(broker, ["p/#"], ours, "p/_scan", expected=expected,
                                     wait_s=5.0))
    assert (read.found, read.recovered) == (messages, 0)
    assert broker.subscribes[1:] == [["p/items/new", broker.subscribes[1][-1]]]


class DenyingMarker(DroppingBroker):
    """A broker whose ACL silently drops our publish of the marker."""

    async def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        return None


def test_a_denied_marker_ends_an_empty_round_after_a_short_quiet(monkeypatch: Any) -> None:
    monkeypatch.setattr(retained, "QUIET", 0.02)
    monkeypatch.setattr(retained, "EMPTY_QUIET", 0.1)
    broker = DenyingMarker({}, limit=1000)

    async def read() -> tuple[dict[str, bytes], float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        found = (await read_retained(broker, ["p/#"], ours, "p/_scan", expected=["p/a"],
                                     wait_s=30.0)).found
        return found, loop.time() - started

    found, took = asyncio.run(read())
    assert found == {}
    assert took < 10.0  # far below wait_s: the quiet, not the deadline, ended both rounds
    assert len(broker.subscribes) == 2  # nothing came back, so "p/a" was read by name too


def test_a_clear_seen_in_a_later_round_removes_what_an_earlier_round_found(
        monkeypatch: Any) -> None:
    monkeypatch.setattr(retained, "QUIET", 0.05)

    class Clearing(DroppingBroker):
        async def subscribe(self, filters: list[tuple[str, int]]) -> None:
            await super().subscribe(filters)
            if len(self.subscribes) == 2:  # another publisher clears p/items/0 meanwhile
                self._deliver("p/items/0", b"")

    messages = {f"p/items/{i}": b"x" for i in range(1200)}
    broker = Clearing(messages, limit=1000)
    found = _read(broker, list(messages))
    assert "p/items/0" not in found
    assert len(found) == 1199
