"""Parsing of `MQTT_BROKER_URL` into the pieces the MQTT client needs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import SplitResult, unquote, urlsplit

from ..errors import Error
from ..secret import Secret

Transport = Literal["tcp", "websockets"]

_SCHEMES: dict[str, tuple[Transport, bool, int]] = {
    # scheme: (transport, tls, default port)
    "mqtt": ("tcp", False, 1883),
    "tcp": ("tcp", False, 1883),
    "mqtts": ("tcp", True, 8883),
    "ssl": ("tcp", True, 8883),
    "tls": ("tcp", True, 8883),
    "ws": ("websockets", False, 80),
    "wss": ("websockets", True, 443),
}

EXAMPLE = "mqtt://192.168.1.10:1883 (or mqtts://, ws://host:9001/mqtt, wss://)"


CREDENTIALS_HINT = (
    "the user name or password holds a character that must be percent-encoded "
    "(@ as %40, : as %3A, / as %2F, ? as %3F, # as %23, [ as %5B, ] as %5D, % as %25, "
    "a space as %20), "
    "or set MQTT_USERNAME and MQTT_PASSWORD instead, which need no encoding")


class BrokerUrlError(Error, ValueError):
    """The broker URL cannot be used; the message says why without echoing secrets."""


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    """Where and how to reach the broker."""

    host: str
    port: int
    transport: Transport
    tls: bool
    path: str | None = None
    username: str | None = None
    password: Secret | None = None

    @property
    def display(self) -> str:
        """A printable form: scheme, host, port and path, never credentials."""
        scheme = {("tcp", False): "mqtt", ("tcp", True): "mqtts"}.get(
            (self.transport, self.tls), "wss" if self.tls else "ws"
        )
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{self.path or ''}"


def _credentials_broke(authority: str) -> bool:
    """Whether `authority` fails to parse only because of its `user:pass@` part (an
    unencoded "[" or "]", say): the host and port after the last "@" parse on their own."""
    userinfo, at, host = authority.rpartition("@")
    if not at or not userinfo:
        return False
    try:
        _ = urlsplit(f"mqtt://{host}").port
    except ValueError:
        return False
    return True


def _split(text: str) -> tuple[SplitResult, int | None]:
    """`urlsplit`, with every failure said without quoting the URL (it may hold a password)."""
    if "://" not in text:
        raise BrokerUrlError("it has no scheme")
    # An "@" after the authority: the credentials are there, but an unencoded "/", "?" or
    # "#" in them ended the authority early. Said before the port check, which would
    # otherwise blame the port for the password's tail.
    after_scheme = text.split("://", 1)[1]
    authority = re.split(r"[/?#]", after_scheme, maxsplit=1)[0]
    # Any "@" past the authority counts, even when the authority has one of its own:
    # `ha:@pw#@host` leaves `pw` as the host name otherwise.
    misplaced_at = "@" in after_scheme[len(authority):]
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        # urlsplit's messages can quote the netloc, which may hold the password.
        if misplaced_at or _credentials_broke(authority):
            raise BrokerUrlError(CREDENTIALS_HINT) from None
        bad_port = "port" in str(exc).lower()
        reason = "its port is not a number from 1 to 65535" if bad_port else "it is malformed"
        raise BrokerUrlError(reason) from None
    if misplaced_at:
        # Never show the path: it holds the tail of the password.
        raise BrokerUrlError(CREDENTIALS_HINT)
    return parts, port


def parse_broker_url(raw: str) -> BrokerUrl:
    """Parse `mqtt[s]://` or `ws[s]://` URLs with optional `user:pass@` and websocket path."""
    text = raw.strip()
    if not text:
        raise BrokerUrlError("it is empty")
    parts, port = _split(text)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise BrokerUrlError(f"its scheme {scheme!r} is not one of mqtt, mqtts, ws, wss")
    transport, tls, default_port = _SCHEMES[scheme]
    host = parts.hostname
    if not host:
        raise BrokerUrlError("it has no host name")
    if any(ch.isspace() for ch in host):
        raise BrokerUrlError("its host name contains white space")
    if port == 0:
        raise BrokerUrlError("its port is not a number from 1 to 65535")
    path: str | None = None
    if transport == "websockets":
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
    elif parts.path not in ("", "/"):
        raise BrokerUrlError("a path is only meaningful for ws:// and wss:// URLs")
    username = unquote(parts.username) if parts.username else None
    password = Secret(unquote(parts.password)) if parts.password else None
    return BrokerUrl(
        host=host,
        port=port or default_port,
        transport=transport,
        tls=tls,
        path=path,
        username=username,
        password=password,
    )
