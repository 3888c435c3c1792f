"""Pure tests of `entities.resolve` and slug assignment."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spotify_to_plex_mqtt.core.entities import Entity, Resolution, assign_slugs, resolve
from spotify_to_plex_mqtt.core.library import Library, SavedItem, parse_saved_items

SLUG = re.compile(r"^[a-z0-9_]+$")


def lib(items: list[SavedItem], playlists: dict[str, str] | None = None,
        track_links: dict[str, str] | None = None) -> Library:
    return Library(tuple(items), playlists or {}, track_links or {})


def playlist(ident: str, label: str = "Jazz", title: str = "") -> SavedItem:
    return SavedItem(type="spotify-playlist", id=ident, title=title or ident, label=label)


def album(ident: str, label: str = "Jazz") -> SavedItem:
    return SavedItem(type="spotify-album", id=ident, title=ident, label=label)


def plex_media(ident: str, uri: str, label: str = "Rock") -> SavedItem:
    return SavedItem(type="plex-media", id=ident, title=ident, uri=uri, label=label)


def by_id(entities: tuple[Entity, ...]) -> dict[str, Entity]:
    return {e.id: e for e in entities}


# --- which items ---------------------------------------------------------------------------


def test_only_labelled_items_are_published() -> None:
    library = lib([playlist("p1"), playlist("p2", label=""), playlist("p3", label="Kids")],
                  playlists={"p1": "1", "p2": "2", "p3": "3"})
    resolution = resolve(library)
    assert [e.id for e in resolution.entities] == ["p1", "p3"]
    assert resolution.skipped == ()


def test_blank_labels_from_the_file_are_not_published() -> None:
    data: list[dict[str, Any]] = [
        {"type": "spotify-playlist", "id": "p1", "title": "One", "label": "   "},
        {"type": "spotify-playlist", "id": "p2", "title": "Two", "label": None},
        {"type": "spotify-playlist", "id": "p3", "title": "Three"},
        {"type": "spotify-playlist", "id": "p4", "title": "Four", "label": " Jazz\t"},
    ]
    items = parse_saved_items(data).value
    resolution = resolve(lib(list(items), playlists={f"p{i}": str(i) for i in range(1, 5)}))
    assert [(e.id, e.category) for e in resolution.entities] == [("p4", "Jazz")]


def test_whitespace_label_is_not_a_label() -> None:
    # resolve() is public; a SavedItem built elsewhere with a blank label is not labelled.
    resolution = resolve(lib([playlist("p1", label="  \t")], playlists={"p1": "1"}))
    assert resolution.entities == ()


# --- mapping -------------------------------------------------------------------------------


def test_spotify_playlist_maps_via_playlists_json() -> None:
    resolution = resolve(lib([playlist("37i9dQZF1DX", title="Jazz Classics")],
                             playlists={"37i9dQZF1DX": "90001"}),
                         thumbs={"90001": "/library/metadata/90001/thumb/1"},
                         plex_server_id="srv123")
    (entity,) = resolution.entities
    assert entity.media_content_type == "playlist"
    assert entity.plex_key == "90001"
    assert entity.media_content_id == entity.plex_uri == "plex://srv123/90001"
    assert entity.plex_path == "/library/metadata/90001"
    assert entity.thumb == "/library/metadata/90001/thumb/1"
    assert entity.name == "Jazz Classics"
    assert entity.category == "Jazz"
    assert entity.icon == "mdi:playlist-music"


def test_liked_songs_playlist_keeps_the_original_entity_id() -> None:
    # The original service dropped everything but [a-z0-9]: `liked-Demo` -> `likeddemo`.
    (entity,) = resolve(lib([playlist("liked-Demo")], playlists={"liked-Demo": "5"})).entities
    assert entity.slug == "likeddemo"
    assert entity.plex_key == "5"


def test_spotify_album_maps_via_track_links() -> None:
    (entity,) = resolve(lib([album("1weenld61")], track_links={"1weenld61": "51001"})).entities
    assert entity.media_content_type == "album"
    assert entity.plex_key == "51001"
    # No server id known: the single-server form, which Home Assistant still plays.
    assert entity.media_content_id == entity.plex_uri == "plex://51001"
    assert entity.plex_path == "/library/metadata/51001"
    assert entity.icon == "mdi:album"


def test_album_is_not_mapped_through_playlists_json() -> None:
    resolution = resolve(lib([album("x")], playlists={"x": "1"}))
    assert resolution.entities == ()
    assert "track_links.json" in resolution.skipped[0].reason


def test_playlist_is_not_mapped_through_track_links() -> None:
    resolution = resolve(lib([playlist("x")], track_links={"x": "1"}))
    assert resolution.entities == ()
    assert "playlists.json" in resolution.skipped[0].reason


@pytest.mark.parametrize(
    ("uri", "media_type", "key"),
    [
        ("/library/metadata/123/children", "album", "123"),
        ("/library/metadata/123", "album", "123"),
        ("/playlists/999/items", "playlist", "999"),
        ("/playlists/999", "playlist", "999"),
    ],
)
def test_plex_media_maps_via_uri(uri: str, media_type: str, key: str) -> None:
    (entity,) = resolve(lib([plex_media("plex://album/5d07", uri)])).entities
    assert entity.media_content_type == media_type
    assert entity.plex_key == key
    assert entity.media_content_id == f"plex://{key}"
    assert entity.plex_path == f"/library/metadata/{key}"
    assert entity.icon.startswith("mdi:")
    assert SLUG.match(entity.slug)


@pytest.mark.parametrize("uri", ["", "spotify:album:x", "/library/sections/1/all",
                                 "/playlists/abc/items", "/library/metadata/x/children"])
def test_plex_media_with_bad_uri_is_skipped(uri: str) -> None:
    resolution = resolve(lib([plex_media("m", uri)]))
    assert resolution.entities == ()
    (skipped,) = resolution.skipped
    assert skipped.id == "m"
    assert skipped.type == "plex-media"
    assert "uri" in skipped.reason


def test_unmapped_items_are_skipped_with_a_reason() -> None:
    library = lib([playlist("p1"), album("a1"), playlist("p2"), album("a2")],
                  playlists={"p2": "2"}, track_links={"a2": "22"})
    resolution = resolve(library)
    assert sorted(e.id for e in resolution.entities) == ["a2", "p2"]
    reasons = {s.id: s.reason for s in resolution.skipped}
    assert reasons == {"p1": "no Plex playlist in playlists.json",
                       "a1": "no Plex album in track_links.json"}
    assert {s.name for s in resolution.skipped} == {"p1", "a1"}


def test_duplicates_first_wins() -> None:
    library = lib([playlist("p1", label="Jazz", title="First"),
                   playlist("p1", label="Kids", title="Second")], playlists={"p1": "1"})
    resolution = resolve(library)
    (entity,) = resolution.entities
    assert (entity.name, entity.category) == ("First", "Jazz")
    (skipped,) = resolution.skipped
    assert skipped.name == "Second"
    assert "duplicate" in skipped.reason


def test_unlabelled_duplicate_is_ignored() -> None:
    library = lib([playlist("p1", label=""), playlist("p1", label="Kids")],
                  playlists={"p1": "1"})
    resolution = resolve(library)
    assert [e.category for e in resolution.entities] == ["Kids"]
    assert resolution.skipped == ()


def test_entities_sorted_by_slug() -> None:
    library = lib([playlist("c"), playlist("a"), playlist("b")],
                  playlists={"a": "1", "b": "2", "c": "3"})
    assert [e.slug for e in resolve(library).entities] == ["a", "b", "c"]


# --- slugs ---------------------------------------------------------------------------------


def test_real_world_ids_get_valid_slugs() -> None:
    ids = ["37i9dQZF1DXbITWG1ZJKYt", "liked-5f3a", "plex://album/5d07c17e403c640290856b9b",
           "com.plexapp.agents.none://0f5e7a2c-6b3e-4c1a-9a53-2f9e8d1c4b7a?lang=en", "日本語",
           "+#/", ""]
    slugs = assign_slugs(ids)
    assert set(slugs) == set(ids)
    assert len(set(slugs.values())) == len(ids)
    assert all(SLUG.match(s) for s in slugs.values())
    assert slugs["37i9dQZF1DXbITWG1ZJKYt"] == "37i9dqzf1dxbitwg1zjkyt"


def test_ids_differing_only_by_case_get_distinct_slugs() -> None:
    library = lib([playlist("AbCdEf"), playlist("abcdef"), playlist("ABCDEF")],
                  playlists={"AbCdEf": "1", "abcdef": "2", "ABCDEF": "3"})
    entities = resolve(library).entities
    slugs = [e.slug for e in entities]
    assert len(set(slugs)) == 3
    assert all(SLUG.match(s) for s in slugs)
    assert all(s.startswith("abcdef_") for s in slugs)
    assert {e.plex_key for e in entities} == {"1", "2", "3"}


def test_unique_ids_keep_their_plain_slug() -> None:
    assert assign_slugs(["AbC", "37i9dQZF"]) == {"AbC": "abc", "37i9dQZF": "37i9dqzf"}


def test_ids_crafted_from_hashed_slugs_stay_distinct() -> None:
    hashed = assign_slugs(["A", "a"])
    crafted = [*hashed.values(), *(s.replace("_", "") for s in hashed.values()),
               *(s.replace("_", "-") for s in hashed.values())]
    slugs = assign_slugs(["A", "a", *crafted])
    assert len(set(slugs.values())) == 2 + len(crafted)
    assert all(SLUG.match(s) for s in slugs.values())


def test_punctuation_collisions() -> None:
    slugs = assign_slugs(["a-b", "a_b", "a.b", "A B"])
    assert len(set(slugs.values())) == 4


@settings(max_examples=400)
@given(ids=st.lists(st.text(max_size=12), unique=True, max_size=25), data=st.data())
def test_assign_slugs_property(ids: list[str], data: st.DataObject) -> None:
    slugs = assign_slugs(ids)
    assert set(slugs) == set(ids)
    assert len(set(slugs.values())) == len(ids)
    for slug in slugs.values():
        assert SLUG.match(slug), slug
    shuffled = data.draw(st.permutations(ids))
    assert assign_slugs(shuffled) == slugs


@settings(max_examples=200)
@given(ids=st.lists(
    st.text(alphabet="aAbB-_.", min_size=1, max_size=4), unique=True, min_size=2, max_size=20),
    data=st.data())
def test_assign_slugs_property_many_collisions(ids: list[str], data: st.DataObject) -> None:
    slugs = assign_slugs(ids)
    assert len(set(slugs.values())) == len(ids)
    assert all(SLUG.match(s) for s in slugs.values())
    assert assign_slugs(data.draw(st.permutations(ids))) == slugs


def test_with_artwork_keeps_every_other_field() -> None:
    # with_artwork builds entities field by field: a field added to Entity must not be lost.
    values: dict[str, Any] = {f.name: f"value-{f.name}" for f in dataclasses.fields(Entity)}
    entity = Entity(**values)
    enriched = Resolution((entity,), ()).with_artwork({entity.plex_key: "/thumb"}, "server")
    assert enriched.entities == (dataclasses.replace(entity, thumb="/thumb",
                                                     plex_server_id="server"),)


def test_resolve_reuses_a_previous_entity_only_for_the_same_data() -> None:
    library = lib([playlist("p1"), playlist("p2"), playlist("p3"), album("a1")],
                  playlists={"p1": "101", "p2": "102", "p3": "103"},
                  track_links={"a1": "201"})
    before = Resolution(resolve(library).entities, ()).with_artwork(
        {"101": "/t/101", "102": "/t/102", "103": "/t/103", "201": "/t/201"}, "srv")
    previous = {e.slug: e for e in before.entities}
    changed = lib([playlist("p1"), playlist("p2", label="Blues"), playlist("p3", title="New"),
                   album("a1")],
                  playlists={"p1": "101", "p2": "102", "p3": "103"},
                  track_links={"a1": "202"})  # a1 now maps to another Plex album

    again = by_id(resolve(changed, previous=previous).entities)
    old = by_id(before.entities)

    assert again["p1"] is old["p1"]  # as published, with its artwork
    assert again["p1"].thumb == "/t/101"
    for ident in ("p2", "p3", "a1"):  # label, title, Plex key: new entities, no artwork yet
        assert again[ident] is not old[ident]
        assert (again[ident].thumb, again[ident].plex_server_id) == ("", "")
    assert again["p2"].category == "Blues"
    assert again["p3"].name == "New"
    assert again["a1"].plex_key == "202"
    # Without `previous`, nothing is reused.
    assert resolve(changed).entities == resolve(changed, previous={}).entities


PLAYABLE = re.compile(r"^plex://([A-Za-z0-9]+/)?[0-9]+$")


@pytest.mark.parametrize("server_id", ["", "0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4"])
def test_every_published_id_is_playable(server_id: str) -> None:
    # What Home Assistant's Plex integration resolves (process_plex_payload); the old
    # /library/metadata/<key> stays as plex_path.
    resolution = resolve(lib([playlist("p1"), album("a1"),
                              plex_media("plex://album/5d07", "/playlists/7/items")],
                             playlists={"p1": "90001"}, track_links={"a1": "51001"}),
                         plex_server_id=server_id)
    assert len(resolution.entities) == 3
    for entity in resolution.entities:
        assert PLAYABLE.match(entity.media_content_id), entity.media_content_id
        assert entity.plex_uri == entity.media_content_id
        assert entity.media_content_id.endswith(f"/{entity.plex_key}")
        assert entity.plex_path == f"/library/metadata/{entity.plex_key}"
