"""The library as last read well: each input file's last good version is kept in memory."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core.keep import Kept, describe, merge_items, merge_mapping
from ..core.library import FILES, FileKind, Library, Loaded
from ..core.problems import FileProblem
from ..core.snapshot import FileState, Snapshot
from .library_files import file_path, load_file

# A file modified this recently may change again within the same timestamp tick with the
# same size: its stamp is not trusted (git's "racily clean" rule), so it is parsed again.
RACY_NS = 2_000_000_000
Stamp = tuple[int, int, int, int, int]


def _stamp(path: Path) -> Stamp | None:
    try:
        st = path.stat()
    except OSError:
        return None
    # ctime too: a copy that keeps the old mtime (cp -p, rsync -t) is still a fresh change.
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_NS:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class LibrarySource:
    """Reads the settings directory; a file that cannot be read keeps its last good version."""

    def __init__(self, settings_dir: Path) -> None:
        self.settings_dir = settings_dir
        self._good: dict[FileKind, Loaded[Any]] = {}
        self._good_state: dict[FileKind, FileState] = {}
        self._errors: dict[FileKind, str] = {}
        self._stamps: dict[FileKind, Stamp | None] = {}

    def read(self) -> Snapshot:
        files: dict[FileKind, FileState] = {}
        new_errors: list[tuple[str, str]] = []
        recovered: list[str] = []
        for kind in FILES:
            path = file_path(self.settings_dir, kind)
            stamp = _stamp(path)
            kept = self._good_state.get(kind)
            if stamp is not None and stamp == self._stamps.get(kind) and kept is not None:
                # Unchanged since it was last parsed well: a 10k-item library's files take
                # ~70 ms to parse, and a relabel changes only one of them.
                files[kind] = kept
                continue
            self._stamps.pop(kind, None)
            try:
                state = self._load(kind, path.name)
            except FileProblem as problem:
                message = str(problem)
                if self._errors.get(kind) != message:
                    new_errors.append((problem.file, message))
                self._errors[kind] = message
                files[kind] = FileState(problem.file, message,
                                        kept.warnings if kept else (), kept is not None,
                                        unknown=kept is not None and kept.unknown)
                continue
            self._stamps[kind] = stamp
            files[kind] = state
            if state.problem is None:
                if self._errors.pop(kind, None) is not None:
                    recovered.append(FILES[kind])
            elif self._errors.get(kind) != state.problem:
                new_errors.append((FILES[kind], state.problem))
                self._errors[kind] = state.problem
        library = Library(
            items=self._value("saved_items", ()),
            playlists=self._value("playlists", {}),
            track_links=self._value("track_links", {}),
        )
        return Snapshot(library, files, tuple(new_errors), tuple(recovered))

    def _load(self, kind: FileKind, name: str) -> FileState:
        """Parse one file; its malformed entries keep their items' last good version."""
        loaded = load_file(self.settings_dir, kind)
        old = self._good.get(kind)
        if kind == "saved_items":
            kept: Kept[Any] = merge_items(loaded, old.value if old else None)
        else:
            kept = merge_mapping(loaded, old.value if old else None)
        self._good[kind] = replace(loaded, value=kept.value)
        problem = describe(name, loaded, kept) if loaded.warnings else None
        state = FileState(FILES[kind], None, loaded.warnings, True, problem, kept.unknown)
        self._good_state[kind] = state
        return state

    def _value(self, kind: FileKind, default: Any) -> Any:
        good = self._good.get(kind)
        return good.value if good is not None else default
