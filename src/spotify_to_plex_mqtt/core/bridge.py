"""Pure rendering of the bridge's own entities: refresh button, last sync, item count, problem.

They share the item sensors' device and follow the same reconciliation. Their state is one
retained JSON message whose timestamp moves only when a sync changed something, so that an
unchanged re-sync still publishes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .discovery import Topics, common_config, encode

REFRESH_PAYLOAD = "refresh"


def _entity(topics: Topics, component: str, key: str, name: str,
            extra: Mapping[str, Any]) -> tuple[str, bytes]:
    object_id = f"{topics.node_id}_bridge_{key}"
    config = {"name": name, **common_config(topics, object_id, object_id, component), **extra}
    return topics.config(object_id, component), encode(config)


def bridge_configs(topics: Topics) -> dict[str, bytes]:
    """Discovery configs of the four bridge entities."""
    state = topics.bridge_state
    diagnostic = {"entity_category": "diagnostic", "state_topic": state}
    return dict([
        _entity(topics, "button", "refresh", "Refresh library", {
            "command_topic": topics.refresh_command,
            "payload_press": REFRESH_PAYLOAD,
            "entity_category": "config",
            "icon": "mdi:refresh",
        }),
        _entity(topics, "sensor", "last_sync", "Last sync", {
            **diagnostic, "device_class": "timestamp",
            "value_template": "{{ value_json.last_sync }}",
        }),
        _entity(topics, "sensor", "published_items", "Published items", {
            **diagnostic, "state_class": "measurement", "icon": "mdi:playlist-check",
            "value_template": "{{ value_json.published_items }}",
        }),
        _entity(topics, "binary_sensor", "problem", "Input problem", {
            **diagnostic, "device_class": "problem",
            "value_template": "{{ 'ON' if value_json.problems else 'OFF' }}",
            "json_attributes_topic": state,
            "json_attributes_template": "{{ {'problems': value_json.problems} | tojson }}",
        }),
    ])


def bridge_state(published_items: int, problems: tuple[str, ...], *, changed: bool,
                 previous: bytes | None, now: datetime | None = None) -> bytes:
    """The bridge state; the previous payload is kept as is when nothing changed."""
    fields: dict[str, Any] = {"published_items": published_items, "problems": list(problems)}
    if previous is not None and not changed:
        try:
            old = json.loads(previous)
        except (ValueError, RecursionError):
            old = None
        if isinstance(old, dict) and isinstance(old.get("last_sync"), str) and all(
                old.get(k) == v for k, v in fields.items()):
            return previous
    moment = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    return encode({"last_sync": moment, **fields})
