"""Pure tests of `reconcile` and of the pure part of a sync (`sync.plan_sync`)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from plans import apply_plan
from spotify_to_plex_mqtt.core.discovery import Topics, render
from spotify_to_plex_mqtt.core.entities import resolve
from spotify_to_plex_mqtt.core.library import FileKind, Library, SavedItem
from spotify_to_plex_mqtt.core.plan import desired_state, plan_sync
from spotify_to_plex_mqtt.core.reconcile import Plan, reconcile
from spotify_to_plex_mqtt.core.snapshot import FileState, Snapshot

S1, S2, S3 = "p/items/a", "p/items/b", "p/items/c"
C1, C2, C3 = "h/sensor/p_item_a/config", "h/sensor/p_item_b/config", "h/sensor/p_item_c/config"


# --- reconcile / apply_plan ----------------------------------------------------------------


def test_unchanged_gives_an_empty_plan() -> None:
    state = {S1: b"1", C1: b"c1"}
    plan = reconcile(state, dict(state))
    assert plan == Plan(unchanged=2)
    assert len(plan) == 0
    assert plan.messages == ()


def test_changed_payload_is_published() -> None:
    plan = reconcile({S1: b"new", C1: b"c1"}, {S1: b"old", C1: b"c1"})
    assert plan.publish == ((S1, b"new"),)
    assert plan.clear == ()
    assert plan.unchanged == 1


def test_new_topic_is_published() -> None:
    plan = reconcile({S1: b"1", C1: b"c1"}, {})
    assert set(plan.publish) == {(S1, b"1"), (C1, b"c1")}
    assert plan.unchanged == 0


def test_gone_topic_is_cleared() -> None:
    plan = reconcile({S1: b"1"}, {S1: b"1", S2: b"2", C2: b"c2"})
    assert plan.publish == ()
    assert set(plan.clear) == {S2, C2}
    assert plan.withheld == ()
    assert (C2, b"") in plan.messages
    assert (S2, b"") in plan.messages


def test_empty_actual_payload_is_not_cleared_again() -> None:
    plan = reconcile({}, {S1: b""})
    assert plan.clear == ()


def test_allow_removal_false_clears_nothing_and_lists_withheld() -> None:
    plan = reconcile({S1: b"new"}, {S1: b"old", S2: b"2", C2: b"c2"}, allow_removal=False)
    assert plan.clear == ()
    assert set(plan.withheld) == {S2, C2}
    assert plan.publish == ((S1, b"new"),)
    assert all(payload for _, payload in plan.messages)


def test_states_are_published_before_configs_and_configs_cleared_first() -> None:
    plan = reconcile({C1: b"c1", S1: b"1", C3: b"c3", S3: b"3"},
                     {S2: b"2", C2: b"c2"})
    published = [t for t, _ in plan.publish]
    assert published == sorted(published, key=lambda t: (t.endswith("/config"), t))
    assert published.index(S1) < published.index(C1)
    assert plan.clear == (C2, S2)
    topics = [t for t, _ in plan.messages]
    assert topics.index(C2) < topics.index(S2)


def test_apply_plan() -> None:
    actual = {S1: b"old", S2: b"2"}
    desired = {S1: b"new", S3: b"3"}
    assert apply_plan(actual, reconcile(desired, actual)) == desired
    assert actual == {S1: b"old", S2: b"2"}  # not mutated


topic_names = st.sampled_from(["s/a", "s/b", "s/c", "s/d", "h/a/config", "h/b/config",
                               "h/c/config"])


@settings(max_examples=500)
@given(desired=st.dictionaries(topic_names, st.binary(max_size=4)),
       actual=st.dictionaries(topic_names, st.binary(min_size=1, max_size=4)))
def test_reconcile_property(desired: dict[str, bytes], actual: dict[str, bytes]) -> None:
    plan = reconcile(desired, actual)
    after = apply_plan(actual, plan)
    assert after == desired
    assert len(reconcile(desired, after)) == 0
    assert reconcile(desired, after).unchanged == len(desired)
    # Nothing is sent twice, nothing both published and cleared, nothing needless.
    published = [t for t, _ in plan.publish]
    assert len(set(published)) == len(published)
    assert not set(published) & set(plan.clear)
    assert all(actual.get(t) != p for t, p in plan.publish)
    assert plan.unchanged + len(plan.publish) == len(desired)


@settings(max_examples=300)
@given(desired=st.dictionaries(topic_names, st.binary(min_size=1, max_size=4)),
       actual=st.dictionaries(topic_names, st.binary(min_size=1, max_size=4)))
def test_reconcile_without_removal_property(desired: dict[str, bytes],
                                            actual: dict[str, bytes]) -> None:
    plan = reconcile(desired, actual, allow_removal=False)
    after = apply_plan(actual, plan)
    assert plan.clear == ()
    assert set(plan.withheld) == set(actual) - set(desired)
    assert {t: after[t] for t in desired} == desired
    assert set(after) == set(desired) | set(actual)


# --- sync.plan_sync ------------------------------------------------------------------------


def library(*items: SavedItem) -> Library:
    return Library(items, {i.id: str(n) for n, i in enumerate(items, 1)}, {})


def playlist(ident: str, label: str) -> SavedItem:
    return SavedItem(type="spotify-playlist", id=ident, title=ident.title(), label=label)


def snapshot(lib: Library, complete: bool) -> Snapshot:
    files: dict[FileKind, FileState] = {
        "saved_items": FileState("spotify_saved_items.json", None, (), True),
        "playlists": FileState("playlists.json", None, (), True),
        "track_links": FileState("track_links.json",
                                 None if complete else "track_links.json: empty",
                                 (), complete),
    }
    return Snapshot(lib, files)


def test_plan_sync_complete_snapshot_removes_gone_items() -> None:
    topics = Topics()
    before = render(topics, resolve(library(playlist("jazz1", "Jazz"),
                                            playlist("kids1", "Kids"))).entities)
    snap = snapshot(library(playlist("jazz1", "Jazz")), complete=True)
    assert snap.complete
    resolution, plan = plan_sync(topics, snap, before)
    assert [e.id for e in resolution.entities] == ["jazz1"]
    assert set(plan.clear) == {"spotify-to-plex/items/kids1",
                               "homeassistant/sensor/spotify_to_plex_item_kids1/config"}
    categories = dict(plan.publish)["spotify-to-plex/categories"]
    assert json.loads(categories)["categories"] == ["Jazz"]


def test_plan_sync_incomplete_snapshot_removes_nothing_and_keeps_categories() -> None:
    topics = Topics()
    before = render(topics, resolve(library(playlist("jazz1", "Jazz"),
                                            playlist("kids1", "Kids"),
                                            playlist("kids2", "Kids"))).entities)
    snap = snapshot(library(playlist("jazz1", "Jazz"), playlist("rock1", "Rock")),
                    complete=False)
    assert not snap.complete
    _, plan = plan_sync(topics, snap, before)
    assert plan.clear == ()
    assert set(plan.withheld) == {
        "spotify-to-plex/items/kids1", "spotify-to-plex/items/kids2",
        "homeassistant/sensor/spotify_to_plex_item_kids1/config",
        "homeassistant/sensor/spotify_to_plex_item_kids2/config",
    }
    published = dict(plan.publish)
    assert "spotify-to-plex/items/rock1" in published
    categories = json.loads(published["spotify-to-plex/categories"])
    assert categories["categories"] == ["Jazz", "Kids", "Rock"]
    assert categories["items"] == {"Jazz": 1, "Kids": 2, "Rock": 1}
    assert categories["count"] == 3
    after = apply_plan(before, plan)
    assert "spotify-to-plex/items/kids1" in after


def test_plan_sync_incomplete_and_unchanged_is_quiet() -> None:
    topics = Topics()
    lib = library(playlist("jazz1", "Jazz"))
    snap = snapshot(lib, complete=False)
    # The broker as a first sync left it, bridge entities (and their timestamp) included.
    before = desired_state(topics, resolve(lib), {}, allow_removal=False, problems=snap.errors)
    _, plan = plan_sync(topics, snap, before)
    assert len(plan) == 0
    assert plan.withheld == ()


def test_desired_state_ignores_unparseable_kept_states() -> None:
    topics = Topics()
    actual = {"spotify-to-plex/items/junk": b"not json",
              "spotify-to-plex/items/list": b"[1]",
              "spotify-to-plex/items/nocat": b'{"category": ""}'}
    resolution = resolve(library(playlist("jazz1", "Jazz")))
    desired = desired_state(topics, resolution, actual, allow_removal=False)
    assert json.loads(desired["spotify-to-plex/categories"])["categories"] == ["Jazz"]


def test_plan_sync_then_apply_reaches_a_fixed_point() -> None:
    topics = Topics()
    snap = snapshot(library(playlist("a", "X"), playlist("b", "Y")), complete=True)
    _, plan = plan_sync(topics, snap, {"spotify-to-plex/items/zzz": b'{"category": "Z"}'})
    after = apply_plan({"spotify-to-plex/items/zzz": b'{"category": "Z"}'}, plan)
    _, again = plan_sync(topics, snap, after)
    assert len(again) == 0
    assert "spotify-to-plex/items/zzz" not in after
