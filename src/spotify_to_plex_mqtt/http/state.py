"""What the API's handlers share: the control plane, the metrics, the token digest, the open
event streams, and the masked JSON answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ..engine.events import Event
from ..secret import mask_text, registered_secrets
from .control import ControlPlane, PlexState
from .metrics import Metrics

MAX_BODY = 64 * 1024


def _escaped(secrets: tuple[str, ...]) -> tuple[str, ...]:
    """Each secret and its JSON-escaped form: how it would appear in a body."""
    return tuple({m for s in secrets for m in (s, json.dumps(s, ensure_ascii=False)[1:-1])})


@dataclass(eq=False, slots=True)
class StreamClient:
    ws: web.WebSocketResponse
    queue: asyncio.Queue[Event]
    pump: asyncio.Task[None] | None = None


@dataclass(slots=True)
class ApiState:
    plane: ControlPlane
    metrics: Metrics
    token_digest: bytes | None
    plex_state: PlexState | None
    sync_timeout: float
    spec: dict[str, Any]
    masks: tuple[str, ...]
    clients: set[StreamClient] = field(default_factory=set)
    deadlines: set[asyncio.Timeout] = field(default_factory=set)
    stopping: bool = False

    def dumps(self, data: Any) -> str:
        return mask_text(json.dumps(data, ensure_ascii=False),
                         (*self.masks, *_escaped(registered_secrets())))


STATE = web.AppKey("spotify_to_plex_state", ApiState)


def reply(state: ApiState, data: Any, status: int = 200,
           headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=state.dumps)


