"""After a sync: settle the heap, so that neither memory nor the next sync pay for this one.

A 10k-item sync allocates ~20,000 rendered payloads (each above Python's small-object limit,
so from the C library's malloc) and frees them when it ends. glibc keeps freed memory in its
heap for reuse, so an idle service would hold the sync's high-water mark (~10 MiB at 10k
items) until the next sync; `malloc_trim(0)` returns the free pages at once, in milliseconds.

The objects that stay (the library, the entities, the mirror: ~300,000 at 10k items) would
otherwise be traversed by every full collection of Python's cyclic garbage collector, which
a sync's allocations trigger every other time: ~25-40 ms in the middle of a sync at 10k
items, the tail of a change's latency. They are collected once here, while idle, and then
frozen: later collections skip them.
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable


def _load_malloc_trim() -> Callable[[int], int] | None:
    # The process's own symbols include the C library's. Only glibc has malloc_trim: with
    # musl (Alpine) or on macOS this does nothing; Windows has no CDLL(None).
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]  # int malloc_trim(size_t pad)
    trim.restype = ctypes.c_int
    function: Callable[[int], int] = trim
    return function


_malloc_trim = _load_malloc_trim()


def settle_after_sync() -> None:
    """Collect garbage cycles (the earlier frozen objects included) and freeze what stays;
    return the allocator's free pages to the OS, where the C library can (glibc)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    if _malloc_trim is not None:
        _malloc_trim(0)
