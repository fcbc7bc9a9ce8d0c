"""lenslet-core: a backend for file-based image galleries, with flat files as the database.

The public API is what this module exports; adapters (``lenslet_http``, ``lenslet_cli``) and
your own code use nothing else. Two names need the ``dask`` extra and are imported on first use
(so nothing imports Dask unless asked): :class:`DaskEngine`, a job engine on a Dask cluster,
and :class:`LensletPlugin`, what a Dask worker runs lenslet's jobs with.
"""

from typing import TYPE_CHECKING, Any

from . import errors
from .errors import *  # noqa: F403 (the whole error tree, errors.__all__)
from .gallery import Stats
from .health import Status
from .index_report import IndexProgress, IndexReport
from .items import Hit, Item, Original, Pending, Thumbnail
from .jobs import Engine, EngineStats, Job, JobHandle, Kind
from .lenslet import Lenslet
from .local_engine import LocalEngine
from .manifest import DirEntry, ItemEntry, Manifest, Skipped
from .memory import keep_large_buffers, limit_memory_arenas, release_memory
from .rollup import RollupItem
from .settings import Settings
from .sidecar import ABSENT_ETAG, Exif, Sidecar
from .storage import Entry, Storage
from .timings import Timings, TimingSnapshot
from .watch import Wave

if TYPE_CHECKING:
    from .dask_engine import DaskEngine as DaskEngine
    from .dask_worker import LensletPlugin as LensletPlugin

#: Public names that need the ``dask`` extra: imported on first use, and not in ``__all__``
#: (a star import must not need Dask).
WITH_DASK = ("DaskEngine", "LensletPlugin")

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "DaskEngine":
        from .dask_engine import DaskEngine

        return DaskEngine
    if name == "LensletPlugin":
        from .dask_worker import LensletPlugin

        return LensletPlugin
    raise AttributeError(f"module 'lenslet_core' has no attribute {name!r}")


__all__ = [
    *errors.__all__,
    "ABSENT_ETAG",
    "DirEntry",
    "Entry",
    "Exif",
    "Hit",
    "IndexProgress",
    "IndexReport",
    "Item",
    "Job",
    "JobHandle",
    "Kind",
    "Engine",
    "EngineStats",
    "LocalEngine",
    "Original",
    "Pending",
    "Thumbnail",
    "TimingSnapshot",
    "Timings",
    "ItemEntry",
    "Lenslet",
    "Manifest",
    "RollupItem",
    "Settings",
    "Sidecar",
    "Skipped",
    "Stats",
    "Status",
    "Storage",
    "Wave",
    "__version__",
    "keep_large_buffers",
    "limit_memory_arenas",
    "release_memory",
]
