"""A string wrapper that never shows its value, the mask, and a log filter that masks known
secrets (those given at start and those registered since)."""

from __future__ import annotations

import logging
from typing import Final

MASK: Final = "********"


class Secret:
    """Holds a secret value; `str`, `repr` and formatting show only a mask."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


# Secrets that arrive after start (a Plex token read from plex.json at a sync): every
# `RedactingFilter`, and the HTTP API's answers, mask these too.
_registered: set[str] = set()


def register_secret(value: str) -> None:
    """Mask `value` from now on wherever known secrets are masked (if 3 characters or more:
    shorter ones would mask ordinary text)."""
    if len(value) >= 3:
        _registered.add(value)


def registered_secrets() -> tuple[str, ...]:
    return tuple(_registered)


def mask_text(text: str, secrets: tuple[str, ...]) -> str:
    """Replace every occurrence of each secret (longest first) by the mask."""
    for value in sorted(secrets, key=len, reverse=True):
        if value:
            text = text.replace(value, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Second line of defence: masks secret values in any log record that slips one in.

    Secrets are kept out of messages by construction; this catches third-party libraries
    (paho, aiohttp) that may format URLs or exceptions containing them.
    """

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if len(s) >= 3)

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = (*self._secrets, *_registered) if _registered else self._secrets
        if not secrets:
            return True
        message = record.getMessage()
        masked = mask_text(message, secrets)
        if masked != message:
            record.msg = masked
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = mask_text(exc_text, secrets)
        return True
