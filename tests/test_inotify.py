"""The event-loop inotify watch against the real kernel, in a temporary directory."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from spotify_to_plex_mqtt import inotify


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
