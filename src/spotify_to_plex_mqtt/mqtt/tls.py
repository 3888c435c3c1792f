"""The TLS context of a broker connection, from MQTT_CA_FILE and MQTT_TLS_INSECURE."""

from __future__ import annotations

import ssl

from ..settings.config import MqttSettings
from .broker_errors import BrokerError


def tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    url = settings.url
    if url is None or not url.tls:
        return None
    try:
        context = ssl.create_default_context(
            cafile=str(settings.ca_file) if settings.ca_file else None
        )
    except (ssl.SSLError, OSError) as exc:
        # Checked at start (cafile.py); this is the file replaced or removed since.
        raise BrokerError(f"MQTT_CA_FILE {str(settings.ca_file)!r} cannot be used ("
                          f"{getattr(exc, 'reason', None) or exc.strerror}): it must hold PEM "
                          "certificates") from None
    if settings.tls_insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
