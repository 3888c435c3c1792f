"""The long-running service (placeholder until the service loop lands): one sync, then exit."""

from __future__ import annotations

from .app import one_shot
from .config import Settings


async def run_service(settings: Settings) -> int:
    return await one_shot(settings)
