"""Checking the bearer token: from the `Authorization` header, or, for a browser's
WebSocket (which cannot set headers), from a `bearer.<base64url token>` subprotocol."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from aiohttp import hdrs, web

# The subprotocol the page's WebSocket asks for (and the server selects), next to the token's.
EVENTS_PROTOCOL = "spotify-to-plex-mqtt"
_TOKEN_PROTOCOL = "bearer."  # noqa: S105 - a prefix, not a secret


def digest(value: str) -> bytes:
    # Hashing first makes the constant-time compare independent of the tokens' lengths.
    return hashlib.sha256(value.encode()).digest()


def _from_protocols(header: str) -> str | None:
    for part in header.split(","):
        offered = part.strip()
        if offered.startswith(_TOKEN_PROTOCOL):
            encoded = offered.removeprefix(_TOKEN_PROTOCOL)
            try:
                raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
                return raw.decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return None
    return None


def presented_token(request: web.Request) -> str | None:
    """The token the client sent, or None."""
    scheme, _, value = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    protocols = request.headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL)
    return _from_protocols(protocols) if protocols else None


def authorized(request: web.Request, expected: bytes) -> bool:
    token = presented_token(request)
    return token is not None and hmac.compare_digest(digest(token), expected)
