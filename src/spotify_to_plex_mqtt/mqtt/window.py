"""Publishing many retained QoS 1 messages with a bounded window of unacknowledged ones."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from collections.abc import Callable, Sequence
from typing import Any

import aiomqtt
from paho.mqtt.client import MQTT_ERR_SUCCESS, error_string

from ..errors import Error
from ._paho import paho_of

PUBACK_TIMEOUT = 30.0
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class PublishFailed(Error):
    """paho refused a publish, or the broker stopped acknowledging."""


class AckWindow:
    """QoS 1 publishing straight through paho, counting PUBACKs in its `on_publish`.

    aiomqtt's `publish()` costs an event, a `wait_for` task and scans of its pending calls
    per message: half of a bulk sync's time. Others' publishes (aiomqtt's) are passed on.
    """

    def __init__(self, client: aiomqtt.Client, size: int,
                 on_ack: Callable[[str, bytes], None] | None) -> None:
        self._paho = paho_of(client)
        self._size = size
        self._pending: dict[int, tuple[str, bytes]] = {}
        self._freed = asyncio.Event()
        self._low_water = 0
        self._on_ack = on_ack
        self._done = False  # finished, but another window hooked on top: pass everything on
        self._merging = False  # Nagle on, while a bulk is being sent
        self.acked = 0
        # (topic, reason) of the publishes an MQTT 5 broker answered with a failure code
        # (an ACL's "Not authorized"): acknowledged, but not published.
        self.refused: list[tuple[str, str]] = []

    def _on_publish(self, chained: Callable[..., None] | None, client: Any, userdata: Any,
                    mid: int, *rest: Any) -> None:
        message = None if self._done else self._pending.pop(mid, None)
        if message is None:
            if chained is not None:
                chained(client, userdata, mid, *rest)
            return
        if self._pending and not self._merging:
            self._ack_at_once()  # more PUBACKs to come: see `_ack_at_once`
        reason = rest[0] if rest else None
        if getattr(reason, "is_failure", False):
            self.refused.append((message[0], str(reason)))
        else:
            self.acked += 1
            if self._on_ack is not None:
                self._on_ack(*message)
        if len(self._pending) <= self._low_water:
            self._freed.set()

    def failure(self, total: int, reason: str) -> str:
        return (f"publishing to the MQTT broker failed after {self.acked} of {total} "
                f"messages: {reason}")

    async def _wait_until(self, low_water: int) -> None:
        """Wait until at most `low_water` publishes are unacknowledged.

        The publishing loop waits for one free slot at a time, so the window stays full;
        no PUBACK for `PUBACK_TIMEOUT` means the broker is gone.
        """
        if len(self._pending) <= low_water:
            return
        self._low_water = low_water
        self._freed.clear()
        try:
            async with asyncio.timeout(PUBACK_TIMEOUT):
                await self._freed.wait()
        except TimeoutError:
            raise PublishFailed(
                f"no acknowledgement within {PUBACK_TIMEOUT:g} s") from None

    def _coalesce(self, on: bool) -> None:
        """Let TCP merge small packets (Nagle's algorithm) or send each at once.

        The connection sends each packet at once (`TCP_NODELAY`), so that a sync of a few
        messages is not held for a delayed ACK. A bulk of thousands is ~20 % faster with
        merging: fewer segments for the broker to read while its PUBACKs flow back.
        Turning `TCP_NODELAY` on again sends what is held at once.
        """
        self._merging = on
        self._set(socket.TCP_NODELAY, 0 if on else 1)

    def _ack_at_once(self) -> None:
        """Send the ACK the kernel is holding back, now (Linux `TCP_QUICKACK`).

        A broker with Nagle's algorithm on (Mosquitto's default) holds the second and third
        PUBACK of a small sync until we acknowledge the segment of the first, which the
        kernel delays up to 40 ms when we have nothing to send. Set after a PUBACK was read,
        the option sends that pending ACK at once.
        """
        if _QUICKACK is not None:
            self._set(_QUICKACK, 1)

    def _set(self, option: int, value: int) -> None:
        sock = self._paho.socket()
        if isinstance(sock, socket.socket):  # not paho's websocket wrapper
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, option, value)

    async def publish_all(self, messages: Sequence[tuple[str, bytes]]) -> None:
        paho = self._paho
        chained = paho.on_publish
        hook = paho.on_publish = functools.partial(self._on_publish, chained)
        if len(messages) > self._size:
            self._coalesce(True)
        try:
            for topic, payload in messages:
                if len(self._pending) >= self._size:
                    await self._wait_until(self._size - 1)
                # The PUBACK cannot beat `publish()` here: paho reads on this same loop.
                info = paho.publish(topic, payload, 1, True)
                if info.rc != MQTT_ERR_SUCCESS:
                    raise PublishFailed(error_string(info.rc))
                self._pending[info.mid] = (topic, payload)
            if self._merging:
                self._coalesce(False)  # before waiting: sends what Nagle holds
            await self._wait_until(0)
        finally:
            if self._merging:
                self._coalesce(False)
            # Windows may overlap (a sync's bulk and `online`): each hooks on top of the one
            # before; one that ends below another stays in the chain, passing PUBACKs on.
            if paho.on_publish is hook:
                paho.on_publish = chained
            else:
                self._done = True
