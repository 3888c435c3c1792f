"""Refusing an unauthenticated HTTP API on an address other machines can reach."""

from __future__ import annotations

import ipaddress

from .values import ConfigError


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine. Names other than
    `localhost` are not resolved (that would be I/O) and count as reachable from outside."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def check_http_exposure(host: str, token: str | None, allow: bool) -> None:
    """Refuse an unauthenticated API on an address other machines can reach."""
    if token or allow or is_loopback(host):
        return
    raise ConfigError(
        "HTTP_HOST",
        f"is {host!r}, which other machines can reach, but API_TOKEN is not set, so anyone "
        "on the network could trigger syncs; set API_TOKEN, listen on 127.0.0.1, or accept "
        "the risk with --http-allow-unauthenticated (env HTTP_ALLOW_UNAUTHENTICATED=true)",
        "API_TOKEN=<a long random string>",
    )
