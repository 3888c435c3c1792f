"""Reading one JSON settings file safely: regular files only, bounded, strict JSON.

Every input file (saved items, playlists, track links, plex.json, the ledger) is read here,
so that each gets the same protection:

- only a regular file is read: a FIFO would block the open (and the event loop, or the
  thread a shutdown waits for) forever, a device could be endless. The file is opened with
  O_NONBLOCK, which makes opening a FIFO return at once, and checked with `fstat`;
- at most `MAX_BYTES` are read;
- `NaN`, `Infinity` and `-Infinity` are refused, by line and column: they are not JSON,
  although Python's parser accepts them by default;
- nesting deeper than the interpreter's recursion limit (1,000 levels) is an error, not a
  `RecursionError` traceback.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from ..core.problems import RESTORE, FileMissing, FileProblem, too_deep

# Ten times the largest settings file seen (a 10k-album track_links.json with Soulseek file
# lists): a file this large is not one Spotify-to-Plex wrote.
MAX_BYTES = 256 * 1024 * 1024

# A JSON string, or one of the constants Python accepts but JSON does not.
_CONSTANT = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)', re.DOTALL)
_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISDIR, "a directory"))


class _NotJson(ValueError):
    def __init__(self, constant: str) -> None:
        super().__init__(constant)
        self.constant = constant


def _refuse_constant(constant: str) -> Any:
    raise _NotJson(constant)


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_regular(path: Path, name: str, limit: int = MAX_BYTES) -> bytes:
    """The bytes of `path` if it is a regular file of at most `limit` bytes; never blocks on
    a FIFO or a device. Raises `FileProblem` naming the file as `name`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileMissing(name, "the file does not exist",
                          f"Check --settings-dir (now {path.parent}) or let Spotify-to-Plex "
                          "create it") from None
    except PermissionError:
        raise FileProblem(name, "the file cannot be read (permission denied)",
                          "Make it readable by the user running this service") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # opening a Unix socket
            raise FileProblem(name, "this is a socket, not a regular file",
                              "Replace it with the file Spotify-to-Plex writes") from None
        raise FileProblem(name, f"the file cannot be read ({exc.strerror})",
                          "Check the disk and the mount") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise FileProblem(name, "this is a directory, not a file",
                              "Remove or rename the directory")
        if not stat.S_ISREG(info.st_mode):
            raise FileProblem(name, f"this is {_kind(info.st_mode)}, not a regular file",
                              "Replace it with the file Spotify-to-Plex writes")
        # Sized by fstat: a read of `limit` bytes would allocate that much every time.
        size = min(info.st_size, limit)
        with os.fdopen(fd, "rb", buffering=0, closefd=False) as handle:
            data = handle.read(size + 1)
            if len(data) > size:  # grown since fstat, or over the limit
                data += handle.read(limit + 1 - len(data)) or b""
    except OSError as exc:
        raise FileProblem(name, f"the file cannot be read ({exc.strerror})",
                          "Check the disk and the mount") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise FileProblem(name, f"the file is larger than {limit:,} bytes, too large to be "
                                "a settings file", RESTORE)
    return data


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def parse_strict(data: bytes, name: str) -> Any:
    """Parse JSON bytes (UTF-8, or UTF-16/32 as `json.loads` detects), refusing what is not
    JSON; every failure is a `FileProblem` naming the file as `name`."""
    try:
        text = data.decode(json.detect_encoding(data), "surrogatepass")
    except UnicodeDecodeError:
        raise FileProblem(name, "the file is not UTF-8 text", RESTORE) from None
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise too_deep(name) from None
    except _NotJson as exc:
        match = next((m for m in _CONSTANT.finditer(text) if m.group(1)), None)
        line, column = _position(text, match.start(1) if match else 0)
        raise FileProblem(name, f"invalid JSON at line {line}, column {column} "
                                f"({exc.constant} is not a JSON value)", RESTORE) from None
    except json.JSONDecodeError as exc:
        # exc.msg is only the parser's complaint, never the document (plex.json holds a token).
        raise FileProblem(name, f"invalid JSON at line {exc.lineno}, column {exc.colno} "
                                f"({exc.msg})",
                          "It may be half-written; it will be read again when it changes"
                          ) from None


def read_json_file(path: Path, name: str | None = None) -> Any:
    """Read and parse one JSON file, turning every failure into a `FileProblem`."""
    name = name or path.name
    data = read_regular(path, name)
    if not data.strip():
        raise FileProblem(name, "the file is empty (probably being written)",
                          "It will be read again when it changes")
    return parse_strict(data, name)
