"""Turns health events into log lines, one place for the service's wording."""

from __future__ import annotations

import logging

from ..engine.events import (
    Availability,
    Connected,
    Disconnected,
    Event,
    FileChanged,
    FileError,
    FileRecovered,
    Started,
    Stopped,
    SyncFailed,
    SyncFinished,
    SyncStarted,
)

log = logging.getLogger("spotify_to_plex_mqtt")


def log_event(event: Event) -> None:
    match event:
        case Started(version=version):
            log.info("spotify-to-plex-mqtt %s started", version)
        case Connected(broker=broker):
            log.info("connected to %s", broker)
        case Disconnected(broker=broker, reason=reason, retry_in=retry_in):
            log.warning("not connected to %s: %s; retrying in %.1f s", broker, reason, retry_in)
        case SyncStarted(id=ident, reasons=reasons):
            log.debug("sync #%d started (%s)", ident, ", ".join(reasons))
        case SyncFinished() as e:
            level = logging.WARNING if e.errors else logging.INFO
            log.log(level, "sync #%d (%s): %d entities, %d published, %d unchanged, "
                    "%d removed, %d skipped%s in %.2f s", e.id, ", ".join(e.reasons), e.entities,
                    e.published, e.unchanged, e.removed, e.skipped,
                    f", {e.withheld} removals withheld" if e.withheld else "", e.duration)
        case SyncFailed() as e:
            then = f"retrying in {e.retry_in:.1f} s" if e.retry_in is not None else \
                "waiting for the next trigger"
            log.error("sync #%d failed (attempt %d): %s; %s", e.id, e.attempt, e.error, then)
        case FileChanged(files=files):
            log.debug("changed: %s", ", ".join(files))
        case FileError(error=error):
            log.error("%s", error)
        case FileRecovered(file=file):
            log.info("%s is readable again", file)
        case Availability(problem=problem) if problem is not None:
            log.error("%s", problem)
        case Stopped(reason=reason):
            log.info("stopped (%s)", reason)
        case _:
            pass
