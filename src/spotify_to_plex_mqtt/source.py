"""The library as last read well: each input file's last good version is kept in memory."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .library import FILES, FileKind, FileProblem, Library, Loaded, file_path, load_file

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


@dataclass(frozen=True, slots=True)
class FileState:
    """How one input file fared at the last read."""

    file: str
    error: str | None = None
    warnings: tuple[str, ...] = ()
    has_good_version: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The library to publish and the state of each file it came from."""

    library: Library
    files: dict[FileKind, FileState] = field(default_factory=dict)
    new_errors: tuple[tuple[str, str], ...] = ()
    recovered: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Every file has a good version (now or earlier): removals are safe."""
        return all(state.has_good_version for state in self.files.values())

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(s.error for s in self.files.values() if s.error)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(w for s in self.files.values() for w in s.warnings)


class LibrarySource:
    """Reads the settings directory; a file that cannot be read keeps its last good version."""

    def __init__(self, settings_dir: Path) -> None:
        self.settings_dir = settings_dir
        self._good: dict[FileKind, Loaded[Any]] = {}
        self._errors: dict[FileKind, str] = {}
        self._stamps: dict[FileKind, Stamp | None] = {}

    def read(self) -> Snapshot:
        files: dict[FileKind, FileState] = {}
        new_errors: list[tuple[str, str]] = []
        recovered: list[str] = []
        for kind in FILES:
            stamp = _stamp(file_path(self.settings_dir, kind))
            good = self._good.get(kind)
            if stamp is not None and stamp == self._stamps.get(kind) and good is not None:
                # Unchanged since it was last parsed well: a 10k-item library's files take
                # ~70 ms to parse, and a relabel changes only one of them.
                files[kind] = FileState(FILES[kind], None, good.warnings, True)
                continue
            self._stamps.pop(kind, None)
            try:
                loaded = load_file(self.settings_dir, kind)
            except FileProblem as problem:
                message = str(problem)
                if self._errors.get(kind) != message:
                    new_errors.append((problem.file, message))
                self._errors[kind] = message
                good = self._good.get(kind)
                files[kind] = FileState(problem.file, message,
                                        good.warnings if good else (), good is not None)
                continue
            if self._errors.pop(kind, None) is not None:
                recovered.append(FILES[kind])
            self._good[kind] = loaded
            self._stamps[kind] = stamp
            files[kind] = FileState(FILES[kind], None, loaded.warnings, True)
        library = Library(
            items=self._value("saved_items", ()),
            playlists=self._value("playlists", {}),
            track_links=self._value("track_links", {}),
        )
        return Snapshot(library, files, tuple(new_errors), tuple(recovered))

    def _value(self, kind: FileKind, default: Any) -> Any:
        good = self._good.get(kind)
        return good.value if good is not None else default
