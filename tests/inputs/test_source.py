"""Pure tests of `source.LibrarySource`: the last good version of each file is kept."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from spotify_to_plex_mqtt.core.library import (
    PLAYLISTS,
    SAVED_ITEMS,
    SAVED_ITEMS_OLD,
    TRACK_LINKS,
    FileKind,
    Loaded,
)
from spotify_to_plex_mqtt.core.snapshot import Snapshot
from spotify_to_plex_mqtt.inputs import library_files as library_module
from spotify_to_plex_mqtt.inputs import source as source_module
from spotify_to_plex_mqtt.inputs.source import LibrarySource


def write(directory: Path, name: str, data: Any) -> None:
    (directory / name).write_text(json.dumps(data), encoding="utf-8")


def saved(*ids: str) -> list[dict[str, str]]:
    return [{"type": "spotify-playlist", "id": i, "title": i.upper(), "label": "Jazz"}
            for i in ids]


@pytest.fixture
def settings_dir(tmp_path: Path) -> Path:
    write(tmp_path, SAVED_ITEMS, saved("p1", "p2"))
    write(tmp_path, PLAYLISTS, {"data": [{"id": "p1", "plex": "1"}, {"id": "p2", "plex": "2"}]})
    write(tmp_path, TRACK_LINKS, [{"spotify_id": "a1", "plex_id": ["10"]}])
    return tmp_path


def ids(snapshot: Snapshot) -> list[str]:
    return [i.id for i in snapshot.library.items]


def test_first_read_of_good_files(settings_dir: Path) -> None:
    snapshot = LibrarySource(settings_dir).read()
    assert snapshot.complete
    assert snapshot.errors == ()
    assert snapshot.new_errors == ()
    assert snapshot.recovered == ()
    assert ids(snapshot) == ["p1", "p2"]
    assert dict(snapshot.library.playlists) == {"p1": "1", "p2": "2"}
    assert dict(snapshot.library.track_links) == {"a1": "10"}
    assert set(snapshot.files) == {"saved_items", "playlists", "track_links"}
    assert all(state.ok and state.has_good_version for state in snapshot.files.values())


@pytest.mark.parametrize(
    "breakage",
    ["invalid", "empty", "deleted", "wrong_top", "directory"],
)
@pytest.mark.parametrize("name", [SAVED_ITEMS, PLAYLISTS, TRACK_LINKS])
def test_last_good_version_is_kept(settings_dir: Path, name: str, breakage: str) -> None:
    source = LibrarySource(settings_dir)
    good = source.read()
    path = settings_dir / name
    if breakage == "invalid":
        path.write_text('{"data": [', encoding="utf-8")
    elif breakage == "empty":
        path.write_text("", encoding="utf-8")
    elif breakage == "deleted":
        path.unlink()
    elif breakage == "wrong_top":
        path.write_text('"a string"', encoding="utf-8")
    else:
        path.unlink()
        path.mkdir()
    snapshot = source.read()
    assert snapshot.library == good.library
    assert snapshot.complete
    assert len(snapshot.errors) == 1
    assert snapshot.errors[0].startswith(f"{name}: ")
    assert snapshot.new_errors == ((name, snapshot.errors[0]),)
    kind = next(k for k, s in snapshot.files.items() if s.file == name)
    assert not snapshot.files[kind].ok
    assert snapshot.files[kind].has_good_version


def test_complete_false_when_a_file_never_had_a_good_version(settings_dir: Path) -> None:
    (settings_dir / TRACK_LINKS).write_text("[", encoding="utf-8")
    source = LibrarySource(settings_dir)
    snapshot = source.read()
    assert not snapshot.complete
    assert dict(snapshot.library.track_links) == {}
    assert ids(snapshot) == ["p1", "p2"]
    assert not snapshot.files["track_links"].has_good_version
    # Still incomplete on the next read while the file stays broken.
    assert not source.read().complete
    write(settings_dir, TRACK_LINKS, [])
    assert source.read().complete


def test_complete_false_for_a_missing_settings_dir(tmp_path: Path) -> None:
    snapshot = LibrarySource(tmp_path / "nope").read()
    assert not snapshot.complete
    assert len(snapshot.errors) == 3
    assert snapshot.library.items == ()


def test_new_errors_reported_once_per_change(settings_dir: Path) -> None:
    source = LibrarySource(settings_dir)
    source.read()
    path = settings_dir / PLAYLISTS
    path.write_text("{", encoding="utf-8")
    first = source.read()
    assert len(first.new_errors) == 1
    assert first.new_errors[0][0] == PLAYLISTS
    # Same error again: still an error, but not new.
    second = source.read()
    assert second.new_errors == ()
    assert second.errors == first.errors
    # A different error is reported again.
    path.write_text("", encoding="utf-8")
    third = source.read()
    assert len(third.new_errors) == 1
    assert "empty" in third.new_errors[0][1]
    assert source.read().new_errors == ()
    # Recovery, then the first error again: reported again.
    write(settings_dir, PLAYLISTS, {"data": []})
    recovered = source.read()
    assert recovered.recovered == (PLAYLISTS,)
    assert recovered.new_errors == ()
    assert recovered.errors == ()
    path.write_text("{", encoding="utf-8")
    again = source.read()
    assert again.new_errors == first.new_errors
    assert source.read().recovered == ()


def test_errors_in_two_files_are_reported_independently(settings_dir: Path) -> None:
    source = LibrarySource(settings_dir)
    source.read()
    (settings_dir / PLAYLISTS).write_text("{", encoding="utf-8")
    (settings_dir / TRACK_LINKS).write_text("{", encoding="utf-8")
    snapshot = source.read()
    assert sorted(f for f, _ in snapshot.new_errors) == [PLAYLISTS, TRACK_LINKS]
    write(settings_dir, TRACK_LINKS, [])
    snapshot = source.read()
    assert snapshot.new_errors == ()
    assert snapshot.recovered == (TRACK_LINKS,)
    assert len(snapshot.errors) == 1


def test_next_good_version_wins(settings_dir: Path) -> None:
    source = LibrarySource(settings_dir)
    source.read()
    (settings_dir / SAVED_ITEMS).write_text("[{", encoding="utf-8")
    assert ids(source.read()) == ["p1", "p2"]
    write(settings_dir, SAVED_ITEMS, saved("p3"))
    snapshot = source.read()
    assert ids(snapshot) == ["p3"]
    assert snapshot.recovered == (SAVED_ITEMS,)
    assert snapshot.errors == ()
    # An empty but valid list is a good version too: items really are gone.
    write(settings_dir, SAVED_ITEMS, [])
    assert ids(source.read()) == []


def test_warnings_of_the_kept_version_stay_visible(settings_dir: Path) -> None:
    write(settings_dir, SAVED_ITEMS, [*saved("p1"), "junk"])
    source = LibrarySource(settings_dir)
    assert len(source.read().warnings) == 1
    (settings_dir / SAVED_ITEMS).write_text("", encoding="utf-8")
    snapshot = source.read()
    assert len(snapshot.warnings) == 1
    assert ids(snapshot) == ["p1"]


def test_old_saved_items_file_is_read(tmp_path: Path) -> None:
    write(tmp_path, SAVED_ITEMS_OLD, saved("old"))
    write(tmp_path, PLAYLISTS, {"data": []})
    write(tmp_path, TRACK_LINKS, [])
    snapshot = LibrarySource(tmp_path).read()
    assert snapshot.complete
    assert ids(snapshot) == ["old"]


def _later(monkeypatch: pytest.MonkeyPatch, seconds: float = 60.0) -> None:
    """Let the source's clock run `seconds` ahead: every file looks old enough for its stamp
    to be trusted. (A file's ctime cannot be set back, so the clock moves instead.)"""
    real = time.time_ns
    monkeypatch.setattr(source_module, "time",
                        SimpleNamespace(time_ns=lambda: real() + int(seconds * 1e9)))


def _after_ctime_of(path: Path, deadline_s: float = 5.0) -> None:
    """Return once the file system's clock has moved past `path`'s ctime (a coarse tick)."""
    probe = path.with_name(".probe")
    deadline = time.monotonic() + deadline_s
    while True:
        probe.write_bytes(b"")
        if probe.stat().st_ctime_ns > path.stat().st_ctime_ns:
            probe.unlink()
            return
        assert time.monotonic() < deadline, "the file system's ctime did not move"


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    parsed: list[str] = []
    real = library_module.load_file

    def counting(settings_dir: Path, kind: FileKind) -> Loaded[Any]:
        parsed.append(kind)
        return real(settings_dir, kind)

    monkeypatch.setattr(source_module, "load_file", counting)
    return parsed


def test_unchanged_old_files_are_not_parsed_again(settings_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _later(monkeypatch)
    parsed = _count_parses(monkeypatch)
    source = LibrarySource(settings_dir)
    first = source.read()
    second = source.read()
    assert sorted(parsed) == ["playlists", "saved_items", "track_links"]
    assert ids(second) == ids(first)
    assert second.complete


def test_a_changed_file_is_parsed_again_even_with_an_old_mtime(
        settings_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = settings_dir / SAVED_ITEMS
    _later(monkeypatch)
    source = LibrarySource(settings_dir)
    source.read()
    before = path.stat().st_mtime_ns
    _after_ctime_of(path)
    write(settings_dir, SAVED_ITEMS, saved("q1", "p2"))  # the same size as before
    os.utime(path, ns=(before, before))  # same mtime: only ctime tells
    parsed = _count_parses(monkeypatch)
    assert ids(source.read()) == ["q1", "p2"]
    assert parsed == ["saved_items"]


def test_recently_written_files_are_always_parsed(settings_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    source = LibrarySource(settings_dir)
    source.read()
    parsed = _count_parses(monkeypatch)
    source.read()
    assert sorted(parsed) == ["playlists", "saved_items", "track_links"]


def test_a_fresh_copy_with_an_old_mtime_is_parsed_again(settings_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # `cp -p` and `rsync -t` keep the source's old mtime; the change is as fresh as its ctime.
    for name in (SAVED_ITEMS, PLAYLISTS, TRACK_LINKS):
        stat = (settings_dir / name).stat()
        os.utime(settings_dir / name, ns=(stat.st_atime_ns, stat.st_mtime_ns - 60 * 10**9))
    source = LibrarySource(settings_dir)
    source.read()
    parsed = _count_parses(monkeypatch)
    source.read()
    assert sorted(parsed) == ["playlists", "saved_items", "track_links"]
