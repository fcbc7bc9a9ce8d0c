"""lenslet-core: a backend for file-based image galleries, with flat files as the database.

The public API is what this module exports; adapters (``lenslet_http``, ``lenslet_cli``) and
your own code use nothing else.
"""

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
from .rollup import RollupItem
from .settings import Settings
from .sidecar import ABSENT_ETAG, Exif, Sidecar
from .storage import Entry, Storage
from .timings import Timings, TimingSnapshot
from .watch import Wave

__version__ = "0.1.0"

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
]
