"""The only module that talks to the MQTT client: connect, scan retained messages, publish."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import aiomqtt
from paho.mqtt.client import topic_matches_sub

from ..core.discovery import Topics
from ..core.mirror import Mirror
from ..settings.config import MqttSettings
from ._paho import KeepaliveClient, paho_of
from .broker_errors import (
    PAHO_LOG,
    PROTOCOLS,
    BrokerError,
    BrokerRefused,
    ConnectionLost,
    describe,
    failed,
    no_v5,
    reason,
)
from .refusals import Refused
from .refusals import describe as describe_refused
from .retained import (
    SCAN_TIMEOUT,
    LostWhileReading,
    Owned,
    ReadDenied,
    Retained,
    Tap,
    read_retained,
)
from .tls import tls_context
from .window import AckWindow, PublishFailed

__all__ = ["MAX_INFLIGHT", "PAHO_LOG", "BrokerError", "BrokerRefused", "BrokerSession"]

log = logging.getLogger(__name__)

MAX_INFLIGHT = 64
# A broker without MQTT 5 may not answer its CONNECT at all (amqtt): 3.1.1 is tried then.
V5_CONNACK = 4.0
Handler = Callable[[str, bytes, bool], Awaitable[None] | None]
T = TypeVar("T")


KEEPALIVE = 30


class BrokerSession:
    """One connection to the broker, with Last Will `offline` on the status topic.

    Use as `async with BrokerSession(...) as session:`; a new session per connection, since
    the underlying client does not reconnect by itself.
    """

    def __init__(self, settings: MqttSettings, *, client_id: str | None = None,
                 max_inflight: int = MAX_INFLIGHT, read_only: bool = False,
                 will: bool = True, roots: tuple[str, ...] = ()) -> None:
        if settings.url is None:
            raise ValueError("BrokerSession needs a broker URL")
        self.settings = settings
        self.status_topic = Topics(settings.topic_prefix, settings.discovery_prefix).status
        self._client_id = client_id or f"spotify-to-plex-mqtt-{secrets.token_hex(4)}"
        self._max_inflight = max_inflight
        self._read_only = read_only
        # Without it (purge), a dropped connection leaves no `offline` behind.
        self._will = will and not read_only
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None
        self._taps: list[Tap] = []
        # Our retained messages as of the last sync on this connection (see `sync`).
        self.mirror: Mirror | None = None
        self._handlers: list[tuple[str, Handler]] = []
        self.closed = asyncio.Event()
        # Our topic roots, for the ACL lines of a refusal (see `refusals`).
        self.roots = roots or (settings.topic_prefix, settings.discovery_prefix)
        self.protocol = aiomqtt.ProtocolVersion.V5

    def _new_client(self, protocol: aiomqtt.ProtocolVersion) -> aiomqtt.Client:
        url = self.settings.url
        assert url is not None
        password = self.settings.password.reveal() if self.settings.password else None
        v5 = protocol == aiomqtt.ProtocolVersion.V5
        return KeepaliveClient(
            url.host, url.port,
            username=self.settings.username, password=password,
            identifier=self._client_id,
            # A read-only session (dry run) must not mark the real service offline.
            will=None if not self._will else aiomqtt.Will(
                self.status_topic, b"offline", qos=1, retain=True),
            transport=url.transport, websocket_path=url.path,
            tls_context=tls_context(self.settings),
            tls_insecure=self.settings.tls_insecure if url.tls else None,
            # Unlimited in paho: `_AckWindow` bounds the bulk, and paho's own bound costs a
            # scan of every unacknowledged message per PUBACK.
            max_inflight_messages=0,
            # Without it, a sync of a few messages waits ~40 ms per burst on loopback:
            # Nagle holds the second PUBLISH until the broker's delayed ACK of the first.
            # (Not applied to websockets: aiomqtt sees paho's wrapper, not the socket.)
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            timeout=10, keepalive=KEEPALIVE, clean_session=None if v5 else True,
            protocol=protocol, logger=PAHO_LOG,
        )

    async def __aenter__(self) -> Self:
        choices = PROTOCOLS[self.settings.protocol]
        for attempt, protocol in enumerate(choices):
            client = self._new_client(protocol)
            client.pending_calls_threshold = self._max_inflight * 4
            self._note_receive_maximum(client)
            last = attempt + 1 == len(choices)
            timeout, client.timeout = client.timeout, client.timeout if last else V5_CONNACK
            try:
                await client.__aenter__()
                client.timeout = timeout
            except aiomqtt.MqttError as exc:
                if attempt + 1 < len(choices) and no_v5(exc):
                    log.info("the MQTT broker does not speak MQTT 5 (%s): using 3.1.1, which "
                             "cannot report refused publishes", exc)
                    continue
                raise BrokerError(describe(exc, self.settings)) from None
            except ssl.SSLError as exc:
                raise BrokerError(describe(exc, self.settings)) from None
            self._client, self.protocol = client, protocol
            break
        self._reader = asyncio.create_task(self._read(), name="mqtt-reader")
        return self

    def _note_receive_maximum(self, client: aiomqtt.Client) -> None:
        """Bound the publishing window by the broker's Receive Maximum (MQTT 5 CONNACK):
        a broker may drop a client that has more QoS 1 publishes unacknowledged."""
        paho = paho_of(client)
        chained = paho.on_connect

        def on_connect(*args: Any) -> None:
            limit = getattr(args[-1], "ReceiveMaximum", None) if args else None
            if isinstance(limit, int) and limit > 0:
                self._max_inflight = min(self._max_inflight, limit)
            if chained is not None:
                chained(*args)

        paho.on_connect = on_connect

    @property
    def v5(self) -> bool:
        """Whether the broker reports refusals (MQTT 5 reason codes)."""
        return self.protocol == aiomqtt.ProtocolVersion.V5

    def refused(self, refused: list[Refused]) -> BrokerRefused:
        """The error that fails the operation: the topics and the ACL lines to add."""
        return BrokerRefused(describe_refused(refused, self.roots, self.settings.username),
                             refused)

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._reader is not None:
            self._reader.cancel()
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.__aexit__(None, None, None)
            except aiomqtt.MqttError as err:
                log.debug("disconnect: %s", err)
        self.closed.set()

    @property
    def client(self) -> aiomqtt.Client:
        if self._client is None:
            raise BrokerError("not connected to the MQTT broker")
        return self._client

    async def _read(self) -> None:
        try:
            async for message in self.client.messages:
                topic = message.topic.value
                payload = message.payload if isinstance(message.payload, bytes) else \
                    str(message.payload or "").encode()
                for tap in self._taps:
                    tap(topic, payload)
                for pattern, handler in self._handlers:
                    if topic_matches_sub(pattern, topic):
                        result = handler(topic, payload, bool(message.retain))
                        if result is not None:
                            await result
        except aiomqtt.MqttError as exc:
            log.debug("reader stopped: %s", exc)
        finally:
            self.closed.set()

    def add_tap(self, tap: Tap) -> None:
        """Show `tap` every message received, before the handlers."""
        self._taps.append(tap)

    def remove_tap(self, tap: Tap) -> None:
        self._taps.remove(tap)

    async def _while_connected(self, operation: Awaitable[T]) -> T:
        """`operation`, abandoned with `BrokerError` as soon as the connection is lost.

        aiomqtt does not fail pending SUBSCRIBE/PUBLISH calls on a disconnect: they wait for
        their timeout (10-30 s), and with them the sync and the resync queued behind it.
        """
        task = asyncio.ensure_future(operation)
        lost = asyncio.ensure_future(self.closed.wait())
        try:
            await asyncio.wait((task, lost), return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not task.done():
                task.cancel()
        if not task.done() or task.cancelled():
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task
            raise ConnectionLost("the connection to the MQTT broker was lost")
        return task.result()

    async def subscribe(self, pattern: str, handler: Handler) -> None:
        """Call `handler(topic, payload, retained)` for every message matching `pattern`.

        Raises `BrokerRefused` when the SUBACK refuses it (an ACL)."""
        self._handlers.append((pattern, handler))
        try:
            codes = await self.client.subscribe(pattern, qos=1)
        except aiomqtt.MqttError as exc:
            raise BrokerError(describe(exc, self.settings)) from None
        denied = [Refused("subscribe to", pattern, reason(c)) for c in codes if failed(c)]
        if denied:
            raise self.refused(denied)

    async def scan(self, filters: Sequence[str], owned: Owned, marker_prefix: str, *,
                   expected: Sequence[str] = (), wait_s: float = SCAN_TIMEOUT,
                   probe_prefix: str | None = None) -> Retained:
        """Our retained messages under `filters`, completed by `expected` (see `retained`)."""
        try:
            return await self._while_connected(read_retained(
                self, filters, owned, marker_prefix, expected=expected, wait_s=wait_s,
                probe_prefix=probe_prefix))
        except ReadDenied as exc:
            raise self.refused([Refused("read", exc.topic_filter, "a probe published under "
                                        "it never came back: reading or writing it is "
                                        "denied")]) from None
        except (LostWhileReading, ConnectionLost):
            raise BrokerError("the connection to the MQTT broker was lost while reading "
                              "retained messages") from None
        except aiomqtt.MqttError as exc:
            raise BrokerError(describe(exc, self.settings)) from None

    async def publish_many(self, messages: Sequence[tuple[str, bytes]],
                           on_ack: Callable[[str, bytes], None] | None = None) -> int:
        """Publish retained QoS 1 messages, at most `max_inflight` unacknowledged at once.

        Returns how many the broker acknowledged; raises `BrokerError` on the first failure.
        """
        if self._read_only:
            raise RuntimeError("a read-only session publishes nothing")
        window = AckWindow(self.client, self._max_inflight, on_ack)
        try:
            await self._while_connected(window.publish_all(messages))
        except ConnectionLost:
            raise BrokerError(window.failure(len(messages), "the connection was lost")) from None
        except PublishFailed as exc:
            raise BrokerError(window.failure(len(messages), str(exc))) from None
        if window.refused:
            raise self.refused([Refused("publish to", t, r) for t, r in window.refused])
        return window.acked

    async def publish_one(self, topic: str, payload: bytes) -> None:
        """One retained QoS 1 message, through the same checks as `publish_many`."""
        window = AckWindow(self.client, 1, None)
        try:
            await asyncio.wait_for(self._while_connected(window.publish_all(
                [(topic, payload)])), self.client.timeout)
        except (PublishFailed, TimeoutError) as exc:
            raise BrokerError(f"publishing {topic} failed: {exc or 'no answer'}") from None
        if window.refused:
            raise self.refused([Refused("publish to", t, r) for t, r in window.refused])

    async def set_status(self, online: bool) -> None:
        """Publish the retained availability message."""
        try:
            await self.publish_one(self.status_topic, b"online" if online else b"offline")
        except ConnectionLost:
            raise BrokerError("the connection to the MQTT broker was lost") from None
        except aiomqtt.MqttError as exc:
            raise BrokerError(describe(exc, self.settings)) from None
