"""Command-line entry point: settings, logging, and the choice of mode. Exit codes:
0 success, 1 a sync or connection failed, 2 a setting is missing or malformed."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from .secret import RedactingFilter
from .settings.config import LogLevel, Settings, load_settings
from .settings.values import ConfigError

log = logging.getLogger("spotify_to_plex_mqtt")


_LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO,
           "warning": logging.WARNING, "error": logging.ERROR}


def setup_logging(level: LogLevel, secrets: tuple[str, ...]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s",
                                           "%Y-%m-%d %H:%M:%S"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    log.setLevel(_LEVELS[level])
    # paho logs every packet at debug level (18k lines for a big library's sync): only at
    # `trace`, which --debug alone does not turn on.
    logging.getLogger("spotify_to_plex_mqtt.paho").setLevel(
        logging.DEBUG if level == "trace" else max(logging.WARNING, _LEVELS[level]))


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        return 130


def run(settings: Settings) -> int:
    """Dispatch to the selected mode and return its exit code."""
    if settings.command == "purge":
        from .modes.purge import run_purge

        return _run(run_purge(settings))
    if settings.command == "demo":
        from .modes.demo import run_demo

        return _run(run_demo(settings))
    if settings.dry_run:
        from .modes.dry_run import dry_run

        return _run(dry_run(settings))
    if settings.one_shot:
        from .modes.oneshot import one_shot

        return _run(one_shot(settings))
    from .service.service import run_service

    return _run(run_service(settings))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load_settings(sys.argv[1:] if argv is None else argv, os.environ)
    except ConfigError as exc:
        print(f"spotify-to-plex-mqtt: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.secrets)
    log.debug("settings: %s", settings.redacted())
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
