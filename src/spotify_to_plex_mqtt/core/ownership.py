"""Which retained messages are this instance's: exactly what its prefixes and ids produce.

Two instances on one broker (`spotify-to-plex` and `spotify-to-plex/kids`, or
`spotify-to-plex` and `spotify_to_plex`) must never clear each other's entities, so a topic
is ours only in the shapes we (or the original service, whose leftovers we clean) publish:

- state topics `<prefix>/items/<slug>` (one level: slugs have no `/`), `<prefix>/categories`
  and `<prefix>/bridge`;
- the original's newer layout `<node>/items/<raw id>/state` and `<node>/categories/state`;
- discovery configs whose `unique_id` is one of our id shapes and whose `state_topic` (or
  the button's `command_topic`) is one of the topics above.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .discovery import Topics

_OWN_LEAVES = ("categories", "bridge")


def is_own_state(topics: Topics, topic: str) -> bool:
    """Whether `topic` is one of the state topics this instance publishes or cleans."""
    prefix = f"{topics.topic_prefix}/"
    if topic.startswith(prefix):
        rest = topic[len(prefix):]
        if rest in _OWN_LEAVES:
            return True
        slug = rest.removeprefix("items/")
        return slug != rest and bool(slug) and "/" not in slug
    return is_legacy_state(topics, topic)


def is_legacy_state(topics: Topics, topic: str) -> bool:
    """The original service's newer layout: `<node>/items/<raw id>/state` (the raw id may
    hold `/`, as Plex guids do) and `<node>/categories/state`."""
    if not topics.legacy_state_prefixes:
        return False
    node = topics.node_id
    if topic == f"{node}/categories/state":
        return True
    rest = topic.removeprefix(f"{node}/items/")
    return rest != topic and rest.endswith("/state") and len(rest) > len("/state")


def _own_unique_id(topics: Topics, unique_id: str) -> bool:
    node = topics.node_id
    return unique_id == f"{node}_categories" or unique_id.startswith(
        (f"{node}_item_", f"{node}_bridge_"))


def is_own_config(topics: Topics, payload: bytes) -> bool:
    """Whether a discovery config was published by this instance (or its predecessor)."""
    if topics.node_id.encode() not in payload:
        return False
    try:
        config = json.loads(payload)
        unique_id = config.get("unique_id")
    except (ValueError, AttributeError, RecursionError):
        return False
    if not isinstance(unique_id, str) or not _own_unique_id(topics, unique_id):
        return False
    # The topics the config points at tell apart instances whose ids look alike
    # (`spotify-to-plex-kids` makes unique_ids `spotify_to_plex_kids_...`).
    state_topic = config.get("state_topic")
    if isinstance(state_topic, str):
        return is_own_state(topics, state_topic)
    return bool(config.get("command_topic") == topics.refresh_command)


def is_ours(topics: Topics, topic: str, payload: bytes) -> bool:
    """Whether a retained message is this instance's to reconcile (the status topic and the
    owner record are handled apart)."""
    if is_own_state(topics, topic):
        # An item state starts with its id (ours and the original's): what else lies at
        # `<prefix>/items/<one level>` is another instance's whose prefix is
        # `<prefix>/items` (its categories, bridge, status or owner record).
        # (An empty payload is a clear seen during a read: it must apply.)
        return not payload or not topic.startswith(topics.item_state("")) \
            or payload.startswith(b'{"id"')
    disc = f"{topics.discovery_prefix}/"
    if not (topic.startswith(disc) and topic.endswith("/config")):
        return False
    return is_own_config(topics, payload)
