"""Pure rendering of entities into Home Assistant discovery configs and state payloads."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

from .. import __version__
from . import ownership
from .entities import Entity, short_hash, slugify
from .reconcile import UNCHANGED, Payload

PROJECT_URL = "https://github.com/spotify-to-plex-mqtt/spotify-to-plex-mqtt"
DEFAULT_PREFIX = "spotify-to-plex"
DEFAULT_NODE = "spotify_to_plex"
STATE_LIMIT = 255
ATTRIBUTES_LIMIT = 14 * 1024


def node_id_for(topic_prefix: str) -> str:
    """The prefix of our unique_ids and object_ids: the topic prefix as a slug.

    The default prefix keeps the original's `spotify_to_plex`; another prefix with the same
    slug (`spotify_to_plex`, `Spotify-To-Plex`) gets a short hash of itself appended, since
    it would otherwise publish to the default instance's discovery topics.
    """
    node = slugify(topic_prefix) or DEFAULT_NODE
    if node == DEFAULT_NODE and topic_prefix != DEFAULT_PREFIX:
        node = f"{node}_{short_hash(topic_prefix)}"
    return node


# A topic prefix: no wildcard, no NUL, no empty level at either end, no leading white space.
TOPIC_PREFIX = re.compile(r"^[^/#+\s\x00][^#+\x00]*(?<!/)$")


def item_object_id(node_id: str, slug: str) -> str:
    """An item's object id: the one spelling of it."""
    return f"{node_id}_item_{slug}"


def item_entity_id(node_id: str, slug: str) -> str:
    """An item's entity id in Home Assistant: the one spelling of it."""
    return f"sensor.{item_object_id(node_id, slug)}"


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic layout and id prefix for one instance (derived from the two prefixes)."""

    topic_prefix: str = "spotify-to-plex"
    discovery_prefix: str = "homeassistant"
    # Prefix of every unique_id and object_id of ours: `spotify_to_plex` by default. Worked
    # out once: every item's topics use it, 20k times per sync at 10k items.
    node_id: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Like aiomqtt's `Topic`: a prefix with a wildcard, a NUL or an empty level at either
        # end would make topics no broker accepts, or filters that match others' topics.
        for name, prefix in (("topic", self.topic_prefix), ("discovery", self.discovery_prefix)):
            if not TOPIC_PREFIX.match(prefix):
                raise ValueError(f"{name} prefix {prefix!r} must not be empty, contain + or #, "
                                 "or start or end with /")
        object.__setattr__(self, "node_id", node_id_for(self.topic_prefix))

    @property
    def status(self) -> str:
        return f"{self.topic_prefix}/status"

    @property
    def categories_state(self) -> str:
        return f"{self.topic_prefix}/categories"

    @property
    def categories_object_id(self) -> str:
        return f"{self.node_id}_categories"

    @property
    def bridge_state(self) -> str:
        return f"{self.topic_prefix}/bridge"

    @property
    def command_prefix(self) -> str:
        return f"{self.topic_prefix}/command"

    @property
    def refresh_command(self) -> str:
        """The refresh button's command topic."""
        return f"{self.command_prefix}/refresh"

    @property
    def ha_status(self) -> str:
        """Home Assistant's birth and last-will topic."""
        return f"{self.discovery_prefix}/status"

    @property
    def scan_marker_prefix(self) -> str:
        return f"{self.topic_prefix}/_scan"

    @property
    def scan_probe_prefix(self) -> str:
        """Start of the probe topics that tell whether we may read the discovery prefix: a
        config topic's shape, but never retained and with an empty payload."""
        return f"{self.discovery_prefix}/sensor/{self.node_id}_scan_"

    def item_state(self, slug: str) -> str:
        return f"{self.topic_prefix}/items/{slug}"

    def item_object_id(self, slug: str) -> str:
        return item_object_id(self.node_id, slug)

    def item_entity_id(self, slug: str) -> str:
        return item_entity_id(self.node_id, slug)

    def item_topics(self, slug: str) -> tuple[str, str]:
        """An item's state topic and discovery config topic."""
        return self.item_state(slug), self.config(self.item_object_id(slug))

    def item_unique_id(self, item_id: str) -> str:
        # The original service's unique_id (raw id): Home Assistant then updates its entity
        # in place, keeping the user's customisations, instead of creating a new one.
        return f"{self.node_id}_item_{item_id}"

    def legacy_item_topics(self, item_id: str) -> tuple[str, ...]:
        """Where the original service's layouts kept an item's config and state."""
        return (self.config(f"item_{item_id}"), f"{self.topic_prefix}/items/{item_id}",
                f"{self.node_id}/items/{item_id}/state")

    @property
    def legacy_state_prefixes(self) -> tuple[str, ...]:
        """Where the newest original service kept state topics (`spotify_to_plex/...`)."""
        if self.node_id == self.topic_prefix:
            return ()
        return (f"{self.node_id}/items/", f"{self.node_id}/categories/")

    @property
    def owner(self) -> str:
        """The retained owner record: which instance serves this prefix (see `owner`)."""
        return f"{self.topic_prefix}/owner"

    def config(self, object_id: str, component: str = "sensor") -> str:
        return f"{self.discovery_prefix}/{component}/{object_id}/config"

    @property
    def scan_filters(self) -> tuple[str, ...]:
        legacy = tuple(f"{p}#" for p in self.legacy_state_prefixes)
        return (f"{self.discovery_prefix}/+/+/config", f"{self.topic_prefix}/#", *legacy)

    def is_ours(self, topic: str, payload: bytes) -> bool:
        """Whether a retained message was published by this instance (or its predecessor):
        see `ownership`."""
        return ownership.is_ours(self, topic, payload)


def encode(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def common_config(topics: Topics, object_id: str, unique_id: str,
                  component: str = "sensor") -> dict[str, Any]:
    """What every config of ours carries: ids, availability, the shared device, origin."""
    return {
        "unique_id": unique_id,
        "object_id": object_id,
        "default_entity_id": f"{component}.{object_id}",
        "availability_topic": topics.status,
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": {
            "identifiers": [topics.node_id],
            "name": "Spotify to Plex",
            "manufacturer": "spotify-to-plex-mqtt",
            "model": "MQTT bridge",
            "sw_version": __version__,
        },
        "origin": {"name": "spotify-to-plex-mqtt", "sw": __version__, "url": PROJECT_URL},
    }


def item_state(entity: Entity) -> dict[str, Any]:
    return {
        "id": entity.id,
        "name": entity.name,
        "category": entity.category,
        "category_id": entity.category_id,
        "type": entity.type,
        "media_content_id": entity.media_content_id,
        "media_content_type": entity.media_content_type,
        "plex_key": entity.plex_key,
        "plex_path": entity.plex_path,
        "plex_uri": entity.plex_uri,
        "thumb": entity.thumb,
        "icon": entity.icon,
    }


def item_config(topics: Topics, entity: Entity) -> dict[str, Any]:
    state_topic = topics.item_state(entity.slug)
    return {
        "name": entity.name,
        **common_config(topics, topics.item_object_id(entity.slug),
                        topics.item_unique_id(entity.id)),
        "state_topic": state_topic,
        "value_template": "{{ value_json.name[:255] }}",
        "json_attributes_topic": state_topic,
        "icon": entity.icon,
    }


def fit_state(names: list[str], limit: int = STATE_LIMIT) -> str:
    """The comma-separated list the original published (`Jazz,Rock`), cut to fit Home
    Assistant's state limit with a final `+N more`; the full list is in the attributes."""
    text = ",".join(names)
    if len(text) <= limit:
        return text
    for keep in range(len(names) - 1, -1, -1):
        candidate = ",".join([*names[:keep], f"+{len(names) - keep} more"])
        if len(candidate) <= limit:
            return candidate
    return f"{len(names)} categories"


def categories_state(categories: Mapping[str, int]) -> dict[str, Any]:
    """State and attributes of the categories sensor, kept under `ATTRIBUTES_LIMIT` bytes."""
    names = sorted(categories)
    payload: dict[str, Any] = {
        "state": fit_state(names),
        "categories": names,
        "count": len(names),
        "items": {name: categories[name] for name in names},
        "total_items": sum(categories.values()),
    }
    if len(encode(payload)) > ATTRIBUTES_LIMIT:
        # Home Assistant drops attributes over 16 KiB altogether: the counts go first.
        del payload["items"]
    while len(encode(payload)) > ATTRIBUTES_LIMIT and payload["categories"]:
        payload["categories"] = payload["categories"][: len(payload["categories"]) * 9 // 10]
        payload["truncated"] = True
    return payload


def categories_config(topics: Topics) -> dict[str, Any]:
    return {
        "name": "Music Categories",
        **common_config(topics, topics.categories_object_id, topics.categories_object_id),
        "state_topic": topics.categories_state,
        "value_template": "{{ value_json.state }}",
        "json_attributes_topic": topics.categories_state,
        "json_attributes_template": "{{ value_json | tojson }}",
        "icon": "mdi:music-box-multiple",
    }


@overload
def render(topics: Topics, entities: Iterable[Entity],
           extra_categories: Mapping[str, int] | None = None, *,
           unchanged: None = None) -> dict[str, bytes]: ...


@overload
def render(topics: Topics, entities: Iterable[Entity],
           extra_categories: Mapping[str, int] | None = None, *,
           unchanged: Callable[[Entity, str, str], bool]) -> dict[str, Payload]: ...


def render(topics: Topics, entities: Iterable[Entity],
           extra_categories: Mapping[str, int] | None = None, *,
           unchanged: Callable[[Entity, str, str], bool] | None = None
           ) -> dict[str, bytes] | dict[str, Payload]:
    """The desired retained messages for `entities`: one state and one config each, plus the
    categories sensor. `extra_categories` counts items kept on the broker but not rendered.

    Entities for which `unchanged(entity, state_topic, config_topic)` holds get `UNCHANGED`
    instead of their payloads.
    """
    desired: dict[str, Payload] = {}
    counts: Counter[str] = Counter(extra_categories or {})
    for entity in entities:
        state_topic, config_topic = topics.item_topics(entity.slug)
        if unchanged is not None and unchanged(entity, state_topic, config_topic):
            desired[state_topic] = desired[config_topic] = UNCHANGED
        else:
            desired[state_topic] = encode(item_state(entity))
            desired[config_topic] = encode(item_config(topics, entity))
        counts[entity.category] += 1
    desired[topics.categories_state] = encode(categories_state(counts))
    desired[topics.config(topics.categories_object_id)] = encode(categories_config(topics))
    return desired
