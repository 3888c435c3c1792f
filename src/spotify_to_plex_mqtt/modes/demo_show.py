"""What the demo shows of the broker: the categories sensor, the bridge entities, and one
item's discovery config and state, as Home Assistant receives them; and a dump of them all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.bridge import bridge_configs
from ..core.discovery import Topics
from ..core.entities import resolve
from ..engine.sync import read_ours
from ..inputs.atomic import write_json_atomic
from ..inputs.source import LibrarySource
from ..mqtt.session import BrokerSession
from ..settings.config import Settings

RETAINED_DUMP = "broker_retained.json"


def _topics(settings: Settings) -> Topics:
    return Topics(settings.mqtt.topic_prefix, settings.mqtt.discovery_prefix)


async def _read(settings: Settings) -> dict[str, bytes]:
    topics = _topics(settings)
    slugs = [e.slug for e in resolve(LibrarySource(settings.settings_dir).read().library).entities]
    async with BrokerSession(settings.mqtt, read_only=True) as session:
        found = (await read_ours(session, topics, slugs)).found
    return dict(sorted(found.items()))


def _decode(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload.decode(errors="replace")


def _pretty(payload: bytes, indent: str = "    ") -> str:
    text = json.dumps(_decode(payload), indent=2, ensure_ascii=False)
    return "\n".join(indent + line for line in text.splitlines())


def _line(payload: bytes, indent: str = "    ") -> str:
    return indent + json.dumps(_decode(payload), ensure_ascii=False)


def describe(topics: Topics, found: dict[str, bytes]) -> list[str]:
    """The lines to print: topics with their payloads, for the three kinds of entity."""
    categories = topics.config(topics.categories_object_id)
    lines = ["What Home Assistant gets (retained on the broker):", "",
             f"  Music Categories sensor: {categories}"]
    if categories in found:
        lines.append(_line(found[categories]))
    lines.append(f"  its state: {topics.categories_state}")
    if topics.categories_state in found:
        lines.append(_line(found[topics.categories_state]))
    lines += ["", "  Bridge entities (the same device):"]
    for topic in bridge_configs(topics):
        if topic in found:
            config = _decode(found[topic])
            entity = f"{topic.split('/')[1]}.{config.get('object_id', '?')}"
            lines.append(f"    {entity}  {config.get('name', '')!r}  ({topic})")
    if topics.bridge_state in found:
        lines += [f"  their state: {topics.bridge_state}", _line(found[topics.bridge_state])]
    items = sorted(t for t in found if t.startswith(topics.item_state("")))
    if items:
        state = items[0]
        config = topics.config(topics.item_object_id(state.removeprefix(topics.item_state(""))))
        lines += ["", f"  One item's discovery config: {config}"]
        if config in found:
            lines.append(_pretty(found[config]))
        lines += [f"  and its state: {state}", _pretty(found[state])]
    return lines


async def show_broker(settings: Settings) -> None:
    print("\n" + "\n".join(describe(_topics(settings), await _read(settings))))


async def dump_retained(settings: Settings, path: Path) -> None:
    """Every retained message of ours, decoded, into `path` (the demo keeps it)."""
    found = await _read(settings)
    write_json_atomic(path, {topic: _decode(payload) for topic, payload in found.items()})
