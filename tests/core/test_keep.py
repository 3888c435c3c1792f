"""Pure tests of `keep` (a malformed entry keeps its item's last good version) and of the
snapshot it feeds (`LibrarySource`), plus the strict reader's refusals (`jsonfile`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spotify_to_plex_mqtt.core.keep import merge_items, merge_mapping
from spotify_to_plex_mqtt.core.library import (
    PLAYLISTS,
    SAVED_ITEMS,
    TRACK_LINKS,
    SavedItem,
    parse_playlists,
    parse_saved_items,
    parse_track_links,
)
from spotify_to_plex_mqtt.core.problems import FileProblem
from spotify_to_plex_mqtt.inputs.source import LibrarySource
from spotify_to_plex_mqtt.settings.jsonfile import parse_strict, read_json_file


def item(ident: str, title: object = "T", label: str = "Jazz") -> dict[str, Any]:
    return {"type": "spotify-playlist", "id": ident, "title": title, "uri": "", "image": "",
            "label": label}


def saved(*entries: Any) -> tuple[SavedItem, ...]:
    return parse_saved_items(list(entries)).value


def ids(items: tuple[SavedItem, ...]) -> list[str]:
    return sorted(i.id for i in items)


# -- merge_items / merge_mapping ------------------------------------------------------------


def test_a_malformed_entry_keeps_the_last_good_version_of_its_item() -> None:
    old = saved(item("a", "Old A"), item("b"))
    loaded = parse_saved_items([item("a", 42), item("b", "New B")])
    kept = merge_items(loaded, old)
    assert {i.id: i.title for i in kept.value} == {"a": "Old A", "b": "New B"}
    assert kept.kept == ("a",)
    assert not kept.unknown


def test_a_good_version_of_the_entry_wins_over_the_kept_one() -> None:
    old = saved(item("a", "Old A"), item("b"))
    kept = merge_items(parse_saved_items([item("a", "Fixed"), item("b")]), old)
    assert {i.id: i.title for i in kept.value} == {"a": "Fixed", "b": "T"}
    assert kept.kept == ()


def test_a_duplicate_good_entry_is_the_good_version() -> None:
    old = saved(item("a", "Old A"), item("b"))
    loaded = parse_saved_items([item("a", "New"), item("a", None), item("b")])
    assert {i.title for i in merge_items(loaded, old).value if i.id == "a"} == {"New"}


def test_an_entry_gone_from_a_file_that_parsed_is_a_real_removal() -> None:
    old = saved(item("a"), item("b"), item("c"))
    loaded = parse_saved_items([item("a", 42), item("b")])
    assert ids(merge_items(loaded, old).value) == ["a", "b"]  # c was really removed


def test_an_entry_without_a_readable_id_keeps_every_item_of_the_last_version() -> None:
    old = saved(item("a"), item("b"), item("c"))
    loaded = parse_saved_items([item("a"), {"type": "spotify-playlist", "id": 7, "title": "?"}])
    kept = merge_items(loaded, old)
    assert ids(kept.value) == ["a", "b", "c"]
    assert sorted(kept.kept) == ["b", "c"]
    assert not kept.unknown


def test_without_a_last_good_version_a_malformed_entry_is_unknown() -> None:
    loaded = parse_saved_items([item("a"), item("b", 42)])
    kept = merge_items(loaded, None)
    assert ids(kept.value) == ["a"]
    assert kept.unknown
    later = merge_items(loaded, kept.value)  # still never read well
    assert later.unknown


def test_a_clean_file_keeps_nothing() -> None:
    old = saved(item("a"), item("b"))
    kept = merge_items(parse_saved_items([item("a")]), old)
    assert ids(kept.value) == ["a"]
    assert kept.kept == ()
    assert not kept.unknown


def test_mappings_keep_the_old_key_of_a_malformed_entry() -> None:
    old = parse_playlists({"data": [{"id": "a", "plex": "1"}, {"id": "b", "plex": "2"}]}).value
    loaded = parse_playlists({"data": [{"id": "a", "plex": "nonsense"}, {"id": "b",
                                                                          "plex": "3"}]})
    assert merge_mapping(loaded, old).value == {"a": "1", "b": "3"}
    links = parse_track_links([{"spotify_id": "x", "plex_id": ["5"]},
                               {"spotify_id": "y", "plex_id": ["6"]}]).value
    bad = parse_track_links([{"spotify_id": "x", "plex_id": ["?"]}, {"plex_id": ["7"]},
                             {"spotify_id": "z", "plex_id": ["8"]}])
    merged = merge_mapping(bad, links)
    assert merged.value == {"x": "5", "y": "6", "z": "8"}  # y: the unidentified entry
    assert not merged.unknown


# -- LibrarySource: reported like an unreadable file, removals safe or withheld -------------


def write(root: Path, name: str, data: Any) -> None:
    (root / name).write_text(json.dumps(data), encoding="utf-8")


def library_dir(root: Path, entries: list[Any]) -> Path:
    write(root, SAVED_ITEMS, entries)
    write(root, PLAYLISTS, {"data": [{"id": e["id"], "plex": str(n + 1)}
                                     for n, e in enumerate(entries) if isinstance(e, dict)
                                     and isinstance(e.get("id"), str)]})
    write(root, TRACK_LINKS, [])
    return root


def test_the_source_reports_the_entry_and_keeps_the_item(tmp_path: Path) -> None:
    source = LibrarySource(library_dir(tmp_path, [item("a", "A"), item("b")]))
    assert source.read().complete
    write(tmp_path, SAVED_ITEMS, [item("a", 42), item("b")])
    snapshot = source.read()
    assert [i.title for i in snapshot.library.items if i.id == "a"] == ["A"]
    assert snapshot.complete  # the kept version stands in: other removals are safe
    (error,) = snapshot.errors
    assert error.startswith(SAVED_ITEMS)
    assert "entry #1" in error
    assert "'a'" in error
    assert snapshot.new_errors == ((SAVED_ITEMS, error),)
    assert source.read().new_errors == ()  # reported once
    write(tmp_path, SAVED_ITEMS, [item("b")])
    snapshot = source.read()
    assert [i.id for i in snapshot.library.items] == ["b"]  # a real removal
    assert snapshot.errors == ()
    assert snapshot.recovered == (SAVED_ITEMS,)


def test_a_malformed_entry_at_start_withholds_removals(tmp_path: Path) -> None:
    source = LibrarySource(library_dir(tmp_path, [item("a"), item("b", 42)]))
    snapshot = source.read()
    assert not snapshot.complete
    assert len(snapshot.errors) == 1
    assert "no entity is removed" in snapshot.errors[0]


# -- the strict reader ----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "constant", "line", "column"), [
    ('[{"title": NaN}]', "NaN", 1, 12),
    ('{"data": [\n  {"id": "x", "plex": Infinity}]}', "Infinity", 2, 23),
    ('[1,\n-Infinity]', "-Infinity", 2, 1),
    ('["NaN", "Infinity", NaN]', "NaN", 1, 21),
])
def test_nan_and_infinity_are_invalid_json_by_line_and_column(
        text: str, constant: str, line: int, column: int) -> None:
    with pytest.raises(FileProblem) as info:
        parse_strict(text.encode(), "f.json")
    assert f"line {line}, column {column}" in str(info.value)
    assert f"{constant} is not a JSON value" in str(info.value)
    assert str(info.value).startswith("f.json: invalid JSON")


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / PLAYLISTS
    os.mkfifo(fifo)
    with pytest.raises(FileProblem) as info:
        read_json_file(fifo)  # would block forever in a plain open()
    assert "named pipe (FIFO)" in str(info.value)
    assert str(info.value).startswith(PLAYLISTS)


def test_a_device_is_refused(tmp_path: Path) -> None:
    (tmp_path / PLAYLISTS).symlink_to("/dev/zero")
    with pytest.raises(FileProblem) as info:
        read_json_file(tmp_path / PLAYLISTS)
    assert "character device" in str(info.value)


def test_a_socket_is_refused(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / PLAYLISTS))
        with pytest.raises(FileProblem) as info:
            read_json_file(tmp_path / PLAYLISTS)
    assert "socket" in str(info.value)


def test_size_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spotify_to_plex_mqtt.settings import jsonfile

    (tmp_path / PLAYLISTS).write_text(json.dumps({"data": []}) + " " * 2048)
    monkeypatch.setattr(jsonfile, "MAX_BYTES", 1024)
    with pytest.raises(FileProblem) as info:
        jsonfile.read_regular(tmp_path / PLAYLISTS, PLAYLISTS, jsonfile.MAX_BYTES)
    assert "larger than" in str(info.value)


# -- property: what is kept, what is removed -------------------------------------------------

_IDS = st.sampled_from(["a", "b", "c", "d", "e", "f"])
# An entry: a good one, one with a bad title (id readable), or one without a readable id.
_ENTRY = st.tuples(st.sampled_from(["good", "bad", "no-id"]), _IDS, st.text(max_size=3))


def _entry(kind: str, ident: str, title: str) -> Any:
    if kind == "good":
        return item(ident, title or "t")
    if kind == "bad":
        return item(ident, 7)
    return {"type": "spotify-playlist", "id": None, "title": title}


@settings(max_examples=400, deadline=None)
@given(old=st.lists(_ENTRY.filter(lambda e: e[0] == "good"), max_size=6),
       new=st.lists(_ENTRY, min_size=1, max_size=6))
def test_merge_keeps_exactly_what_a_malformed_entry_may_stand_for(
        old: list[tuple[str, str, str]], new: list[tuple[str, str, str]]) -> None:
    before = parse_saved_items([_entry(*e) for e in old]).value
    loaded = parse_saved_items([_entry(*e) for e in new]) if any(
        e[0] == "good" for e in new) else None
    if loaded is None:
        return  # every entry refused: the file is refused whole (test_library covers it)
    merged = {i.id: i for i in reversed(merge_items(loaded, before).value)}
    good = {i.id: i for i in reversed(loaded.value)}
    old_by_id = {i.id: i for i in reversed(before)}
    bad = {e[1] for e in new if e[0] == "bad"}
    unidentified = any(e[0] == "no-id" for e in new)
    for ident in {*good, *old_by_id}:
        if ident in good:  # a good entry wins
            assert merged[ident] == good[ident]
        elif ident in bad or unidentified:  # it may be what the malformed entry is
            assert merged[ident] == old_by_id[ident]
        else:  # gone from a file that parsed: a real removal
            assert ident not in merged
