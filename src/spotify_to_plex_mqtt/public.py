"""The package's surface for code outside it (the benchmark in bench/): everything in
`__all__` stays importable from here; whatever else moves, moves freely.
tests/architecture/test_public_surface.py checks that bench/ imports nothing else."""

from __future__ import annotations

from .core.discovery import Topics
from .engine.events import Event, SyncFailed, SyncFinished
from .engine.sync import run_sync
from .inputs.source import LibrarySource
from .mqtt.retained import Retained
from .mqtt.session import MAX_INFLIGHT, BrokerError, BrokerSession
from .plex.enricher import PlexLink
from .secret import Secret
from .service.service import Service
from .settings.broker_url import parse_broker_url
from .settings.config import MqttSettings, Settings, load_settings

__all__ = [
    "MAX_INFLIGHT",
    "BrokerError",
    "BrokerSession",
    "Event",
    "LibrarySource",
    "MqttSettings",
    "PlexLink",
    "Retained",
    "Secret",
    "Service",
    "Settings",
    "SyncFailed",
    "SyncFinished",
    "Topics",
    "load_settings",
    "parse_broker_url",
    "run_sync",
]
