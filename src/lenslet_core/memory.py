"""Memory given back to the system after a burst of work.

Python frees what a burst of uploads or thumbnails held, but the C allocator (glibc's malloc,
used by Python for large buffers and by libvips) keeps the freed pages for later, so a server's
RSS stays at its peak long after. Two calls give it back, and elsewhere than glibc do nothing:

- :func:`limit_memory_arenas`, once at the start of a process that is ours (the CLI): glibc gives
  each thread that allocates an arena of its own, up to eight per core, and a burst spread
  over many arenas leaves pages in each that cannot be returned;
- :func:`release_memory`, now and then in a long-running process, off the event loop: the free pages
  back to the system (``malloc_trim``).

And one the other way, for speed: :func:`keep_large_buffers`, also once at the start. An image is
read whole into a buffer of its size (a 1080p PNG: 5.8 MB), and glibc's default gave the pages of
the last one back to the system as soon as it was freed, so each read faulted fresh pages in
(~500 per PNG: a read took 1.6 ms instead of 0.8). Kept in the arenas, they are reused until
:func:`release_memory` gives them back.

Measured by ``benchmarks/test_memory.py``: after thumbnails of 40 large images made on
request, a server sat at 4.1x its warm RSS a minute later; with both, 1.0x within 5 s.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

from .local import usable_cores

__all__ = ["keep_large_buffers", "limit_memory_arenas", "release_memory"]

#: mallopt's parameters: the most arenas glibc makes; the size from which an allocation is a
#: mapping of its own (unmapped when freed); the free memory at an arena's top kept, not given
#: back at once.
_M_ARENA_MAX, _M_MMAP_THRESHOLD, _M_TRIM_THRESHOLD = -8, -3, -1
#: Allocations up to this are made in the arenas (glibc takes at most 32 MiB): every image
#: buffer of a gallery but the largest.
LARGE_BUFFER = 32 << 20


@functools.cache
def _glibc(function: str) -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        found = getattr(ctypes.CDLL(name), function)
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None
    found.restype = ctypes.c_int
    return found


def _trim() -> Any:
    trim = _glibc("malloc_trim")
    if trim is not None:
        trim.argtypes = [ctypes.c_size_t]
    return trim


def _mallopt() -> Any:
    mallopt = _glibc("mallopt")
    if mallopt is not None:
        mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return mallopt


def limit_memory_arenas(count: int | None = None) -> bool:
    """Let the allocator make at most ``count`` arenas (default: one per usable core; at
    least two). Call it before any thread starts; a library never does it for its host.
    Whether this platform can."""
    mallopt = _mallopt()
    if mallopt is None:
        return False
    return bool(mallopt(_M_ARENA_MAX, max(2, count or usable_cores())))


def keep_large_buffers(largest: int = LARGE_BUFFER) -> bool:
    """Make buffers up to ``largest`` bytes in the allocator's arenas, and keep up to twice
    that free at an arena's top, instead of mapping each anew and unmapping it when freed (the
    pages faulted in again for every image read). Call it once at the start, with
    :func:`release_memory` running now and then to give back what a burst held; a library
    never does it for its host. Whether this platform can."""
    mallopt = _mallopt()
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, largest) and mallopt(_M_TRIM_THRESHOLD, 2 * largest))


def release_memory() -> bool:
    """Give the pages the allocator holds free back to the system (blocking: a few
    milliseconds; call it in a thread). Whether this platform can."""
    trim = _trim()
    if trim is None:
        return False
    trim(0)
    return True
