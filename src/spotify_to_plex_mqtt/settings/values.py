"""The one parser of setting values: true/false words and numbers, and the error naming the
setting when a value is wrong."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from ..errors import Error

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class ConfigError(Error):
    """A setting is missing or malformed; `str()` is a one-paragraph message for the user."""

    def __init__(self, setting: str, problem: str, example: str) -> None:
        super().__init__(f"{setting} {problem}. Example of a right value: {example}")
        self.setting = setting


def parse_bool(raw: str) -> bool | None:
    """`True`/`False` for the words of either; `None` for anything else. An empty value is
    not a word: callers decide what unset means."""
    value = raw.strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    return None


def env_bool(env: Mapping[str, str], name: str) -> bool | None:
    raw = env.get(name)
    if raw is None:
        return None
    if not raw.strip():
        return False
    value = parse_bool(raw)
    if value is None:
        raise ConfigError(name, f"is {raw!r}, which is not true or false", f"{name}=true")
    return value


def env_number(env: Mapping[str, str], name: str, kind: Callable[[str], float]) -> float | None:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        value = kind(raw.strip())
    except ValueError:
        raise ConfigError(name, f"is {raw!r}, which is not a number", f"{name}=30") from None
    if not math.isfinite(value):
        raise ConfigError(name, f"is {raw!r}, which is not a finite number",
                          f"{name}=30")
    if value < 0:
        raise ConfigError(name, f"is {raw!r}, which is negative", f"{name}=30")
    return value
