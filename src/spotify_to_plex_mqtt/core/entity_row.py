"""Pure: one entity as a row of plain data, the same in the dry-run manifest and in the
API's `/entities`."""

from __future__ import annotations

from .discovery import Topics
from .entities import Entity


def entity_row(topics: Topics, entity: Entity) -> dict[str, str]:
    """Its id, name, category and type, its Home Assistant entity id and its two topics."""
    state_topic, config_topic = topics.item_topics(entity.slug)
    return {
        "id": entity.id, "name": entity.name, "category": entity.category, "type": entity.type,
        "entity_id": topics.item_entity_id(entity.slug),
        "state_topic": state_topic, "config_topic": config_topic,
    }
