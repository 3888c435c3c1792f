"""Watching the settings directory (not single files) for changes to the input files.

Watching the directory sees atomic renames, in-place rewrites, deletions and files created
after start. A directory that does not exist yet is awaited by watching its nearest
existing parent, without polling.

A directory given through a symbolic link is followed when the link is switched to another
directory (`ln -sfn`, a deployment's "current" link): the files are read through the path,
so only the watch, which the kernel binds to the old target, must move. Its target is
checked every `LINK_CHECK` seconds, only when the path goes through a link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from ..aio import first_of
from ..core.backoff import Backoff
from ..core.library import PLAYLISTS, SAVED_ITEMS, SAVED_ITEMS_OLD, TRACK_LINKS
from . import inotify

log = logging.getLogger(__name__)

WATCHED = frozenset({SAVED_ITEMS, SAVED_ITEMS_OLD, PLAYLISTS, TRACK_LINKS, "plex.json"})
OnChange = Callable[[tuple[str, ...]], None]
LINK_CHECK = 2.0


def relevant(paths: Iterable[str], directory: Path, names: frozenset[str] = WATCHED) -> tuple[
        str, ...]:
    """The watched file names among changed paths directly inside `directory`."""
    found = {Path(p).name for p in paths
             if Path(p).parent == directory and Path(p).name in names}
    return tuple(sorted(found))


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return candidate
    return Path(path.anchor or ".")


class DirectoryWatcher:
    """Calls `on_change(names)` for changes to the input files in `directory`."""

    def __init__(self, directory: Path, on_change: OnChange, *, poll: bool = False,
                 names: frozenset[str] = WATCHED) -> None:
        self.directory = directory.absolute()
        self._on_change = on_change
        self._poll = poll
        self._names = names
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Watch until `stop()`; survives the directory vanishing and reappearing."""
        failures = 0
        while not self._stop.is_set():
            try:
                if not self.directory.is_dir():
                    await self._await_directory()
                    continue
                await (self._poll_directory() if self._poll else self._watch_directory())
                failures = 0
                if not self._stop.is_set() and (names := self._existing()):
                    # The directory was replaced: what the new one holds is unseen.
                    self._on_change(names)
            except (FileNotFoundError, RuntimeError, OSError) as exc:
                # watchfiles raises while setting up (e.g. inotify's watch limit) without
                # awaiting anything: retrying at once would block the event loop for good.
                failures += 1
                # No jitter: one watcher per process, nothing to spread out.
                delay = Backoff(base=0.5, cap=30.0, attempt=failures - 1).ceiling
                if not self._poll and failures >= 2:
                    self._poll = True  # polling needs no inotify watches
                log.warning("watching %s failed (%s); trying again in %.1f s%s", self.directory,
                            exc, delay, " by polling" if self._poll else "")
                self.ready.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                # Changes while not watching must not be lost.
                self._on_change(self._existing())

    def _link_target(self) -> str | None:
        """Where the directory path leads, when it goes through a symbolic link."""
        target = os.path.realpath(self.directory)
        return target if target != os.path.normpath(self.directory) else None

    async def _until_relinked(self, target: str) -> None:
        """Return once the path leads elsewhere than `target` (or stop was asked)."""
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), LINK_CHECK)
            # In a thread: resolving a path on a network mount can block.
            now = await asyncio.to_thread(os.path.realpath, self.directory)
            if now != target:
                log.info("settings directory %s now leads to %s (was %s); watching it",
                         self.directory, now, target)
                return

    def _existing(self) -> tuple[str, ...]:
        return tuple(sorted(n for n in self._names if (self.directory / n).exists()))

    async def _await_directory(self) -> None:
        parent = _existing_ancestor(self.directory.parent)
        log.warning("settings directory %s does not exist yet; waiting for it to appear",
                    self.directory)
        self.ready.set()
        import watchfiles  # ~1 MiB and two threads: on Linux only while the directory is missing

        async for _ in watchfiles.awatch(parent, stop_event=self._stop, recursive=False,
                                         force_polling=self._poll, debounce=200, step=50,
                                         watch_filter=None, yield_on_timeout=False):
            if self.directory.is_dir():
                log.info("settings directory %s appeared", self.directory)
                self.ready.clear()
                self._on_change(self._existing())
                return
            if _existing_ancestor(self.directory.parent) != parent:
                return

    def _signatures(self) -> dict[str, tuple[int, int, int, int] | None]:
        found: dict[str, tuple[int, int, int, int] | None] = {}
        for name in self._names:
            try:
                st = (self.directory / name).stat()
            except OSError:
                found[name] = None
            else:
                found[name] = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)
        return found

    async def _poll_directory(self, interval: float = 0.5) -> None:
        """Poll the watched names by `stat` (nanosecond times, size, inode).

        watchfiles' poller keeps whole-second mtimes, so a rewrite in the same second as the
        previous one is never reported (samuelcolvin/watchfiles#319).
        """
        log.debug("watching %s by polling", self.directory)
        last = await asyncio.to_thread(self._signatures)
        self.ready.set()
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval)
            if not self.directory.is_dir():
                self.ready.clear()
                return
            now = await asyncio.to_thread(self._signatures)
            changed = tuple(sorted(n for n in self._names if now[n] != last[n]))
            last = now
            if changed:
                self._on_change(changed)

    async def _notify_directory(self) -> None:
        """inotify in the event loop: no thread, no wake-up until something changes."""
        log.debug("watching %s", self.directory)

        def on_names(names: frozenset[str] | None) -> None:
            # None: the kernel's queue overflowed; any watched file may have changed.
            found = self._names if names is None else names & self._names
            if found:
                self._on_change(tuple(sorted(found)))

        target = self._link_target()
        with inotify.DirectoryEvents(self.directory, on_names) as events:
            self.ready.set()
            waits: list[Awaitable[object]] = [self._stop.wait(), events.gone.wait()]
            if target is not None:
                waits.append(self._until_relinked(target))
            await first_of(*waits)
        if events.gone.is_set():
            self.ready.clear()

    async def _watch_directory(self) -> None:
        if not self._poll and inotify.available:
            await self._notify_directory()
            return
        log.debug("watching %s%s", self.directory, " by polling" if self._poll else "")
        self.ready.set()
        import watchfiles

        target = self._link_target()
        async for changes in watchfiles.awatch(self.directory, stop_event=self._stop,
                                               recursive=False, force_polling=self._poll,
                                               debounce=400, step=30, watch_filter=None,
                                               rust_timeout=None if target is None else
                                               int(LINK_CHECK * 1000),
                                               yield_on_timeout=target is not None):
            names = relevant((path for _, path in changes), self.directory, self._names)
            if names:
                self._on_change(names)
            if not self.directory.is_dir() or (target is not None and await asyncio.to_thread(
                    os.path.realpath, self.directory) != target):
                self.ready.clear()
                return
