"""Pure: the artwork the broker already holds, for entities Plex could not enrich this time.

A one-shot run, or the service's first sync, has no artwork in memory. When Plex cannot be
reached then, the retained item states (read anyway to reconcile) still carry each item's
thumb and playable `plex_uri`: they are kept instead of publishing `"thumb": ""` over them.
Only a state of the same item with the same Plex key counts, and never for a key Plex
answered it does not know.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import replace

from .discovery import Topics
from .entities import Entity, Resolution


def _retained(payload: bytes | None, entity: Entity) -> tuple[str, str]:
    """(thumb, server id) of a retained state of `entity`'s item and key, else ("", "")."""
    if not payload:
        return "", ""
    try:
        state = json.loads(payload)
    except (ValueError, RecursionError):
        return "", ""
    if not isinstance(state, dict) or state.get("id") != entity.id \
            or state.get("plex_key") != entity.plex_key \
            or state.get("media_content_type") != entity.media_content_type:
        return "", ""
    thumb = state.get("thumb")
    uri = state.get("plex_uri")
    server = ""
    suffix = f"/{entity.plex_key}"
    if isinstance(uri, str) and uri.startswith("plex://") and uri.endswith(suffix):
        server = uri.removeprefix("plex://").removesuffix(suffix)
        server = server if server and "/" not in server else ""
    return (thumb if isinstance(thumb, str) else ""), server


def keep_retained_artwork(topics: Topics, resolution: Resolution,
                          actual: Mapping[str, bytes],
                          unknown_keys: Collection[str] = ()) -> Resolution:
    """Entities lacking a thumb or a server id get them from their retained state."""
    entities: list[Entity] = []
    changed = False
    for entity in resolution.entities:
        if (entity.thumb and entity.plex_server_id) or entity.plex_key in unknown_keys:
            entities.append(entity)
            continue
        thumb, server = _retained(actual.get(topics.item_state(entity.slug)), entity)
        if (thumb and not entity.thumb) or (server and not entity.plex_server_id):
            entities.append(replace(entity, thumb=entity.thumb or thumb,
                                    plex_server_id=entity.plex_server_id or server))
            changed = True
        else:
            entities.append(entity)
    return Resolution(tuple(entities), resolution.skipped) if changed else resolution
