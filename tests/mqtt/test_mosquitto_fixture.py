"""The real-Mosquitto test infrastructure works: auth, TLS, websockets, restarts, persistence."""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import Callable

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from mosquitto import (
    DEFAULT_PASSWORD,
    Mosquitto,
    MqttConnectError,
    collect,
    connected_client,
    publish_retained,
    retained,
)

pytestmark = pytest.mark.broker

WRONG = "wrong-password"
NOT_AUTHORIZED = 135  # MQTT 5 reason code; paho maps the MQTT 3.1.1 CONNACK code 5 onto it


def _topic(prefix: str = "fixture-test") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:8]}"


def _publish_with(client: mqtt.Client, topic: str, payload: bytes) -> None:
    info = client.publish(topic, payload, qos=1)
    info.wait_for_publish(5.0)
    assert info.is_published()


def test_broker_properties(mosquitto: Mosquitto) -> None:
    assert mosquitto.running
    assert mosquitto.host == "127.0.0.1"
    assert mosquitto.url == f"mqtt://127.0.0.1:{mosquitto.port}"
    assert (mosquitto.username, mosquitto.password) == ("tester", "s3cret-Broker-Pw!")
    assert "mosquitto version" in mosquitto.log_text()
    assert "running" in mosquitto.log_text()


def test_retained_round_trip_and_clear(clean_broker: Mosquitto) -> None:
    assert retained(clean_broker) == {}
    messages = {"fixture-test/a": b"1", "fixture-test/b/c": b'{"x": 2}', "other/d": b"\x00\xff"}
    publish_retained(clean_broker, messages)
    assert retained(clean_broker) == messages
    assert retained(clean_broker, ["fixture-test/#"]) == {
        "fixture-test/a": b"1",
        "fixture-test/b/c": b'{"x": 2}',
    }
    publish_retained(clean_broker, {"fixture-test/a": b""})  # empty payload clears
    assert set(retained(clean_broker)) == {"fixture-test/b/c", "other/d"}


def test_collect_sees_live_messages(clean_broker: Mosquitto) -> None:
    topic = _topic()

    def trigger() -> None:
        with connected_client(clean_broker) as client:
            for i in range(3):
                _publish_with(client, f"{topic}/{i}", str(i).encode())

    got = collect(clean_broker, f"{topic}/#", lambda m: len(m) >= 3, after_subscribe=trigger)
    assert sorted(got) == [(f"{topic}/{i}", str(i).encode()) for i in range(3)]


def test_collect_times_out(mosquitto: Mosquitto) -> None:
    with pytest.raises(TimeoutError):
        collect(mosquitto, _topic(), bool, timeout=0.2)


@pytest.mark.parametrize(
    ("username", "password", "anonymous"),
    [("tester", WRONG, False), ("nobody", DEFAULT_PASSWORD, False), (None, None, True)],
)
def test_bad_credentials_are_refused(
    mosquitto: Mosquitto, username: str | None, password: str | None, anonymous: bool
) -> None:
    with (
        pytest.raises(MqttConnectError) as refused,
        connected_client(mosquitto, username=username, password=password, anonymous=anonymous),
    ):
        pytest.fail("the broker accepted bad credentials")
    assert refused.value.reason_code is not None
    assert refused.value.reason_code.value == NOT_AUTHORIZED
    assert refused.value.reason_code == "Not authorized"


def test_tls_listener_with_generated_ca(mosquitto_tls_ws: Mosquitto) -> None:
    broker = mosquitto_tls_ws
    assert broker.ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")
    topic = _topic()

    def publish_over_tls() -> None:
        with connected_client(broker, tls=True) as client:
            _publish_with(client, topic, b"over tls")

    got = collect(broker, topic, bool, after_subscribe=publish_over_tls)
    assert got == [(topic, b"over tls")]


def test_tls_listener_rejects_unknown_ca(mosquitto_tls_ws: Mosquitto) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.tls_set()  # system CAs only: the generated CA is not trusted
    with pytest.raises(ssl.SSLCertVerificationError):
        client.connect(mosquitto_tls_ws.host, mosquitto_tls_ws.tls_port)


def test_tls_listener_requires_password(mosquitto_tls_ws: Mosquitto) -> None:
    with (
        pytest.raises(MqttConnectError),
        connected_client(mosquitto_tls_ws, tls=True, password=WRONG),
    ):
        pytest.fail("the TLS listener accepted a wrong password")


def test_websockets_listener(mosquitto_tls_ws: Mosquitto) -> None:
    broker = mosquitto_tls_ws
    topic = _topic()
    with connected_client(broker, transport="websockets") as client:
        info = client.publish(topic, b"over websockets", qos=1, retain=True)
        info.wait_for_publish(5.0)
        assert info.is_published()
    try:
        assert retained(broker, [topic]) == {topic: b"over websockets"}
    finally:
        publish_retained(broker, {topic: b""})
    with (
        pytest.raises(MqttConnectError),
        connected_client(broker, transport="websockets", anonymous=True),
    ):
        pytest.fail("the websockets listener accepted an anonymous client")


def test_anonymous_listener_uses_per_listener_settings(
    make_mosquitto: Callable[..., Mosquitto],
) -> None:
    broker = make_mosquitto(anonymous_listener=True)
    assert "per_listener_settings true" in broker.config_file.read_text()
    with connected_client(broker, port=broker.anonymous_port, anonymous=True):
        pass
    with pytest.raises(MqttConnectError), connected_client(broker, anonymous=True):
        pytest.fail("the authenticated listener accepted an anonymous client")
    with connected_client(broker):
        pass


def test_restart_without_persistence_loses_retained(fresh_mosquitto: Mosquitto) -> None:
    broker = fresh_mosquitto
    port = broker.port
    publish_retained(broker, {"fixture-test/kept?": b"no"})
    broker.restart()
    assert broker.running
    assert broker.port == port
    assert retained(broker) == {}


def test_restart_with_persistence_keeps_retained(
    make_mosquitto: Callable[..., Mosquitto],
) -> None:
    broker = make_mosquitto(persistence=True)
    port = broker.port
    publish_retained(broker, {"fixture-test/kept": b"yes"})
    broker.restart()  # SIGTERM: mosquitto saves its database on the way out
    assert broker.port == port
    assert retained(broker) == {"fixture-test/kept": b"yes"}

    publish_retained(broker, {"fixture-test/unsaved": b"lost"})
    broker.kill()  # SIGKILL: no save (default autosave_interval is 1800 s)
    broker.start()
    assert broker.port == port
    assert retained(broker) == {"fixture-test/kept": b"yes"}


def test_autosave_on_changes_survives_kill(make_mosquitto: Callable[..., Mosquitto]) -> None:
    broker = make_mosquitto(persistence=True, autosave_interval=1, autosave_on_changes=True)
    database = broker.workdir / "data" / "mosquitto.db"
    assert not database.exists()
    publish_retained(broker, {"fixture-test/autosaved": b"yes"})
    deadline = time.monotonic() + 5.0
    while not database.exists():  # saved after one change, from mosquitto's main loop
        assert time.monotonic() < deadline, "mosquitto never wrote its database"
        time.sleep(0.02)
    broker.kill()
    broker.start()
    assert retained(broker) == {"fixture-test/autosaved": b"yes"}
