"""Linux inotify read by the event loop itself: no thread and no wake-up while nothing changes.

watchfiles runs its watcher in a worker thread that wakes every `step` milliseconds to check
for events and for its stop event (~33 wake-ups a second at 30 ms), for the whole life of an
otherwise idle service. Here the event loop waits on the inotify descriptor with the rest of
its sockets. Only a single, non-recursive directory watch is needed.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

IN_ATTRIB = 0x00000004  # touch, chmod: a file that could not be read may be readable now
# A finished write, not every write() of it (IN_MODIFY): a slow writer would otherwise be
# read half-written. A writer that keeps the file open is caught by the timer sync.
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
_NONBLOCK_CLOEXEC = os.O_NONBLOCK | os.O_CLOEXEC

CHANGES = IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1  # noqa: B018 - present in glibc and musl
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()
available = _LIBC is not None

# Called with the changed names (None: the kernel dropped events, anything may have changed).
OnNames = Callable[[frozenset[str] | None], None]


class DirectoryEvents:
    """Calls `on_names` from the event loop for changes directly inside `directory`;
    `gone` is set when the directory is deleted, moved away or unmounted."""

    def __init__(self, directory: Path, on_names: OnNames) -> None:
        self.directory = directory
        self._on_names = on_names
        self.gone = asyncio.Event()
        self._fd = -1

    def __enter__(self) -> DirectoryEvents:
        assert _LIBC is not None
        fd = _LIBC.inotify_init1(_NONBLOCK_CLOEXEC)
        if fd < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"inotify_init1: {os.strerror(errno)}")
        path = os.fsencode(self.directory)
        if _LIBC.inotify_add_watch(fd, path, CHANGES | GONE | IN_ONLYDIR) < 0:
            errno = ctypes.get_errno()
            os.close(fd)
            # ENOSPC: the per-user limit of inotify watches is reached.
            raise OSError(errno, f"inotify_add_watch {self.directory}: {os.strerror(errno)}")
        self._fd = fd
        asyncio.get_running_loop().add_reader(fd, self._read)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)

    def _read(self) -> None:
        try:
            data = os.read(self._fd, 64 * 1024)
        except BlockingIOError:
            return
        names: set[str] = set()
        overflow = False
        offset = 0
        while offset + _HEADER.size <= len(data):
            _wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
            offset += _HEADER.size
            name = data[offset:offset + length].rstrip(b"\0")
            offset += length
            if mask & IN_Q_OVERFLOW:
                overflow = True
            if mask & GONE:
                self.gone.set()
            if name:
                names.add(os.fsdecode(name))
        if overflow:
            self._on_names(None)
        elif names:
            self._on_names(frozenset(names))
        if self.gone.is_set() and self._fd >= 0:
            # No more events will come; stop polling the descriptor before it is closed.
            asyncio.get_running_loop().remove_reader(self._fd)
