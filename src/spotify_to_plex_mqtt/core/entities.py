"""Pure mapping from the library to the entities Home Assistant should show.

Decides which labelled items can be published (they need a Plex key) and gives each a slug
that is valid in MQTT topics and Home Assistant entity ids, and unique among the items.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Literal, TypeGuard

from .library import Library, SavedItem, plex_key

MediaType = Literal["playlist", "album"]

_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_PLEX_PLAYLIST_URI = re.compile(r"^/playlists/(\d+)(?:/items)?/?$")

# The original service's icons, kept so that dashboards look the same after the switch.
ICONS: Mapping[str, str] = {
    "spotify-playlist": "mdi:playlist-music",
    "spotify-album": "mdi:album",
    "plex-media": "mdi:music-box-multiple",
}


@dataclass(frozen=True, slots=True)
class Entity:
    """One item sensor: a labelled item that maps to a Plex playlist or album."""

    id: str
    slug: str
    name: str
    category: str
    type: str
    media_content_type: MediaType
    plex_key: str
    thumb: str = ""
    plex_server_id: str = ""

    @property
    def category_id(self) -> str:
        # As the original published it: automations compare against this value.
        return self.category.lower()

    @property
    def media_content_id(self) -> str:
        """What `media_player.play_media` plays: `plex://<server id>/<key>`, or the
        single-server form `plex://<key>` while the server id is unknown.

        Home Assistant's Plex integration (`process_plex_payload`) resolves only these forms
        and JSON; Sonos and Cast hand an id to it only when it starts with `plex://`. The
        original's `/library/metadata/<key>` (now `plex_path`) played nowhere.
        """
        if self.plex_server_id:
            return f"plex://{self.plex_server_id}/{self.plex_key}"
        return f"plex://{self.plex_key}"

    @property
    def plex_uri(self) -> str:
        # Kept for automations written against earlier releases: the same playable id.
        return self.media_content_id

    @property
    def plex_path(self) -> str:
        """The Plex library path of the item, as the original published it."""
        return f"/library/metadata/{self.plex_key}"

    @property
    def icon(self) -> str:
        return ICONS.get(self.type, "mdi:music")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A labelled item that cannot be published, and why."""

    id: str
    name: str
    type: str
    reason: str


@dataclass(frozen=True, slots=True)
class Resolution:
    entities: tuple[Entity, ...]
    skipped: tuple[Skipped, ...]

    def with_artwork(self, thumbs: Mapping[str, str], server_id: str) -> Resolution:
        """The same entities with Plex thumbs (by key) and the server id of their playable
        ids (`media_content_id`)."""
        # Built directly: `dataclasses.replace` costs ~4 us an entity, 40 ms at 10k items.
        entities = tuple(
            Entity(e.id, e.slug, e.name, e.category, e.type, e.media_content_type,
                   e.plex_key, thumbs.get(e.plex_key, e.thumb), server_id or e.plex_server_id)
            for e in self.entities)
        return Resolution(entities, self.skipped)


def slugify(text: str) -> str:
    """Lower-case `[a-z0-9_]` form of `text`: valid in topics and Home Assistant entity ids."""
    return _NOT_SLUG.sub("_", text.lower()).strip("_")


def item_slug(item_id: str) -> str:
    """The original service's entity id suffix: lower case with everything but `[a-z0-9]`
    dropped, so `liked-Demo` gives `likeddemo` and existing entity ids stay the same."""
    return _NOT_ALNUM.sub("", item_id.lower())


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def assign_slugs(ids: Iterable[str]) -> dict[str, str]:
    """Give each distinct id a unique slug.

    Most ids keep their plain slug, so entity ids stay those the original service created.
    Ids that fold to the same slug (Spotify ids that differ only by case or punctuation) all
    get `_` and a hash of the exact id appended, so neither wins by the order it came in.
    """
    first: dict[str, str] = {}  # plain slug -> the first id folding to it
    clashes: dict[str, set[str]] = defaultdict(set)
    for ident in ids:
        base = item_slug(ident) or short_hash(ident)
        other = first.setdefault(base, ident)
        if other != ident:
            clashes[base].update((other, ident))
    slugs = {ident: base for base, ident in first.items()}
    for base, members in clashes.items():
        for ident in members:
            slug = f"{base}_{short_hash(ident)}"
            # A hashed slug equal to some other id's plain slug needs one more round.
            while slug in first:
                slug = f"{slug}_{short_hash(slug + ident)}"
            slugs[ident] = slug
    return slugs


def _plex_target(item: SavedItem, library: Library) -> tuple[MediaType, str] | str:
    """The Plex (media type, key) of an item, or the reason there is none."""
    if item.type == "spotify-playlist":
        key = library.playlists.get(item.id)
        return ("playlist", key) if key else "no Plex playlist in playlists.json"
    if item.type == "spotify-album":
        key = library.track_links.get(item.id)
        return ("album", key) if key else "no Plex album in track_links.json"
    match = _PLEX_PLAYLIST_URI.match(item.uri.strip())
    if match:
        return ("playlist", match.group(1))
    key = plex_key(item.uri)
    return ("album", key) if key else f"uri {item.uri!r} is not a Plex library key"


def _same_item(old: object, item: SavedItem, media_type: MediaType,
               key: str) -> TypeGuard[Entity]:
    return (type(old) is Entity and old.id == item.id and old.name == item.title
            and old.category == item.label and old.type == item.type
            and old.media_content_type == media_type and old.plex_key == key)


def resolve(library: Library, *, thumbs: Mapping[str, str] | None = None,
            plex_server_id: str = "",
            previous: Mapping[str, object] | None = None) -> Resolution:
    """Entities for every labelled, mappable item; the rest as `Skipped` with a reason.

    An item that `previous` (entities by slug) has with the same data is that entity, as it
    is: with the artwork it had.
    """
    seen: dict[str, SavedItem] = {}
    skipped: list[Skipped] = []
    for item in library.items:
        if not item.label.strip():
            continue
        if item.id in seen:
            skipped.append(Skipped(item.id, item.title, item.type,
                                   "duplicate id; the first entry is published"))
            continue
        seen[item.id] = item
    slugs = assign_slugs(seen)
    thumbs = thumbs or {}
    entities: list[Entity] = []
    for item in seen.values():
        target = _plex_target(item, library)
        if isinstance(target, str):
            skipped.append(Skipped(item.id, item.title, item.type, target))
            continue
        media_type, key = target
        slug = slugs[item.id]
        if previous is not None:
            old = previous.get(slug)
            if _same_item(old, item, media_type, key):
                entities.append(old)
                continue
        # Positional: this runs for every item on every sync.
        entities.append(Entity(item.id, slug, item.title, item.label, item.type,
                               media_type, key, thumbs.get(key, ""), plex_server_id))
    entities.sort(key=attrgetter("slug"))
    return Resolution(tuple(entities), tuple(skipped))
