"""Human-readable summaries of a sync, and the dry-run manifest."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core.discovery import Topics
from ..core.entity_row import entity_row
from ..core.input_report import malformed_lines, skipped_by_reason
from ..core.result import SyncResult
from ..inputs.atomic import write_json_atomic
from ..settings.config import Settings

MANIFEST = "mqtt_dry_run_manifest.json"


def summary(result: SyncResult, *, dry_run: bool = False) -> str:
    """A few lines: published / unchanged / removed / skipped with reasons, and errors."""
    plan = result.plan
    verb = "would publish" if dry_run else "published"
    lines = [
        f"{len(result.entities)} entities in {len(result.categories)} categories: "
        f"{len(plan.publish) if dry_run else result.published} messages {verb}, "
        f"{plan.unchanged} unchanged, "
        f"{len(plan.clear) if dry_run else result.removed} "
        f"{'would be removed' if dry_run else 'removed'}, "
        f"{len(result.skipped)} skipped ({result.duration:.2f} s)"
    ]
    lines.extend(f"  {line}" for line in skipped_by_reason(result.skipped))
    warnings = malformed_lines(result.warnings)
    lines.extend(f"  warning: {w}" for w in warnings[:20])
    if len(warnings) > 20:
        lines.append(f"  ... and {len(warnings) - 20} more warnings")
    lines.extend(f"  error: {e}" for e in result.errors)
    return "\n".join(lines)


def entity_table(result: SyncResult, topics: Topics) -> str:
    """What Home Assistant shows: one row per entity."""
    rows = [("entity", "name", "category", "media_content_id")]
    for e in result.entities:
        rows.append((topics.item_entity_id(e.slug), e.name, e.category,
                     e.media_content_id))
    # The entity id and the playable id are never cut: users copy them into automations.
    widths = [max(len(r[i]) for r in rows) if i in (0, 3)
              else min(40, max(len(r[i]) for r in rows)) for i in range(4)]
    out = []
    for index, row in enumerate(rows):
        out.append("  ".join(cell[:w].ljust(w) for cell, w in zip(row, widths, strict=True)))
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _decode(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload.decode(errors="replace")


def write_manifest(settings: Settings, topics: Topics, result: SyncResult,
                   desired: Mapping[str, bytes], would_remove: list[str]) -> Path:
    """Write the dry-run manifest: config without secrets, entities, topics and payloads."""
    entities = []
    for e in result.entities:
        row: dict[str, Any] = entity_row(topics, e)
        state_topic, config_topic = row["state_topic"], row["config_topic"]
        row["state"] = _decode(desired[state_topic]) if state_topic in desired else None
        row["config"] = _decode(desired[config_topic]) if config_topic in desired else None
        entities.append(row)
    by_type = result.by_type
    manifest = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        # The original service's keys, for tools that read its manifest.
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "mode": "DRY_RUN",
        "cleanup": {"removedIds": would_remove, "removedCount": len(would_remove)},
        "config": settings.redacted(),
        "entities": entities,
        "categories": dict(sorted(result.categories.items())),
        "would_publish": [t for t, _ in result.plan.publish],
        "would_remove": would_remove,
        "skipped": [{"id": s.id, "name": s.name, "type": s.type, "reason": s.reason}
                    for s in result.skipped],
        "errors": list(result.errors),
        "statistics": {
            "entities": len(result.entities),
            "by_type": by_type,
            "byType": {"playlists": by_type.get("spotify-playlist", 0),
                       "albums": by_type.get("spotify-album", 0),
                       "plex-media": by_type.get("plex-media", 0)},
            "categories": len(result.categories),
            "skipped": len(result.skipped),
            "messages_to_publish": len(result.plan.publish),
            "messages_unchanged": result.plan.unchanged,
            "messages_to_remove": len(would_remove),
        },
    }
    path = settings.settings_dir / MANIFEST
    write_json_atomic(path, manifest)
    return path
