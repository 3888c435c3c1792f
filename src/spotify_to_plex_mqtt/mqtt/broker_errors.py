"""What the broker's answers mean: errors safe to show, refusals, protocol fallback."""

from __future__ import annotations

import logging

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.client import MQTT_ERR_CONN_LOST, MQTT_ERR_NO_CONN

from ..errors import Error
from ..secret import mask_text
from ..settings.config import MqttSettings
from .refusals import Refused


class BrokerError(Error):
    """The broker cannot be reached or refused us; the message is safe to show the user."""


class BrokerRefused(BrokerError):
    """The broker answered with failure reason codes (an ACL denied some topics)."""

    def __init__(self, message: str, refused: list[Refused]) -> None:
        super().__init__(message)
        self.refused = refused


class ConnectionLost(BrokerError):
    """The connection dropped while an operation waited for the broker's answer."""


def describe(exc: BaseException, settings: MqttSettings) -> str:
    """Explain a connection failure by host and port, without the password."""
    url = settings.url
    where = f"{url.host}:{url.port}" if url else "the broker"
    text = str(exc)
    if settings.password:
        text = mask_text(text, (settings.password.reveal(),))
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


PROTOCOLS = {
    "auto": (aiomqtt.ProtocolVersion.V5, aiomqtt.ProtocolVersion.V311),
    "5": (aiomqtt.ProtocolVersion.V5,),
    "3.1.1": (aiomqtt.ProtocolVersion.V311,),
}


def no_v5(exc: aiomqtt.MqttError) -> bool:
    """Whether a failed MQTT 5 CONNECT means "this broker does not speak 5" (CONNACK 1 in
    3.1.1's codes, 0x84 in 5's; or no CONNACK at all, as amqtt does), not bad credentials
    or an unreachable broker (those fail the 3.1.1 attempt alike, and are told then)."""
    if isinstance(exc, MqttConnectError):
        return exc.rc in (1, 0x84)
    text = str(exc).lower()
    return not any(word in text for word in ("not authori", "bad user", "errno", "ssl"))


def failed(code: object) -> bool:
    value = getattr(code, "value", code)
    return isinstance(value, int) and value >= 0x80


def reason(code: object) -> str:
    return str(code) if hasattr(code, "value") else f"code {code}"


class LateAnswers(logging.Filter):
    """aiomqtt logs an answer to a request it stopped waiting for (an UNSUBACK after the
    read's timeout, when the broker's queue was full) as an error with a traceback. Here
    that is expected: it becomes a debug line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not (isinstance(record.msg, str) and record.msg.startswith("Unexpected message ID")):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.exc_info = record.exc_text = None
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


PAHO_LOG = logging.getLogger("spotify_to_plex_mqtt.paho")
PAHO_LOG.addFilter(LateAnswers())
