"""Memory that the media code (FFmpeg and x264 under PyAV, Pillow) allocates in C, handed back when it is done.

glibc keeps what C code frees in the arena of the thread that freed it, and gives each thread that allocates an
arena of its own (up to eight per core): a 1080p render's threads (its own, the composer's, x264's) and a poster's
decoder threads each kept tens of MB a long-lived server never used again. So media work runs inside
`media_work()`: the arenas are capped once, and what the work freed is returned to the system after it
(man 3 mallopt, man 3 malloc_trim). Elsewhere than glibc both are nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

M_ARENA_MAX = -8  # glibc's malloc.h: the most arenas the allocator makes
ARENAS = 2  # one preview at a time, or two alike, and a poster beside them


@contextmanager
def media_work() -> Iterator[None]:
    _limit_arenas()
    try:
        yield
    finally:
        if (libc := _glibc()) is not None:
            libc.malloc_trim(0)  # every arena, not only the main heap's top


@functools.cache
def _limit_arenas() -> None:
    if (libc := _glibc()) is not None:
        libc.mallopt(M_ARENA_MAX, ARENAS)


@functools.cache
def _glibc() -> Any:
    """The C library's allocator controls, where it is glibc's (None elsewhere)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
