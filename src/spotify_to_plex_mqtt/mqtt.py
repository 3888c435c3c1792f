"""The only module that talks to the MQTT client: connect, scan retained messages, publish."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Self, TypeVar

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.client import MQTT_ERR_CONN_LOST, MQTT_ERR_NO_CONN, topic_matches_sub

from .config import MqttSettings

log = logging.getLogger(__name__)

MAX_INFLIGHT = 64
SCAN_TIMEOUT = 15.0
Owned = Callable[[str, bytes], bool]
Handler = Callable[[str, bytes, bool], Awaitable[None] | None]
T = TypeVar("T")


class BrokerError(Exception):
    """The broker cannot be reached or refused us; the message is safe to show the user."""


class _ConnectionLost(BrokerError):
    """The connection dropped while an operation waited for the broker's answer."""


def _tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    url = settings.url
    if url is None or not url.tls:
        return None
    context = ssl.create_default_context(
        cafile=str(settings.ca_file) if settings.ca_file else None
    )
    if settings.tls_insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _describe(exc: BaseException, settings: MqttSettings) -> str:
    """Explain a connection failure by host and port, without the password."""
    url = settings.url
    where = f"{url.host}:{url.port}" if url else "the broker"
    text = str(exc)
    if settings.password:
        text = text.replace(settings.password.reveal(), "********")
    lowered = text.lower()
    # CONNACK codes 4/5 (3.1.1) mean bad credentials; paho's own error codes 4/7 on other
    # calls mean the connection is gone (MQTT_ERR_NO_CONN, MQTT_ERR_CONN_LOST).
    refused = isinstance(exc, MqttConnectError)
    if "not authori" in lowered or "bad user" in lowered or (
            refused and ("code:4]" in lowered or "code:5]" in lowered)):
        return (f"The MQTT broker at {where} refused the credentials of user "
                f"{settings.username or '(none)'!r}: check MQTT_USERNAME and MQTT_PASSWORD.")
    if not refused and isinstance(exc, aiomqtt.MqttCodeError) and exc.rc in (
            MQTT_ERR_NO_CONN, MQTT_ERR_CONN_LOST):
        return f"The connection to the MQTT broker at {where} was lost ({text})."
    if "certificate" in lowered or "ssl" in lowered:
        return (f"TLS with the MQTT broker at {where} failed ({text}): check MQTT_CA_FILE, "
                "or set MQTT_TLS_INSECURE=true for a self-signed test broker.")
    return (f"Cannot reach the MQTT broker at {where} ({text}): check MQTT_BROKER_URL and "
            "that the broker is running.")


class BrokerSession:
    """One connection to the broker, with Last Will `offline` on the status topic.

    Use as `async with BrokerSession(...) as session:`; a new session per connection, since
    the underlying client does not reconnect by itself.
    """

    def __init__(self, settings: MqttSettings, *, client_id: str | None = None,
                 max_inflight: int = MAX_INFLIGHT, read_only: bool = False) -> None:
        if settings.url is None:
            raise ValueError("BrokerSession needs a broker URL")
        self.settings = settings
        self.status_topic = f"{settings.topic_prefix}/status"
        self._client_id = client_id or f"spotify-to-plex-mqtt-{secrets.token_hex(4)}"
        self._max_inflight = max_inflight
        self._read_only = read_only
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None
        self._scan: dict[str, bytes] | None = None
        self._scan_owned: Owned | None = None
        self._scan_marker: str | None = None
        self._scan_done: asyncio.Event | None = None
        self._handlers: list[tuple[str, Handler]] = []
        self.closed = asyncio.Event()

    async def __aenter__(self) -> Self:
        url = self.settings.url
        assert url is not None
        password = self.settings.password.reveal() if self.settings.password else None
        self._client = aiomqtt.Client(
            url.host, url.port,
            username=self.settings.username, password=password,
            identifier=self._client_id,
            # A read-only session (dry run) must not mark the real service offline.
            will=None if self._read_only else aiomqtt.Will(
                self.status_topic, b"offline", qos=1, retain=True),
            transport=url.transport, websocket_path=url.path,
            tls_context=_tls_context(self.settings),
            tls_insecure=self.settings.tls_insecure if url.tls else None,
            max_inflight_messages=self._max_inflight,
            timeout=10, keepalive=30, clean_session=True,
            logger=logging.getLogger("spotify_to_plex_mqtt.paho"),
        )
        self._client.pending_calls_threshold = self._max_inflight * 4
        try:
            await self._client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise BrokerError(_describe(exc, self.settings)) from None
        except ssl.SSLError as exc:
            raise BrokerError(_describe(exc, self.settings)) from None
        self._reader = asyncio.create_task(self._read(), name="mqtt-reader")
        return self

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
                self._on_message(topic, payload)
                for pattern, handler in self._handlers:
                    if topic_matches_sub(pattern, topic):
                        result = handler(topic, payload, bool(message.retain))
                        if result is not None:
                            await result
        except aiomqtt.MqttError as exc:
            log.debug("reader stopped: %s", exc)
        finally:
            self.closed.set()
            if self._scan_done is not None:
                self._scan_done.set()

    def _on_message(self, topic: str, payload: bytes) -> None:
        if self._scan is None:
            return
        if topic == self._scan_marker:
            assert self._scan_done is not None
            self._scan_done.set()
        elif self._scan_owned is not None and self._scan_owned(topic, payload):
            if payload:
                self._scan[topic] = payload
            else:
                self._scan.pop(topic, None)

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
            raise _ConnectionLost("the connection to the MQTT broker was lost")
        return task.result()

    async def subscribe(self, pattern: str, handler: Handler) -> None:
        """Call `handler(topic, payload, retained)` for every message matching `pattern`."""
        self._handlers.append((pattern, handler))
        await self.client.subscribe(pattern, qos=1)

    async def scan(self, filters: Sequence[str], owned: Owned, marker_prefix: str,
                   wait_s: float = SCAN_TIMEOUT) -> dict[str, bytes]:
        """Collect the retained messages under `filters` for which `owned` holds.

        After subscribing we publish a marker on a topic that one of the filters matches:
        the broker sends it after the retained messages, so its arrival ends the scan.
        The subscription is QoS 0 because brokers cap queued QoS 1 messages per client
        (Mosquitto: 1000) and drop the rest, which would lose retained messages.
        """
        marker = f"{marker_prefix}/{secrets.token_hex(8)}"
        self._scan, self._scan_owned, self._scan_marker = {}, owned, marker
        self._scan_done = asyncio.Event()
        try:
            await self._while_connected(self.client.subscribe([(f, 0) for f in filters]))
            await self._while_connected(self.client.publish(marker, b"", qos=1))
            try:
                await asyncio.wait_for(self._scan_done.wait(), wait_s)
            except TimeoutError:
                log.warning("Reading retained messages took over %.0f s; continuing with the "
                            "%d read so far", wait_s, len(self._scan))
            if self.closed.is_set():
                raise BrokerError("the connection to the MQTT broker was lost while reading "
                                  "retained messages")
            await self._while_connected(self.client.unsubscribe(list(filters)))
            return self._scan
        except aiomqtt.MqttError as exc:
            raise BrokerError(_describe(exc, self.settings)) from None
        finally:
            self._scan = self._scan_owned = self._scan_marker = None
            self._scan_done = None

    async def publish_many(self, messages: Sequence[tuple[str, bytes]],
                           on_ack: Callable[[str, bytes], None] | None = None) -> int:
        """Publish retained QoS 1 messages, at most `max_inflight` unacknowledged at once.

        Returns how many the broker acknowledged; raises `BrokerError` on the first failure.
        """
        if self._read_only:
            raise RuntimeError("a read-only session publishes nothing")
        client = self.client
        done = 0
        queue = iter(messages)

        async def worker() -> None:
            nonlocal done
            for topic, payload in queue:
                await client.publish(topic, payload, qos=1, retain=True, timeout=30)
                done += 1
                if on_ack is not None:
                    on_ack(topic, payload)

        async def publish_all() -> None:
            try:
                async with asyncio.TaskGroup() as group:
                    for _ in range(min(self._max_inflight, len(messages))):
                        group.create_task(worker())
            except* aiomqtt.MqttError as errors:
                raise BrokerError(
                    f"publishing to the MQTT broker failed after {done} of {len(messages)} "
                    f"messages: {_describe(errors.exceptions[0], self.settings)}"
                ) from None

        try:
            await self._while_connected(publish_all())
        except _ConnectionLost:
            raise BrokerError(
                f"publishing to the MQTT broker failed after {done} of {len(messages)} "
                "messages: the connection was lost"
            ) from None
        return done

    async def set_status(self, online: bool) -> None:
        """Publish the retained availability message."""
        try:
            await self.client.publish(self.status_topic, b"online" if online else b"offline",
                                      qos=1, retain=True)
        except aiomqtt.MqttError as exc:
            raise BrokerError(_describe(exc, self.settings)) from None
