"""Resolve play_media ids with Home Assistant's own Plex code; run by the Home Assistant venv.

Reads `{"url", "token", "machine_id", "ids": [...]}` as JSON on stdin and prints, for each
id, what `process_plex_payload` (homeassistant/components/plex/services.py) made of it:
`{"id", "rating_key", "type", "shuffle"}` or `{"id", "error"}`.

The server is Home Assistant's `PlexServer` around a `plexapi` connection to the Plex
stand-in over HTTP, registered under its machine id as the Plex integration registers it,
so the lookup reaches the stand-in's `/library/metadata/<key>`. (The full integration,
with a Plex client media player, needs plex.tv or client discovery: see the test module.)
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from typing import Any

import plexapi.server
from homeassistant.components.plex.const import DOMAIN, SERVERS
from homeassistant.components.plex.server import PlexServer
from homeassistant.components.plex.services import process_plex_payload
from homeassistant.core import HomeAssistant


def _resolve(hass: Any, content_id: str, content_type: str) -> dict[str, Any]:
    try:
        # No play queue: that would be a POST the stand-in does not serve; the shuffle
        # flag is still parsed into the result.
        result = process_plex_payload(hass, content_type, content_id,
                                      supports_playqueues=False)
    except Exception as exc:  # reported to the test, which fails on it
        return {"id": content_id, "error": f"{type(exc).__name__}: {exc}"}
    media = result.media
    return {"id": content_id, "rating_key": str(media.ratingKey), "type": media.type,
            "shuffle": bool(result.shuffle)}


async def main() -> None:
    request = json.load(sys.stdin)
    with tempfile.TemporaryDirectory() as config_dir:
        hass = HomeAssistant(config_dir)
        connection = plexapi.server.PlexServer(request["url"], request["token"])
        server = PlexServer(hass, {"url": request["url"], "token": request["token"],
                                   "verify_ssl": False}, request["machine_id"])
        server.set_plex_server(connection)
        hass.data[DOMAIN] = {SERVERS: {connection.machineIdentifier: server}}
        loop = asyncio.get_running_loop()
        answers = [await loop.run_in_executor(None, _resolve, hass, item["id"], item["type"])
                   for item in request["ids"]]
    json.dump(answers, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())
