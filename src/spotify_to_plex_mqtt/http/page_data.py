"""Pure: what the web page's JSON routes answer, built from the last sync and the status.

Nothing here does I/O; `webpage` serves these values. The Plex token is never an input, so
it cannot be in an output: artwork goes through `/artwork/<key>`, Plex Web links name only
the server id and the item's key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from ..core.discovery import Topics
from ..core.entities import Entity, Skipped, short_hash
from ..core.library import FILES

PLEX_WEB = "https://app.plex.tv/desktop/#!/server/"

# Skip reasons (see `entities._plex_target`, `entities.resolve`, `sync.explain_skips`) and
# what the user can do about each, in words.
_FIXES: tuple[tuple[str, str], ...] = (
    ("no Plex playlist", "Sync this playlist to Plex in Spotify-to-Plex first; it is "
                         "published at the next sync after playlists.json names it."),
    ("no Plex album", "Match this album in Plex from Spotify-to-Plex first (its tracks must "
                      "be found in Plex); it is published once track_links.json links it."),
    ("is not a Plex library key", "Save this item again from Plex in Spotify-to-Plex: its "
                                  "link does not point into the Plex library."),
    ("duplicate id", "Remove the second entry with this id from the saved items "
                     "(unsave it and save it again in Spotify-to-Plex)."),
    ("cannot be read", "Fix or restore the file named in the reason; it is read again as soon "
                       "as it changes, and the item stays published meanwhile."),
)
_DEFAULT_FIX = "Check this item in Spotify-to-Plex."


def fix_for(reason: str) -> str:
    """What to do about a skipped item, for its `reason`."""
    return next((fix for marker, fix in _FIXES if marker in reason), _DEFAULT_FIX)


def plex_web_url(entity: Entity) -> str | None:
    """The item in Plex Web, when the server's machine id is known."""
    if not entity.plex_server_id:
        return None
    server = quote(entity.plex_server_id, safe="")
    if entity.media_content_type == "playlist":
        return f"{PLEX_WEB}{server}/playlist?key={quote(f'/playlists/{entity.plex_key}', safe='')}"
    key = quote(f"/library/metadata/{entity.plex_key}", safe="")
    return f"{PLEX_WEB}{server}/details?key={key}"


def artwork_url(entity: Entity) -> str | None:
    """The service's artwork URL; `v` changes when Plex's artwork path does (cache busting)."""
    if not entity.thumb:
        return None
    return f"/artwork/{entity.plex_key}?v={short_hash(entity.thumb)}"


def item_row(entity: Entity, topics: Topics) -> dict[str, Any]:
    return {
        "id": entity.id, "name": entity.name, "category": entity.category,
        "kind": entity.type, "media_type": entity.media_content_type,
        "entity_id": topics.item_entity_id(entity.slug),
        "media_content_id": entity.media_content_id,
        "artwork": artwork_url(entity), "plex_web": plex_web_url(entity),
    }


def _counts(values: Iterable[str]) -> list[dict[str, Any]]:
    return [{"name": name, "count": count}
            for name, count in sorted(Counter(values).items(), key=lambda kv: kv[0].casefold())]


def library_view(entities: tuple[Entity, ...] | None, topics: Topics) -> dict[str, Any]:
    """Every published item, with the categories and kinds and their counts."""
    # By name, as people look for them (the entities come sorted by slug).
    ordered = sorted(entities or (), key=lambda e: (e.name.casefold(), e.id))
    rows = [item_row(e, topics) for e in ordered]
    return {
        "synced": entities is not None,
        "count": len(rows),
        "categories": _counts(e.category for e in entities or ()),
        "kinds": _counts(e.type for e in entities or ()),
        "items": rows,
    }


def group_warnings(warnings: Iterable[str]) -> dict[str, list[str]]:
    """The loader's warnings (each starts with its file's name) by file."""
    grouped: dict[str, list[str]] = {}
    for warning in warnings:
        head = warning.split(" ", 1)[0]
        file = head if head.endswith(".json") else "other"
        grouped.setdefault(file, []).append(warning)
    return grouped


MALFORMED_SHOWN = 200


def skipped_view(skipped: tuple[Skipped, ...] | None, warnings: tuple[str, ...],
                 file_errors: Mapping[str, str]) -> dict[str, Any]:
    """Labelled items that are not published (reason, fix), and each file's problems."""
    grouped = group_warnings(warnings)
    names = list(FILES.values()) + sorted(
        n for n in {*grouped, *file_errors} if n not in FILES.values())
    files = []
    for name in names:
        malformed = grouped.get(name, [])
        files.append({"file": name, "error": file_errors.get(name),
                      "malformed_count": len(malformed),
                      "malformed": malformed[:MALFORMED_SHOWN]})
    return {
        "synced": skipped is not None,
        "count": len(skipped or ()),
        "items": [{"id": s.id, "name": s.name, "kind": s.type, "reason": s.reason,
                   "fix": fix_for(s.reason)} for s in skipped or ()],
        "files": files,
    }
