"""lenslet-core: a backend for file-based image galleries, with flat files as the database.

The public API is what this module exports; adapters (``lenslet_http``, ``lenslet_cli``) and
your own code use nothing else.
"""

from .errors import (
    AlreadyExists,
    CorruptImage,
    CrossSiteRefused,
    DocumentError,
    ImageError,
    ImageTooLarge,
    InternalError,
    InvalidDocument,
    InvalidParameter,
    InvalidPath,
    JobFailed,
    LensletError,
    MalformedDocument,
    MethodNotAllowed,
    NotFound,
    PermissionDenied,
    PointerBroken,
    PointerError,
    PointerLoop,
    PointerRefused,
    PreconditionFailed,
    QueueFull,
    RangeNotSatisfiable,
    ReadOnly,
    SettingsError,
    StorageError,
    ThumbnailPending,
    TooLarge,
    Unauthorized,
    UnsupportedImage,
    UnsupportedVersion,
)
from .gallery import Stats
from .health import Status
from .indexing import IndexProgress, IndexReport
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
    "CrossSiteRefused",
    "InternalError",
    "InvalidParameter",
    "MethodNotAllowed",
    "RangeNotSatisfiable",
    "ThumbnailPending",
    "TooLarge",
    "Unauthorized",
    "ABSENT_ETAG",
    "AlreadyExists",
    "CorruptImage",
    "DirEntry",
    "DocumentError",
    "Entry",
    "Exif",
    "Hit",
    "ImageError",
    "ImageTooLarge",
    "IndexProgress",
    "IndexReport",
    "InvalidDocument",
    "InvalidPath",
    "Item",
    "Job",
    "JobFailed",
    "JobHandle",
    "Kind",
    "Engine",
    "EngineStats",
    "LocalEngine",
    "Original",
    "Pending",
    "QueueFull",
    "Thumbnail",
    "TimingSnapshot",
    "Timings",
    "ItemEntry",
    "Lenslet",
    "LensletError",
    "MalformedDocument",
    "Manifest",
    "NotFound",
    "PermissionDenied",
    "PointerBroken",
    "PointerError",
    "PointerLoop",
    "PointerRefused",
    "PreconditionFailed",
    "ReadOnly",
    "RollupItem",
    "Settings",
    "SettingsError",
    "Sidecar",
    "Skipped",
    "Stats",
    "Status",
    "Storage",
    "StorageError",
    "UnsupportedImage",
    "UnsupportedVersion",
    "Wave",
    "__version__",
]
