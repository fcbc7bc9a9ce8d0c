"""The ``lenslet`` command: thin Typer commands over :class:`lenslet_core.Lenslet`."""

from __future__ import annotations

import gc

from lenslet_core import keep_large_buffers, limit_memory_arenas

from . import health, index, search, serve, worker  # noqa: F401  (each registers its command)
from .typer_app import app

__all__ = ["app", "main"]


#: Allocations between two young-generation collections (Python's default: 700). lenslet
#: makes millions of small objects that hold no cycles (listing entries, manifest items,
#: rollup items); with the default the collector walks them again and again, and an
#: unchanged re-index of 500,000 images took 10.4 s instead of 8.5 s.
GC_THRESHOLD = (50_000, 20, 100)


def main() -> None:
    """The console script's entry point."""
    # The process is ours here (a library never changes these for its host).
    gc.set_threshold(*GC_THRESHOLD)
    # An arena per core, not eight: what a burst of thumbnails or uploads held goes back to
    # the system afterwards (see lenslet_core.memory).
    limit_memory_arenas()
    # Image buffers reused, not mapped anew for each image read (the periodic release gives
    # back what a burst held).
    keep_large_buffers()
    try:
        app()
    finally:
        # What is left goes with the process: the collection Python makes on the way out
        # would first walk every object of the closed gallery (0.6 s at 500,000 images).
        gc.freeze()
