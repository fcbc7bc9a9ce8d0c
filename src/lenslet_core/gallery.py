"""One open gallery root: the live parts the modules that work on it share.

:class:`Gallery` holds what a root needs while it is open — its storage (with pointer folders
mounted), settings, the imaging seam, thumbnails, the folder pages cache, the job engine, the
search over the rollup, health, the change feed and this process's counts — and the few
operations every one of those modules needs (reading an image within the settings' limits,
queueing follow-up work, loading the stored state once). It is wiring, not a facade: the
:class:`~lenslet_core.lenslet.Lenslet` facade holds one privately, and :mod:`items`,
:mod:`images`, :mod:`work` and :mod:`watch` take it as their first argument.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import time
from collections.abc import Mapping
from typing import Any

import anyio

from . import paths, s3
from .changes import ChangeFeed
from .errors import (
    DocumentError,
    ImageTooLarge,
    LensletError,
    NotFound,
    QueueFull,
    SettingsError,
)
from .folders import FolderPages
from .fresh import Fresh
from .health import Health, Status, read_health
from .imaging import Imaging, ThumbSpec
from .jobs import Engine, EngineStats, Job, Kind
from .kept import Kept
from .keyedlock import KeyedLock
from .local_engine import LocalEngine
from .manifest import ItemEntry
from .mounts import Mounts
from .pointers import Pointer
from .rollup import Rollup
from .search import GallerySearch
from .settings import Settings
from .sidecar import Exif
from .storage import Entry, Observer, Storage, options_for
from .thumbnails import ThumbnailStore
from .timings import SLA_BUCKETS, Timings, TimingSnapshot

__all__ = ["LISTED_RECENTLY", "RECENT_BASICS", "Gallery", "Stats"]

#: Images whose EXIF basics are kept in memory at most (a hundred bytes or so each).
RECENT_BASICS = 10_000
#: Search answers kept (see :func:`items.find`).
FOUND_ANSWERS = 256

#: Seconds a folder page read from storage vouches for its images (to thumbnails: no stat
#: each; to search results: their entries, with no manifest read each).
LISTED_RECENTLY = 60.0


@dataclasses.dataclass(frozen=True)
class Stats:
    """What this process did, for metrics: the job queue; thumbnails served from a file, made
    on request in time, or answered "pending" (``thumbnails``); folder pages served from an
    existing manifest and rebuilt for want of one; and the time from a new image's arrival to
    its folder's manifest (with its thumbnail) written."""

    jobs: EngineStats
    thumbnails: dict[str, int]
    pages_served: int
    pages_rebuilt: int
    arrival_lag: TimingSnapshot


class Gallery:
    """The live parts of one open root (see the module docstring)."""

    def __init__(self, storage: Mounts, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.storage = storage
        self.jobs = engine
        self.imaging = Imaging(
            max_pixels=settings.max_pixels,
            cpu_concurrency=settings.cpu_concurrency,
            thumb=ThumbSpec(settings.thumb_size, settings.thumb_quality),
        )
        self.thumbs = ThumbnailStore.open(
            storage, settings.thumb_cache, fresh_for=settings.manifest_ttl
        )
        #: One build of a folder's manifest at a time (an index job, a rebuild for a reader).
        self.rebuilds = KeyedLock()
        self.folders = FolderPages(storage, self.imaging, settings, self.thumbs, self.rebuilds)
        #: One sidecar write (or move) of an image at a time.
        self.writes = KeyedLock()
        #: One read of an image's thumbnail at a time (the others take what it read).
        self.thumb_reads = KeyedLock()
        #: Images' EXIF basics and hash lately read, with the size and mtime they were read
        #: at: an item whose sidecar has none asks for them again and again.
        self.recent_basics: Fresh[tuple[tuple[int, float], Exif, str]] = Fresh(
            RECENT_BASICS, math.inf
        )
        self.search = GallerySearch(Rollup(storage))
        #: Items answered lately (:class:`items.Item`), kept while their folder does not
        #: change (local roots).
        self.kept_items: Kept[Any] = Kept(storage)
        #: Search answers lately given, with the versions of the search and of the folder
        #: pages they were made from (see :func:`items.find`).
        self.found: Fresh[tuple[tuple[int, int], tuple[Any, ...]]] = Fresh(
            FOUND_ANSWERS, settings.manifest_ttl
        )
        self.health = Health()
        self.feed = ChangeFeed()
        self.counts: collections.Counter[str] = collections.Counter()
        self.arrival_lag = Timings(SLA_BUCKETS)
        #: Folders where this process wrote a sidecar its manifest may not show yet (``hasMeta``
        #: is not trusted there), with when: an index of the folder begun later clears it.
        self.sidecars_written: dict[str, float] = {}
        self._state_lock = anyio.Lock()
        self._state_loaded = False
        self._health_loaded = False

    @classmethod
    def open(
        cls,
        root: str | Storage,
        settings: Settings,
        *,
        observer: Observer | None = None,
        storage_options: Mapping[str, Any] | None = None,
        engine: Engine | None = None,
    ) -> Gallery:
        """A gallery over a root given as a path, a URL (opened with the settings' options
        for its protocol, under ``storage_options``) or a ready storage, its pointer folders
        mounted; ``engine`` runs its background work (default: in this process)."""
        if isinstance(root, Storage):
            if settings.readonly and not root.readonly:
                raise SettingsError(
                    "the settings say read-only but the storage given is writable: "
                    "open it with Storage(..., readonly=True)"
                )
            storage = root
        else:
            options = options_for(root, settings.storage_options)
            storage = Storage.open(
                root,
                io_concurrency=settings.io_concurrency,
                readonly=settings.readonly,
                observer=observer,
                storage_options={**options, **(storage_options or {})},
            )

        def open_target(pointer: Pointer, url: str, readonly: bool) -> Storage:
            """A pointer's target: with the settings' options for its protocol (on S3, at the
            endpoint and region its config names, if any)."""
            options = options_for(url, settings.storage_options)
            if pointer.type == "s3":
                options = s3.for_target(
                    options, endpoint_url=pointer.endpoint, region=pointer.region
                )
            return Storage.open(
                url,
                io_concurrency=settings.io_concurrency,
                readonly=readonly,
                observer=storage.observer,
                storage_options=options,
            )

        mounts = Mounts(storage, open_target, allowed=settings.pointer_roots)
        engine = engine or LocalEngine(
            workers=max(2, settings.cpu_concurrency * 2),
            queue_size=settings.queue_size,
            attempts=settings.job_attempts,
        )
        return cls(mounts, settings, engine)

    @property
    def rollup(self) -> Rollup:
        return self.search.rollup

    def stats(self) -> Stats:
        thumbnails = {k: self.counts[f"thumbnails_{k}"] for k in ("served", "made", "pending")}
        return Stats(
            self.jobs.stats(),
            thumbnails,
            self.folders.served,
            self.folders.rebuilt,
            self.arrival_lag.snapshot(),
        )

    async def status(self, *, check_within: float, read_within: float) -> Status:
        """The gallery's :class:`Status`, within about ``check_within + read_within`` seconds
        whatever the storage does: a storage that does not answer in time is unreachable, and
        a ``_health.json`` not read in time is left out."""
        error: dict[str, str] | None = {
            "code": "storage_timeout",
            "message": f"the storage did not answer within {check_within} s",
        }
        with anyio.move_on_after(check_within):
            try:
                await self.storage.check_root()
                error = None
            except LensletError as exc:
                error = {"code": exc.code, "message": exc.message}
        stored = None
        if error is None:
            with anyio.move_on_after(read_within):
                with contextlib.suppress(LensletError):
                    stored = await read_health(self.storage)
        jobs = self.jobs.stats().to_json()
        return Status(error is None, error, jobs, stored, self.storage.readonly)

    # -- queueing work -----------------------------------------------------------------------------

    def job(self, kind: Kind, path: str = "") -> Job:
        """A job of ``kind`` on this root."""
        return Job(kind.name, self.storage.url, path)

    async def submit_quietly(self, kind: Kind, path: str = "") -> None:
        """Queue follow-up work that may also wait for a later chance (a full queue, or an
        engine shutting down, just skips it)."""
        with contextlib.suppress(QueueFull):
            await self.jobs.submit(self.job(kind, path), wait_for_room=False)

    # -- what is known ---------------------------------------------------------------------------

    async def load_state(self) -> None:
        """Read ``_rollup.json`` and ``_health.json`` once, on first need."""
        if self._state_loaded:
            return
        await self.load_health()
        async with self._state_lock:
            if not self.rollup.loaded:  # else another task loaded it while this one waited
                await self.search.load()
            self._state_loaded = True

    async def load_health(self) -> None:
        """Read ``_health.json`` once, on first need (the rollup, much larger, is left for
        :meth:`load_state`)."""
        if not self._health_loaded:
            async with self._state_lock:
                await self._read_health()

    async def _read_health(self) -> None:
        if self._health_loaded:
            return  # another task read it while this one waited
        try:
            stored = await read_health(self.storage, bookkeeping=True)
        except DocumentError:
            stored = None  # derived data: counted again by the next index run
        if stored is not None:
            self.health = Health.from_json(stored)
        self._health_loaded = True

    async def known_rollup(self) -> dict[str, str] | None:
        """The rollup's folders and their signatures, when ``_health.json`` has them and the
        rollup is still the one they describe (one metadata request); ``None`` otherwise, and
        once the rollup itself is loaded."""
        if self.rollup.loaded:
            return None
        await self.load_health()
        if self.health.rollup is None:
            return None  # nothing known: no request
        return self.health.rollup_signatures(await self.rollup.stored_stamp())

    async def save_health(self) -> None:
        """Write ``_health.json``, with what it knows of the rollup brought up to date."""
        if self.rollup.loaded:
            self.health.rollup = self.rollup.stored_state()
        await self.health.save(self.storage, self.jobs.stats().to_json())

    def listed(self, image: str, within: float = LISTED_RECENTLY) -> ItemEntry | None:
        """An image's entry in a folder page read within ``within`` seconds (no I/O)."""
        return self.folders.cached_item(*paths.split(image), within=within)

    def forget(self, folder: str) -> None:
        """Drop what is known of a folder that is gone (and everything below it)."""
        self.folders.invalidate(folder, below=True)
        self.rollup.prune(folder, ())
        self.health.forget(folder)

    def note_sidecar_written(self, folder: str) -> None:
        """A sidecar was written in ``folder``: its manifest's ``hasMeta`` may lag it."""
        self.sidecars_written[folder] = time.monotonic()

    # -- images ----------------------------------------------------------------------------------

    async def image_file(self, image: str) -> Entry:
        """An image's entry in storage; :class:`NotFound` for anything but a file."""
        entry = await self.storage.info(image)
        if entry.kind != "file":
            raise NotFound(f"{image!r} is not an image file", path=image)
        return entry

    async def read_image(self, image: str, listed: ItemEntry | Entry | None = None) -> bytes:
        """An image's bytes, if it is a file the settings let lenslet read whole (``listed``:
        its entry in a folder page read lately or its storage entry, which saves asking
        storage for its size)."""
        size = listed.size if listed is not None else (await self.image_file(image)).size
        if size > self.settings.max_file_bytes:
            raise ImageTooLarge(
                f"{size:,} bytes is above max_file_bytes {self.settings.max_file_bytes:,}",
                path=image,
            )
        return await self.storage.read(image)

    async def basics(self, image: str, listed: ItemEntry | Entry | None = None) -> tuple[Exif, str]:
        """An image's EXIF basics and hash, from its bytes (read again only when its size or
        mtime changed since they were last read here; ``listed`` as for :meth:`read_image`)."""
        known: ItemEntry | Entry = listed or await self.image_file(image)
        kept = self.recent_basics.get(image)
        if kept is not None and kept[0] == (known.size, known.mtime):
            return kept[1], kept[2]
        result = await self.imaging.analyze(await self.read_image(image, known))
        info = result.probe
        exif = Exif(info.width, info.height, info.created_at)
        self.recent_basics.put(image, ((known.size, known.mtime), exif, result.hash))
        return exif, result.hash
