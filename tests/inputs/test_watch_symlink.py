"""The watcher follows a settings directory symlink switched to another directory, in each
of its three ways of watching (inotify, watchfiles, polling). Real files under tmp_path."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest

from spotify_to_plex_mqtt.inputs import inotify, watch
from spotify_to_plex_mqtt.inputs.watch import DirectoryWatcher


@pytest.mark.parametrize("mode", ["inotify", "watchfiles", "poll"])
async def test_a_switched_link_is_followed(tmp_path: Path, mode: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    if mode == "watchfiles":
        monkeypatch.setattr(inotify, "available", False)
    monkeypatch.setattr(watch, "LINK_CHECK", 0.2, raising=False)
    old, new = tmp_path / "release-1", tmp_path / "release-2"
    old.mkdir()
    new.mkdir()
    link = tmp_path / "current"
    link.symlink_to(old)
    calls: list[tuple[str, ...]] = []
    reported = asyncio.Event()

    def on_change(names: tuple[str, ...]) -> None:
        calls.append(names)
        reported.set()

    watcher = DirectoryWatcher(link, on_change, poll=mode == "poll")
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.wait_for(watcher.ready.wait(), 5.0)
        (tmp_path / "current.new").symlink_to(new)
        os.replace(tmp_path / "current.new", link)
        # Only the new target is written to: the old watch would never hear of it. Writes
        # repeat until one is reported (the re-watch takes up to LINK_CHECK).
        async with asyncio.timeout(10.0):
            while not any("playlists.json" in names for names in calls):
                reported.clear()
                (new / "playlists.json").write_text('{"data": []}', encoding="utf-8")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reported.wait(), 0.5)
    finally:
        watcher.stop()
        await asyncio.wait_for(task, 5.0)
