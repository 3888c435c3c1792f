"""Pure tests of the settings-file readers in `library` (files under tmp_path only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from spotify_to_plex_mqtt.core.library import (
    PLAYLISTS,
    SAVED_ITEMS,
    SAVED_ITEMS_OLD,
    TRACK_LINKS,
    SavedItem,
    parse_playlists,
    parse_saved_items,
    parse_track_links,
    plex_key,
)
from spotify_to_plex_mqtt.core.problems import FileProblem
from spotify_to_plex_mqtt.inputs.library_files import load_file, read_json, saved_items_path


def write(directory: Path, name: str, data: Any) -> Path:
    path = directory / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def item(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"type": "spotify-playlist", "uri": "spotify:playlist:abc",
                            "id": "abc", "title": "Jazz Classics", "image": "http://img/1.jpg",
                            "label": "Jazz"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


# --- plex_key ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("555", "555"),
        (" 555 ", "555"),
        ("/library/metadata/555", "555"),
        ("/library/metadata/555/children", "555"),
        (555, "555"),
        (0, "0"),
        ("0", "0"),
        ("", None),
        ("abc", None),
        ("/library/metadata/", None),
        ("/library/metadata/abc", None),
        ("/playlists/555", None),
        ("555abc", None),
        ("-5", None),
        (-5, None),
        (True, None),
        (False, None),
        (5.0, None),
        (None, None),
        (["555"], None),
        ({"key": "555"}, None),
    ],
)
def test_plex_key(raw: object, expected: str | None) -> None:
    assert plex_key(raw) == expected


# --- read_json -----------------------------------------------------------------------------


def test_read_json_valid(tmp_path: Path) -> None:
    path = write(tmp_path, PLAYLISTS, {"data": [1, "é"]})
    assert read_json(path) == {"data": [1, "é"]}


def test_read_json_accepts_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / PLAYLISTS
    path.write_bytes(b"\xef\xbb\xbf" + b'{"data": []}')
    assert read_json(path) == {"data": []}


def _problem(path: Path) -> FileProblem:
    with pytest.raises(FileProblem) as info:
        read_json(path)
    assert info.value.file == path.name
    assert str(info.value).startswith(f"{path.name}: ")
    assert info.value.__cause__ is None
    return info.value


@pytest.mark.parametrize("content", [b"", b"   \n\t", b"\n"])
def test_read_json_empty(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / TRACK_LINKS
    path.write_bytes(content)
    assert "empty" in _problem(path).reason


def test_read_json_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / TRACK_LINKS
    path.write_text('[\n  {"spotify_id": "a",\n  "plex_id": [1, 2\n', encoding="utf-8")
    problem = _problem(path)
    assert "invalid JSON" in problem.reason
    assert "line 4" in problem.reason
    assert "column 1" in problem.reason


def test_read_json_truncated(tmp_path: Path) -> None:
    path = tmp_path / SAVED_ITEMS
    path.write_text('[{"type": "spotify-playlist", "id": "ab', encoding="utf-8")
    problem = _problem(path)
    assert "line 1" in problem.reason
    assert "column" in problem.reason


def test_read_json_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / SAVED_ITEMS
    path.write_bytes('[{"title": "café"}]'.encode("latin-1"))
    assert "UTF-8" in _problem(path).reason


def test_read_json_missing_file(tmp_path: Path) -> None:
    problem = _problem(tmp_path / PLAYLISTS)
    assert "does not exist" in problem.reason
    assert str(tmp_path) in str(problem)


def test_read_json_directory(tmp_path: Path) -> None:
    path = tmp_path / PLAYLISTS
    path.mkdir()
    assert "directory" in _problem(path).reason


def test_read_json_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, PLAYLISTS, {"data": []})

    def deny(*_args: object) -> int:
        raise PermissionError(13, "Permission denied", str(path))

    # Root reads any file: the refusal is made by the open the reader does.
    monkeypatch.setattr("spotify_to_plex_mqtt.settings.jsonfile.os.open", deny)
    assert "permission denied" in _problem(path).reason


def test_read_json_other_os_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, PLAYLISTS, {"data": []})

    def broken(*_args: object) -> int:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("spotify_to_plex_mqtt.settings.jsonfile.os.open", broken)
    assert "Input/output error" in _problem(path).reason


def test_read_json_deeply_nested_garbage_is_a_file_problem(tmp_path: Path) -> None:
    # A corrupted file must be reported like any other invalid JSON, not crash the reader.
    path = tmp_path / TRACK_LINKS
    path.write_text("[" * 200_000, encoding="utf-8")
    _problem(path)


# --- parse_saved_items ---------------------------------------------------------------------


def test_saved_items_valid() -> None:
    data = [
        item(),
        item(type="spotify-album", id="alb1", title="Kind of Blue", label=" Jazz "),
        item(type="plex-media", id="plex://album/5d07", uri="/library/metadata/1/children",
             title="Abbey Road", label=None),
        item(id="nolabel", label=...),
        item(id="extra", user="me", sync=True, sync_interval=3),
    ]
    loaded = parse_saved_items(data)
    assert loaded.warnings == ()
    assert [i.id for i in loaded.value] == ["abc", "alb1", "plex://album/5d07", "nolabel",
                                            "extra"]
    assert loaded.value[0] == SavedItem(type="spotify-playlist", id="abc", title="Jazz Classics",
                                        uri="spotify:playlist:abc", image="http://img/1.jpg",
                                        label="Jazz")
    assert loaded.value[1].label == "Jazz"
    assert loaded.value[2].label == ""
    assert loaded.value[3].label == ""


def test_saved_items_blank_title_falls_back_to_id() -> None:
    assert parse_saved_items([item(title="  ")]).value[0].title == "abc"


def test_saved_items_empty_list() -> None:
    loaded = parse_saved_items([])
    assert loaded.value == ()
    assert loaded.warnings == ()


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ("just a string", "not an object"),
        (None, "not an object"),
        (item(type="spotify-track"), "unknown type"),
        (item(type=...), "unknown type"),
        (item(id=...), "'id'"),
        (item(id=5), "'id'"),
        (item(id="  "), "'id'"),
        (item(title=...), "'title'"),
        (item(title=7), "'title'"),
        (item(label=5), "label"),
        (item(uri=["x"]), "uri"),
        (item(image={"url": "x"}), "image"),
    ],
)
def test_saved_items_bad_entries_are_skipped_with_warnings(entry: Any, fragment: str) -> None:
    loaded = parse_saved_items([item(id="good"), entry, item(id="good2")])
    assert [i.id for i in loaded.value] == ["good", "good2"]
    assert len(loaded.warnings) == 1
    warning = loaded.warnings[0]
    assert warning.startswith(f"{SAVED_ITEMS} entry #2")
    assert fragment in warning
    if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"].strip():
        assert repr(entry["id"]) in warning


def test_saved_items_warning_names_the_entry_id() -> None:
    loaded = parse_saved_items([item(id="ok"), item(id="37i9dQZF1DX", title=None)])
    assert [i.id for i in loaded.value] == ["ok"]
    assert "'37i9dQZF1DX'" in loaded.warnings[0]
    assert "entry #2" in loaded.warnings[0]


@pytest.mark.parametrize("data", [{"items": []}, "text", 5, None, {"data": []}])
def test_saved_items_wrong_top_level(data: Any) -> None:
    with pytest.raises(FileProblem) as info:
        parse_saved_items(data)
    assert info.value.file == SAVED_ITEMS
    assert str(info.value).startswith(f"{SAVED_ITEMS}: ")
    assert type(data).__name__ in str(info.value)


# --- parse_playlists -----------------------------------------------------------------------


def test_playlists_valid() -> None:
    loaded = parse_playlists({"data": [
        {"type": "spotify-playlist", "id": "p1", "plex": "90001"},
        {"id": "liked-me", "plex": "/library/metadata/90002"},
        {"id": "p3", "plex": 90003},
        {"id": "p4"},
        {"id": "p5", "plex": ""},
        {"id": "p6", "plex": None},
    ]})
    assert loaded.value == {"p1": "90001", "liked-me": "90002", "p3": "90003"}
    assert loaded.warnings == ()


def test_playlists_bare_list_accepted() -> None:
    loaded = parse_playlists([{"id": "p1", "plex": "1"}])
    assert loaded.value == {"p1": "1"}


def test_playlists_first_duplicate_wins() -> None:
    assert parse_playlists({"data": [{"id": "p", "plex": "1"},
                                     {"id": "p", "plex": "2"}]}).value == {"p": "1"}


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ("p1", "no text 'id'"),
        ({"plex": "1"}, "no text 'id'"),
        ({"id": 5, "plex": "1"}, "no text 'id'"),
        ({"id": "bad", "plex": "abc"}, "'abc'"),
        ({"id": "bad", "plex": True}, "True"),
        ({"id": "bad", "plex": ["1"]}, "['1']"),
    ],
)
def test_playlists_bad_entries(entry: Any, fragment: str) -> None:
    loaded = parse_playlists({"data": [{"id": "ok", "plex": "1"}, entry]})
    assert loaded.value == {"ok": "1"}
    assert len(loaded.warnings) == 1
    assert loaded.warnings[0].startswith(f"{PLAYLISTS} entry #2")
    assert fragment in loaded.warnings[0]


@pytest.mark.parametrize("data", [{}, {"data": {}}, {"data": "x"}, "x", 3, None])
def test_playlists_wrong_top_level(data: Any) -> None:
    with pytest.raises(FileProblem) as info:
        parse_playlists(data)
    assert info.value.file == PLAYLISTS
    assert str(info.value).startswith(f"{PLAYLISTS}: ")


# --- parse_track_links ---------------------------------------------------------------------


def test_track_links_valid() -> None:
    loaded = parse_track_links([
        {"spotify_id": "a", "plex_id": ["/library/metadata/51001"]},
        {"spotify_id": "b", "plex_id": ["51002", "51099"]},
        {"spotify_id": "c", "plex_id": []},
        {"spotify_id": "d"},
        {"spotify_id": "e", "plex_id": ["junk", "51005"], "tidal_id": ["1"]},
        {"spotify_id": "f", "plex_id": "51006"},
        {"spotify_id": "g", "plex_id": [51007], "slskd_files": []},
    ])
    assert loaded.value == {"a": "51001", "b": "51002", "e": "51005", "f": "51006",
                            "g": "51007"}
    assert loaded.warnings == ()


def test_track_links_first_duplicate_wins() -> None:
    loaded = parse_track_links([{"spotify_id": "a", "plex_id": ["1"]},
                                {"spotify_id": "a", "plex_id": ["2"]}])
    assert loaded.value == {"a": "1"}


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ("a", "no text 'spotify_id'"),
        ({"plex_id": ["1"]}, "no text 'spotify_id'"),
        ({"spotify_id": 9, "plex_id": ["1"]}, "no text 'spotify_id'"),
        ({"spotify_id": "x", "plex_id": ["junk"]}, "'x'"),
        ({"spotify_id": "x", "plex_id": [None, True]}, "no usable Plex key"),
    ],
)
def test_track_links_bad_entries(entry: Any, fragment: str) -> None:
    loaded = parse_track_links([{"spotify_id": "ok", "plex_id": ["1"]}, entry])
    assert loaded.value == {"ok": "1"}
    assert len(loaded.warnings) == 1
    assert loaded.warnings[0].startswith(f"{TRACK_LINKS} entry #2")
    assert fragment in loaded.warnings[0]


@pytest.mark.parametrize("data", [{"data": []}, {}, "x", 1, None])
def test_track_links_wrong_top_level(data: Any) -> None:
    with pytest.raises(FileProblem) as info:
        parse_track_links(data)
    assert info.value.file == TRACK_LINKS
    assert str(info.value).startswith(f"{TRACK_LINKS}: ")


# --- load_file -----------------------------------------------------------------------------


def test_load_file_all_kinds(tmp_path: Path) -> None:
    write(tmp_path, SAVED_ITEMS, [item(), "junk"])
    write(tmp_path, PLAYLISTS, {"data": [{"id": "abc", "plex": "9"}]})
    write(tmp_path, TRACK_LINKS, [{"spotify_id": "s", "plex_id": ["7"]}])
    saved = load_file(tmp_path, "saved_items")
    assert [i.id for i in saved.value] == ["abc"]
    assert len(saved.warnings) == 1
    assert load_file(tmp_path, "playlists").value == {"abc": "9"}
    assert load_file(tmp_path, "track_links").value == {"s": "7"}


def test_load_file_wrong_top_level_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, TRACK_LINKS, {"not": "a list"})
    with pytest.raises(FileProblem) as info:
        load_file(tmp_path, "track_links")
    assert info.value.file == TRACK_LINKS


def test_old_saved_items_name_used_only_when_new_is_absent(tmp_path: Path) -> None:
    write(tmp_path, SAVED_ITEMS_OLD, [item(id="old")])
    assert saved_items_path(tmp_path) == tmp_path / SAVED_ITEMS_OLD
    assert [i.id for i in load_file(tmp_path, "saved_items").value] == ["old"]
    write(tmp_path, SAVED_ITEMS, [item(id="new")])
    assert saved_items_path(tmp_path) == tmp_path / SAVED_ITEMS
    assert [i.id for i in load_file(tmp_path, "saved_items").value] == ["new"]


def test_old_saved_items_name_in_warnings_and_errors(tmp_path: Path) -> None:
    write(tmp_path, SAVED_ITEMS_OLD, [item(id="old"), "junk"])
    assert load_file(tmp_path, "saved_items").warnings[0].startswith(SAVED_ITEMS_OLD)
    (tmp_path / SAVED_ITEMS_OLD).write_text("{", encoding="utf-8")
    with pytest.raises(FileProblem) as info:
        load_file(tmp_path, "saved_items")
    assert info.value.file == SAVED_ITEMS_OLD


def test_invalid_new_saved_items_does_not_fall_back_to_old(tmp_path: Path) -> None:
    write(tmp_path, SAVED_ITEMS_OLD, [item(id="old")])
    (tmp_path / SAVED_ITEMS).write_text("", encoding="utf-8")
    with pytest.raises(FileProblem) as info:
        load_file(tmp_path, "saved_items")
    assert info.value.file == SAVED_ITEMS


def test_missing_saved_items_names_the_current_file(tmp_path: Path) -> None:
    with pytest.raises(FileProblem) as info:
        load_file(tmp_path, "saved_items")
    assert info.value.file == SAVED_ITEMS
