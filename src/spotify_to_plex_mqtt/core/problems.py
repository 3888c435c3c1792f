"""Pure: the error an unusable input file raises, and the guard for too-deep JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..errors import Error

RESTORE = "Restore it from Spotify-to-Plex or a backup"
T = TypeVar("T")


class FileProblem(Error):
    """A settings file that cannot be used as a whole; the message names it and says why."""

    def __init__(self, file: str, reason: str, hint: str) -> None:
        super().__init__(f"{file}: {reason}. {hint}")
        self.file = file
        self.reason = reason


class FileMissing(FileProblem):
    """The file does not exist (for optional files such as plex.json: not an error)."""


def too_deep(name: str) -> FileProblem:
    return FileProblem(name, "the JSON is nested too deeply (over 1,000 levels) to be a "
                             "settings file", RESTORE)


def guarded(name: str, validate: Callable[[], T]) -> T:
    """`validate()`, with a structure so deep that walking it overflows the stack reported
    as the file's problem instead of a traceback."""
    try:
        return validate()
    except RecursionError:
        raise too_deep(name) from None
