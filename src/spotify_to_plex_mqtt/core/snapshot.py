"""Pure: the library to publish as last read, and how each input file fared."""

from __future__ import annotations

from dataclasses import dataclass, field

from .library import FileKind, Library


@dataclass(frozen=True, slots=True)
class FileState:
    """How one input file fared at the last read."""

    file: str
    error: str | None = None
    warnings: tuple[str, ...] = ()
    has_good_version: bool = False
    # Malformed entries, whose items keep their last good version (see `keep`).
    problem: str | None = None
    # A malformed entry with no last good version: what it stands for is unknown.
    unknown: bool = False

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
        """Every file has a good version (now or earlier) and no malformed entry stands for
        an unknown item: removals are safe."""
        return all(state.has_good_version and not state.unknown
                   for state in self.files.values())

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(e for s in self.files.values() for e in (s.error, s.problem) if e)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(w for s in self.files.values() for w in s.warnings)
