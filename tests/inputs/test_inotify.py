"""The event-loop inotify watch against the real kernel, in a temporary directory."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from spotify_to_plex_mqtt.inputs import inotify
from spotify_to_plex_mqtt.inputs.watch import DirectoryWatcher


async def _names_after(directory: Path, action: str) -> set[str]:
    seen: set[str] = set()
    changed = asyncio.Event()

    def on_names(names: frozenset[str] | None) -> None:
        seen.update(names or {"<overflow>"})
        changed.set()

    with inotify.DirectoryEvents(directory, on_names) as events:
        if action == "write":
            (directory / "playlists.json").write_text("[]", encoding="utf-8")
        elif action == "rename":
            (directory / ".tmp-123").write_text("[]", encoding="utf-8")
            os.replace(directory / ".tmp-123", directory / "track_links.json")
        elif action == "touch":
            os.utime(directory / "playlists.json")
        elif action == "chmod":
            (directory / "playlists.json").chmod(0o644)
        elif action == "delete-dir":
            shutil.rmtree(directory)
            await asyncio.wait_for(events.gone.wait(), 5.0)
            return seen
        await asyncio.wait_for(changed.wait(), 5.0)
        while "track_links.json" not in seen and action == "rename":
            changed.clear()
            await asyncio.wait_for(changed.wait(), 5.0)
    return seen


def test_a_finished_write_is_reported_by_name(tmp_path: Path) -> None:
    assert asyncio.run(_names_after(tmp_path, "write")) == {"playlists.json"}


def test_an_atomic_rename_reports_the_target_name(tmp_path: Path) -> None:
    assert "track_links.json" in asyncio.run(_names_after(tmp_path, "rename"))


@pytest.mark.parametrize("action", ["touch", "chmod"])
def test_a_file_made_readable_or_touched_is_reported(tmp_path: Path, action: str) -> None:
    # A file that could not be read (mode 000) and is then made readable changes nothing but
    # its attributes: no write, so no IN_CLOSE_WRITE.
    (tmp_path / "playlists.json").write_text("[]", encoding="utf-8")
    (tmp_path / "playlists.json").chmod(0o000)
    assert asyncio.run(_names_after(tmp_path, action)) == {"playlists.json"}


def test_a_write_in_progress_is_not_reported_until_the_file_is_closed(
        tmp_path: Path) -> None:
    # A slow writer must not be read half-written: only the close reports the file.
    async def run() -> list[set[str]]:
        batches: list[set[str]] = []
        changed = asyncio.Event()

        def on_names(names: frozenset[str] | None) -> None:
            batches.append(set(names or {"<overflow>"}))
            changed.set()

        path = tmp_path / "playlists.json"
        path.write_text("", encoding="utf-8")
        with inotify.DirectoryEvents(tmp_path, on_names):
            open_file = path.open("a", encoding="utf-8")
            open_file.write("[")
            open_file.flush()
            # A marker file written and closed after the flush: its event comes after any
            # event of the flush, so when it is seen the flush would have been seen too.
            (tmp_path / "marker").write_text("", encoding="utf-8")
            while not any("marker" in b for b in batches):
                changed.clear()
                await asyncio.wait_for(changed.wait(), 5.0)
            during = [b for b in batches if "playlists.json" in b]
            open_file.write("]")
            open_file.close()
            while not any("playlists.json" in b for b in batches):
                changed.clear()
                await asyncio.wait_for(changed.wait(), 5.0)
            return during

    assert asyncio.run(run()) == []


def test_a_replaced_directory_reports_what_the_new_one_holds(tmp_path: Path) -> None:
    # `mv settings.new settings` after the old one was moved away: no event inside the new
    # directory tells of its files, yet they are new to the service.
    directory = tmp_path / "settings"
    directory.mkdir()
    (directory / "playlists.json").write_text("[]", encoding="utf-8")

    async def run() -> list[tuple[str, ...]]:
        calls: list[tuple[str, ...]] = []
        reported = asyncio.Event()

        def on_change(names: tuple[str, ...]) -> None:
            calls.append(names)
            reported.set()

        watcher = DirectoryWatcher(directory, on_change)
        task = asyncio.create_task(watcher.run())
        try:
            await asyncio.wait_for(watcher.ready.wait(), 5.0)
            fresh = tmp_path / "settings.new"
            fresh.mkdir()
            (fresh / "track_links.json").write_text("[]", encoding="utf-8")
            directory.rename(tmp_path / "settings.old")
            fresh.rename(directory)
            while ("track_links.json",) not in calls:
                reported.clear()
                await asyncio.wait_for(reported.wait(), 5.0)
        finally:
            watcher.stop()
            await asyncio.wait_for(task, 5.0)
        return calls

    assert ("track_links.json",) in asyncio.run(run())


def test_a_deleted_directory_sets_gone(tmp_path: Path) -> None:
    directory = tmp_path / "settings"
    directory.mkdir()
    asyncio.run(_names_after(directory, "delete-dir"))


def test_a_missing_directory_is_an_os_error(tmp_path: Path) -> None:
    async def enter() -> None:
        with inotify.DirectoryEvents(tmp_path / "missing", lambda _names: None):
            pass

    with pytest.raises(OSError, match="missing"):
        asyncio.run(enter())
