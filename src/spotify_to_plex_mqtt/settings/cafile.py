"""Checking that MQTT_CA_FILE holds PEM certificates, before any connection is tried.

A key, a DER certificate or any other file made `ssl` raise `NO_CERTIFICATE_OR_CRL_FOUND`
at the first connection, as a traceback. Loading the file into a throw-away context at start
turns that into a configuration error that says which format is expected. The file's content
is never quoted: a mistaken path may name a private key.
"""

from __future__ import annotations

import ssl
from pathlib import Path

EXAMPLE = "MQTT_CA_FILE=/etc/ssl/certs/my-broker-ca.pem"
EXPECTED = "PEM certificates (text starting with -----BEGIN CERTIFICATE-----)"


def _looks_like(head: bytes) -> str:
    if b"PRIVATE KEY-----" in head:
        return "it holds a private key, not a certificate"
    if head[:1] == b"\x30":
        return ("it looks like a DER (binary) certificate; convert it with "
                "`openssl x509 -inform der -in ca.der -out ca.pem`")
    if not head.strip():
        return "it is empty"
    return "it holds no certificate"


def ca_file_problem(path: Path) -> str | None:
    """Why `path` cannot be used as the CA file, or None when it holds a PEM certificate."""
    if not path.is_file():  # a FIFO or a device is not read at all
        return f"names {str(path)!r}, which is not a readable file"
    try:
        with path.open("rb") as handle:
            head = handle.read(64 * 1024)
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(path))
    except (ssl.SSLError, ValueError):  # SSLError first: it is an OSError
        return f"names {str(path)!r}, which is not {EXPECTED}: {_looks_like(head)}"
    except OSError as exc:
        return f"names {str(path)!r}, which cannot be read ({exc.strerror})"
    return None
