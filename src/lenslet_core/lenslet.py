"""The facade: the one object adapters (HTTP, CLI, your own code) talk to.

async with Lenslet("/photos") as lens:
    report = await lens.index()
    page = await lens.folder("/trips/2025")
    item = await lens.item("/trips/2025/beach.jpg")
    item = await lens.update_item(item.path, {"tags": ["sea"]}, if_match=item.etag)
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream

from . import paths, s3, work
from .changes import ChangeFeed
from .errors import (
    DocumentError,
    ImageError,
    ImageTooLarge,
    LensletError,
    NotFound,
    PermissionDenied,
    QueueFull,
    ReadOnly,
    SettingsError,
)
from .files import create_image, delete_image, move_image
from .folders import FolderPages
from .hashing import content_etag
from .health import Health, folder_health, read_health
from .imaging import Imaging, ThumbSpec, sniff_mime
from .indexing import IndexProgress, IndexReport, index_tree
from .jobs import Engine, Job, LocalEngine
from .keyedlock import KeyedLock
from .manifest import Skipped
from .models import Exif, ItemEntry, Manifest, RollupItem, Sidecar, star_of
from .mounts import Mounts
from .pointers import Pointer
from .rollup import Rollup
from .search import LiveSearch, SearchIndex
from .settings import Settings
from .sidecar import ABSENT_ETAG, read_sidecar, update_sidecar
from .storage import Entry, Observer, Storage, Store
from .thumbnails import ThumbnailStore
from .timings import SLA_BUCKETS, Timings
from .watch import Snapshot, Wave, poll_changes, watch_changes

__all__ = ["Item", "Lenslet", "Original", "Pending", "Thumbnail"]

log = logging.getLogger("lenslet")

#: Seconds between two writes of ``_rollup.json`` while edits keep coming.
_ROLLUP_EVERY = 1.0
#: Seconds a folder page read from storage vouches for its images (to thumbnails: no stat
#: each; to search results: their entries, with no manifest read each).
_LISTED_RECENTLY = 60.0
#: Seconds between two looks for pointer folders followed since watching began.
_POINTERS_CHECKED_EVERY = 2.0
#: Edits a search serves on top of its index before it must build a new one itself (the
#: rollup job builds one in the background after far fewer).
_SEARCH_OVERLAY_MAX = 20_000


@dataclasses.dataclass(frozen=True)
class Item:
    """An image's sidecar as clients see it: the stored document, or the EXIF basics when the
    image has no sidecar yet (``exists`` False, ``etag`` :data:`ABSENT_ETAG`)."""

    path: str
    sidecar: Sidecar
    etag: str
    exists: bool

    def to_json(self) -> dict[str, Any]:
        """The sidecar as answered to clients: the stamps in both spellings (existing clients
        read ``updated_at`` and ``updated_by``; files keep the camelCase ones only)."""
        document = self.sidecar.to_json()
        document["updated_at"] = document["updatedAt"]
        document["updated_by"] = document["updatedBy"]
        return document


@dataclasses.dataclass(frozen=True)
class Thumbnail:
    """An image's thumbnail: WebP bytes and a strong validator for them."""

    path: str
    data: bytes
    etag: str
    media_type: str = "image/webp"


@dataclasses.dataclass(frozen=True)
class Original:
    """An image file as stored: what serving it needs to know before reading it."""

    path: str
    size: int
    mtime: float
    media_type: str

    @property
    def etag(self) -> str:
        """A validator from size and mtime (the bytes are not read for it)."""
        return f"{self.size:x}-{int(self.mtime * 1000):x}"


@dataclasses.dataclass(frozen=True)
class Pending:
    """A thumbnail still being made (the queue is busy): ask again after ``retry_after``
    seconds. HTTP answers this with ``202 Accepted`` and ``Retry-After``."""

    path: str
    retry_after: float


def _storage_options(
    url: str, settings: Settings, given: Mapping[str, Any] | None
) -> dict[str, Any]:
    """fsspec options for a root: the S3 settings for ``s3://`` URLs, under what was given."""
    options = _s3_options(settings) if url.startswith(("s3://", "s3a://")) else {}
    return {**options, **(given or {})}


def _s3_options(
    settings: Settings, *, endpoint_url: str | None = None, region: str | None = None
) -> dict[str, Any]:
    """s3fs options from the settings (a pointer's target may name its own endpoint and
    region)."""
    return s3.storage_options(
        endpoint_url=endpoint_url or settings.s3_endpoint_url,
        region=region or settings.s3_region,
        profile=settings.s3_profile,
        connect_timeout=settings.s3_connect_timeout,
        read_timeout=settings.s3_read_timeout,
        attempts=settings.s3_attempts,
    )


def _thumbnail(image: str, data: bytes) -> Thumbnail:
    return Thumbnail(image, data, content_etag(data))


class Lenslet:
    """A gallery root and everything lenslet does with it.

    ``root`` is a local path, an fsspec URL (``memory://…``) or a ready :class:`Storage`.
    Use it as an async context manager; the operations need the event loop it was entered on.
    """

    def __init__(
        self,
        root: str | Storage,
        settings: Settings | None = None,
        *,
        observer: Observer | None = None,
        storage_options: Mapping[str, Any] | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.settings = settings or Settings()
        if isinstance(root, Storage):
            if self.settings.readonly and not root.readonly:
                raise SettingsError(
                    "the settings say read-only but the storage given is writable: "
                    "open it with Storage(..., readonly=True)"
                )
            storage = root
        else:
            storage = Storage.open(
                root,
                io_concurrency=self.settings.io_concurrency,
                readonly=self.settings.readonly,
                observer=observer,
                storage_options=_storage_options(root, self.settings, storage_options),
            )
        self.storage = Mounts(storage, self._open_target, allowed=self.settings.pointer_roots)
        self.imaging = Imaging(
            max_pixels=self.settings.max_pixels,
            cpu_concurrency=self.settings.cpu_concurrency,
            thumb=ThumbSpec(self.settings.thumb_size, self.settings.thumb_quality),
        )
        self.thumbs = ThumbnailStore.open(self.storage, self.settings.thumb_cache)
        self._rebuilds = KeyedLock()
        self._folders = FolderPages(
            self.storage, self.imaging, self.settings, self.thumbs, self._rebuilds
        )
        self._writes = KeyedLock()
        #: The job engine (default: in-process); lenslet's kinds are registered on entry.
        self.jobs: Engine = engine or LocalEngine(
            workers=max(2, self.settings.cpu_concurrency * 2),
            queue_size=self.settings.queue_size,
            attempts=self.settings.job_attempts,
        )
        #: What this process served, for metrics: thumbnails served from a file, made on
        #: request in time, or answered "pending".
        self.counts: collections.Counter[str] = collections.Counter()
        #: From a new image's arrival to its folder's manifest (with its thumbnail) written.
        self.arrival_lag = Timings(SLA_BUCKETS)
        #: Folders where this process wrote a sidecar its manifest may not show yet (``hasMeta``
        #: is not trusted there), with when: an index of the folder begun later clears it.
        self._sidecars_written: dict[str, float] = {}
        self.rollup = Rollup(self.storage)
        self.health = Health()
        self._state_lock = anyio.Lock()
        self._state_loaded = False
        self._search = LiveSearch()
        self._search_generation = -1
        self._search_lock = anyio.Lock()
        self._building: dict[str, RollupItem | None] | None = None
        self._rollup_checked = 0.0
        self._rollup_saved = 0.0
        self._feed = ChangeFeed()

    async def check(self) -> None:
        """Fail now, with an error that says what to fix, when the root cannot be used (a
        missing folder; a bucket that is not there, refuses the credentials or cannot be
        reached). Entering the ``Lenslet`` checks too."""
        await self.storage.check_root()

    async def __aenter__(self) -> Lenslet:
        await self.check()  # fail now, clearly, when the root is not usable
        self.jobs.register(work.THUMBNAIL, self._thumbnail_job)
        self.jobs.register(work.INDEX, self._index_job)
        self.jobs.register(work.ROLLUP, self._rollup_job)
        self.jobs.register(work.HEALTH, self._health_job)
        await self.jobs.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.jobs.__aexit__(exc_type, exc, tb)
        finally:
            self._folders.clear()

    def __repr__(self) -> str:
        return f"Lenslet({self.storage.url!r})"

    @property
    def readonly(self) -> bool:
        """Whether the root refuses every write (uploads, moves, deletes, sidecars)."""
        return self.storage.readonly

    def _open_target(self, pointer: Pointer, url: str, readonly: bool) -> Storage:
        """The storage a pointer folder opens (S3 with the settings' endpoint and profile,
        and the pointer's region)."""
        options = None
        if pointer.type == "s3":
            options = _s3_options(
                self.settings, endpoint_url=pointer.endpoint, region=pointer.region
            )
        return Storage.open(
            url,
            io_concurrency=self.settings.io_concurrency,
            readonly=readonly,
            observer=self.storage.storage.observer,
            storage_options=options,
        )

    # -- folders -------------------------------------------------------------------------------

    async def folder(self, path: str = "", page: int = 0, *, refresh: bool = False) -> Manifest:
        """One page of a folder's manifest, served from its ``_index.json`` (cached in memory
        for ``manifest_ttl`` seconds) and rebuilt only when it is missing, unreadable or
        ``refresh`` asks for it. Pages of a paged folder always come from one build."""
        return await self._folders.get(paths.normalize(path), page, refresh=refresh)

    async def whole_folder(self, path: str = "") -> Manifest:
        """The whole folder as one page (every page of one build joined, ``page_count`` 1):
        what clients that never page get."""
        return Manifest.join(await self._folders.pages(paths.normalize(path)))

    # -- items ---------------------------------------------------------------------------------

    async def item(self, path: str) -> Item:
        """An image's sidecar, with its EXIF basics filled in from the image when missing.

        A folder page read within ``manifest_ttl`` answers what it can: that the image is
        there (no stat), its size, and whether it has a sidecar at all (``hasMeta``; not after
        this process wrote one the manifest does not show yet). On S3 an image without a
        sidecar then costs one GET, for its EXIF basics."""
        image = paths.item_path(path)
        folder, name = paths.split(image)
        listed = self._folders.cached_item(folder, name, within=self.settings.manifest_ttl)
        if listed is not None and not listed.hasMeta and folder not in self._sidecars_written:
            stored = None
        else:
            stored = await read_sidecar(self.storage, image)
        if stored is None:
            basics, digest = await self._basics(image, listed)
            return Item(image, Sidecar(exif=basics.to_json(), hash=digest), ABSENT_ETAG, False)
        sidecar, etag = stored
        if sidecar.exif is None:
            sidecar = await self._with_basics(image, sidecar, listed)
        elif listed is None:
            await self._image_file(image)  # an orphan sidecar is not an item
        return Item(image, sidecar, etag, True)

    async def _with_basics(
        self, image: str, sidecar: Sidecar, listed: ItemEntry | None = None
    ) -> Sidecar:
        """A sidecar without EXIF basics, with them (and the hash) from the image."""
        try:
            basics, digest = await self._basics(image, listed)
        except ImageError:
            # The image cannot give its basics (too large, corrupt): its tags and notes
            # are still the user's, so they are served without them.
            if listed is None:
                await self._image_file(image)
            return sidecar
        return dataclasses.replace(sidecar, exif=basics.to_json(), hash=sidecar.hash or digest)

    async def _image_file(self, image: str) -> Entry:
        entry = await self.storage.info(image)
        if entry.kind != "file":
            raise NotFound(f"{image!r} is not an image file", path=image)
        return entry

    async def _read_image(self, image: str, listed: ItemEntry | None = None) -> bytes:
        """An image's bytes, if it is a file the settings let lenslet read whole (``listed``:
        its entry in a folder page read lately, which saves asking storage for its size)."""
        size = listed.size if listed is not None else (await self._image_file(image)).size
        if size > self.settings.max_file_bytes:
            raise ImageTooLarge(
                f"{size:,} bytes is above max_file_bytes {self.settings.max_file_bytes:,}",
                path=image,
            )
        return await self.storage.read(image)

    async def _basics(self, image: str, listed: ItemEntry | None = None) -> tuple[Exif, str]:
        data = await self._read_image(image, listed)
        result = await self.imaging.analyze(data)
        info = result.probe
        return Exif(info.width, info.height, info.created_at), result.hash

    async def update_item(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        if_match: str | None = None,
        updated_by: str | None = None,
        writer: str | None = None,
    ) -> Item:
        """Write a client's sidecar by the rules of :mod:`lenslet_core.sidecar`; returns what
        was stored and its new ETag, as :meth:`item` answers it next. ``updatedBy`` is the
        body's author (one not just echoed back), else ``updated_by`` (who the request says
        writes), else an echoed one, else ``writer`` (default: the settings' ``writer``)."""
        image = paths.item_path(path)
        await self.storage.ensure_writable(image)
        folder = paths.parent(image)
        if self._folders.cached_item(*paths.split(image), within=_LISTED_RECENTLY) is None:
            # No sidecar for an image that does not exist (a folder page read lately says it
            # does: a burst of edits costs the sidecars' requests, not a stat each too).
            await self._image_file(image)
        self._sidecars_written[folder] = time.monotonic()  # before: a manifest may lag it
        async with self._writes(image):
            sidecar, etag, previous = await update_sidecar(
                self.storage,
                image,
                body,
                if_match=if_match,
                author=updated_by,
                writer=writer or self.settings.writer,
            )
        await self._load_state()
        name = paths.split(image)[1]
        self.rollup.edit(RollupItem(image, name, sidecar.tags, sidecar.notes))
        if previous is None or star_of(previous.extra) != star_of(sidecar.extra):
            # A first sidecar (hasMeta) or a new star: the manifest catches up in the
            # background, reading this sidecar again, not the folder's images. Tags and notes
            # are not in the manifest: such an edit costs the sidecar's own requests and a
            # share of one coalesced rollup write.
            await self._submit_quietly(Job("index", self.storage.url, folder))
        await self._submit_quietly(Job("rollup", self.storage.url))
        self._feed.publish([folder])
        listed = self._folders.cached_item(folder, name)
        if sidecar.exif is None:
            sidecar = await self._with_basics(image, sidecar, listed)
        return Item(image, sidecar, etag, True)

    # -- changing images -----------------------------------------------------------------------

    async def upload(self, folder: str, name: str, data: bytes, *, overwrite: bool = False) -> str:
        """Add an image (checked by content first) to ``folder``; refuses to replace one
        unless ``overwrite``. Returns its logical path."""
        image = paths.new_item_path(paths.join(paths.normalize(folder), name))
        await create_image(self.storage, self.imaging, image, data, overwrite=overwrite)
        await self._changed({paths.parent(image)})
        return image

    async def move(self, source: str, target: str, *, overwrite: bool = False) -> str:
        """Move an image with its sidecar and thumbnail. ``target`` is a new image path, or a
        folder to move it into — created when it does not exist yet (a trash folder); an
        existing image there is replaced only with ``overwrite`` (its sidecar and thumbnail go
        with it). The image's previous path is recorded in its sidecar as
        ``original_position`` (a sidecar is made for it when it had none), so a client can put
        it back."""
        image = paths.item_path(source)
        folder = paths.normalize(target)
        try:
            into = (await self.storage.info(folder)).is_folder if folder else True
            found = True
        except NotFound:
            # Not there yet: named like an image, it is the new image's path; else a folder.
            into, found = not paths.is_image_name(paths.split(folder)[1]), False
        destination = paths.join(folder, paths.split(image)[1]) if into else folder
        destination = paths.new_item_path(destination)
        if not found:
            parent = paths.parent(destination)
            paths.new_folder_path(parent)
            await self.storage.info(image)  # a missing image creates no folder
            await self.storage.ensure_writable(destination)
            await self.storage.make_folder(parent)
        # No sidecar write to either image while it moves (it would be left behind or lost);
        # locks taken in path order, so two moves between the same images cannot deadlock.
        async with contextlib.AsyncExitStack() as stack:
            for key in sorted({image, destination}):
                await stack.enter_async_context(self._writes(key))
            await move_image(self.storage, self.thumbs, image, destination, overwrite=overwrite)
            recorded = await self._record_position(image, destination)
        self.rollup.remove(image)
        if overwrite:
            self.rollup.remove(destination)
        if recorded is not None:
            await self._load_state()
            name = paths.split(destination)[1]
            self.rollup.edit(RollupItem(destination, name, recorded.tags, recorded.notes))
        await self._changed({paths.parent(image), paths.parent(destination)})
        return destination

    async def _record_position(self, image: str, destination: str) -> Sidecar | None:
        """Note a moved image's previous path in its sidecar (``original_position``). The move
        has happened: a sidecar that cannot take the note (unreadable, a name too long for
        one) leaves the move as it is, and the note is skipped."""
        if destination == image:
            return None
        self._sidecars_written[paths.parent(destination)] = time.monotonic()
        try:
            written = await update_sidecar(
                self.storage, destination, {"original_position": image}, writer=self.settings.writer
            )
        except LensletError as exc:
            log.warning("moved %r to %r; original_position not recorded: %s", image, destination,
                        exc.message)  # fmt: skip
            return None
        return written.sidecar

    async def delete(self, images: Sequence[str]) -> list[str]:
        """Delete images with their sidecars and thumbnails; returns those deleted (images that
        are not there are skipped)."""
        checked = [paths.item_path(image) for image in images]  # all valid, or none deleted
        deleted = []
        for image in checked:
            try:
                await delete_image(self.storage, self.thumbs, image)
            except NotFound:
                continue
            self.rollup.remove(image)
            deleted.append(image)
        await self._changed({paths.parent(image) for image in deleted})
        return deleted

    async def _changed(self, folders: set[str]) -> None:
        """Folders whose images changed: their manifests rebuilt now (no image but the new
        ones is read), so the next listing shows the change; thumbnails, rollup and health
        follow in the background."""
        for folder in sorted(folders):
            with contextlib.suppress(NotFound):
                await self._folders.get(folder, refresh=True)
            await self._submit_quietly(Job("index", self.storage.url, folder))
        self._feed.publish(folders)

    def subscribe(
        self,
    ) -> contextlib.AbstractAsyncContextManager[MemoryObjectReceiveStream[frozenset[str]]]:
        """The folders changed from now on, as sets, for a page that shows them: this
        process's writes (sidecars, uploads, moves, deletes) once their folder's listing shows
        them, and watched changes (other processes, files copied in) once indexed::

            async with lens.subscribe() as changes:
                async for folders in changes:
                    ...

        A subscriber that falls far behind misses changes rather than slowing the writers."""
        return self._feed.subscribe()

    # -- originals -----------------------------------------------------------------------------

    async def original(self, path: str) -> Original:
        """An image file as stored: its size, mtime and type (by content), for serving it
        whole or in ranges with :meth:`read_original`."""
        image = paths.item_path(path)
        entry = await self._image_file(image)
        head = await self.storage.read_range(image, 0, 16)
        return Original(image, entry.size, entry.mtime, sniff_mime(head))

    async def read_original(self, path: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of an image file."""
        return await self.storage.read_range(paths.item_path(path), start, end)

    # -- thumbnails ----------------------------------------------------------------------------

    async def thumbnail(self, path: str, *, wait: float = 0.8) -> Thumbnail | Pending:
        """An image's thumbnail. A missing one is made by a job at the highest priority and
        awaited up to ``wait`` seconds; :class:`Pending` when the queue is too busy for that."""
        image = paths.item_path(path)
        if self._folders.cached_item(*paths.split(image), within=_LISTED_RECENTLY) is None:
            # A missing image is a 404 (its thumbnail an orphan). A folder page read lately
            # already says the image is there: a client showing a folder's thumbnails costs
            # one read each, not a read and a stat.
            await self._image_file(image)
        try:
            found = _thumbnail(image, await self.thumbs.read(image))
        except NotFound:
            pass
        else:
            self.counts["thumbnails_served"] += 1
            return found
        job = Job("thumbnail", self.storage.url, image)
        handle = await self.jobs.submit(job, wait_for_room=False)
        if await handle.wait(wait):
            data: bytes = handle.result()
            self.counts["thumbnails_made"] += 1
            return _thumbnail(image, data)
        self.counts["thumbnails_pending"] += 1
        return Pending(image, self.jobs.retry_after(job))

    async def _thumbnail_job(self, job: Job) -> bytes:
        """Make, keep and return one image's thumbnail (kept where :class:`ThumbnailStore`
        can; returned even when it cannot be kept)."""
        image = job.path
        data = await self.imaging.thumbnail(await self._read_image(image))
        if not self.thumbs.keeps_all:
            return data
        try:
            await self.thumbs.write(image, data)
        except (ReadOnly, PermissionDenied):
            return data  # a read-only folder and no thumb_cache: served, not kept
        try:
            await self._image_file(image)
        except NotFound:
            # Moved or deleted while it was made: its thumbnail must not stay behind.
            with contextlib.suppress(NotFound):
                await self.thumbs.delete(image)
            raise
        # The folder's manifest says hasThumb; bring it up to date when the queue has time.
        await self._submit_quietly(Job("index", self.storage.url, paths.parent(image)))
        return data

    async def _submit_quietly(self, job: Job) -> None:
        """Queue follow-up work that may also wait for a later chance (a full queue, or an
        engine shutting down, just skips it)."""
        with contextlib.suppress(QueueFull):
            await self.jobs.submit(job, wait_for_room=False)

    async def _index_job(self, job: Job) -> IndexReport | None:
        began = time.monotonic()
        try:
            report = await self._index(job.path, recursive=False, save=False)
        except NotFound:
            self._forget(job.path)  # the folder is gone: so is what was known of it
            return None
        if self._sidecars_written.get(job.path, math.inf) < began:
            del self._sidecars_written[job.path]
        now = time.time()
        for arrived in report.arrivals:
            self.arrival_lag.observe(now - arrived)
        if not self.storage.readonly:
            await self._submit_quietly(Job("rollup", self.storage.url))
            await self._submit_quietly(Job("health", self.storage.url))
        return report

    async def _rollup_job(self, job: Job) -> bool:
        # Coalesce: at most one write a second, however many edits arrive.
        await anyio.sleep(max(0.0, self._rollup_saved + _ROLLUP_EVERY - time.monotonic()))
        wrote = await self._save_rollup()
        if self._search_generation >= 0:  # searched before: keep its index fresh, off the path
            await self._current_search(rebuild=True)
        return wrote

    async def _health_job(self, job: Job) -> None:
        await self.health.save(self.storage, self.jobs.stats().to_json())

    # -- rollup, search, health ----------------------------------------------------------------

    async def _load_state(self) -> None:
        """Read ``_rollup.json`` and ``_health.json`` once, on first need."""
        if self._state_loaded:
            return
        async with self._state_lock:
            if self.rollup.loaded:  # another task loaded it while this one waited
                return
            await self.rollup.load()
            try:
                stored = await read_health(self.storage)
            except DocumentError:
                stored = None  # derived data: counted again by the next index run
            if stored is not None:
                self.health = Health.from_json(stored)
            self._rollup_checked = time.monotonic()
            self._state_loaded = True

    async def _save_rollup(self, basis: float | None = None) -> bool:
        wrote = await self.rollup.save(basis=basis)
        self._rollup_saved = time.monotonic()
        return wrote

    async def search(self, query: str, *, limit: int = 100, path: str = "") -> list[RollupItem]:
        """Images whose name, tags or notes contain ``query`` (any case), under the folder
        ``path``: exact tag matches first, then by path. Served from the rollup in memory,
        which is read again when another process has saved a newer one."""
        await self._load_state()
        if time.monotonic() - self._rollup_checked >= self.settings.manifest_ttl:
            self._rollup_checked = time.monotonic()
            await self.rollup.refresh()
        live = await self._current_search(rebuild=False)
        return live.search(query, limit=limit, path=path)

    async def _current_search(self, *, rebuild: bool) -> LiveSearch:
        """The search over the rollup as it is now. A new index is built when the rollup was
        read again (another process saved it); ``rebuild`` also builds one when the edits
        since the last build are many. Searches made during a build are served by the old
        index and the edits on top of it."""
        live = self._search
        if self._search_generation == self.rollup.generation and not (rebuild and live.stale):
            changes = self.rollup.drain()
            live.change(changes)
            if self._building is not None:
                self._building.update(changes)  # the index being built has not seen them
            if len(live) < _SEARCH_OVERLAY_MAX:
                return live
        async with self._search_lock:  # one build at a time
            if self._search_generation == self.rollup.generation and not live.stale:
                return live
            generation, parts = self.rollup.generation, self.rollup.parts()
            self.rollup.drain()  # the snapshot has them
            self._building = {}
            try:
                index = await anyio.to_thread.run_sync(
                    lambda: SearchIndex(itertools.chain.from_iterable(parts))
                )
            finally:
                during, self._building = self._building, None
            live.replace(index)
            live.change(during)
            self._search_generation = generation
        return live

    async def entries(self, images: Sequence[str]) -> dict[str, ItemEntry]:
        """The manifest entries (size, w, h, hasThumb, …) of images, by path, from their
        folders' manifests: pages read lately are used as they are, others are read like
        :meth:`folder` (folders concurrently). Images a manifest does not list are left out."""
        wanted: dict[str, set[str]] = {}
        found: dict[str, ItemEntry] = {}
        for image in images:
            folder, name = paths.split(image)
            listed = self._folders.cached_item(folder, name, within=_LISTED_RECENTLY)
            if listed is not None:
                found[image] = listed
            else:
                wanted.setdefault(folder, set()).add(name)

        async def look(folder: str, names: set[str]) -> None:
            page, count = 0, 1
            while page < count and names:
                try:
                    manifest = await self.folder(folder, page)
                except LensletError:
                    return  # a folder gone or unreadable since the rollup was written
                count = manifest.page_count
                for name in list(names):
                    listed = self._folders.cached_item(folder, name)
                    if listed is not None:
                        found[paths.join(folder, name)] = listed
                        names.discard(name)
                page += 1

        async with anyio.create_task_group() as tg:
            for folder, names in wanted.items():
                tg.start_soon(look, folder, names)
        return found

    async def stored_health(self) -> dict[str, Any] | None:
        """``_health.json`` as the last process that wrote it left it (``None``: none yet)."""
        return await read_health(self.storage)

    async def health_report(self) -> dict[str, Any]:
        """The gallery's health as ``_health.json`` has it, with the live job queue."""
        await self._load_state()
        return self.health.to_json(self.jobs.stats().to_json())

    # -- indexing ------------------------------------------------------------------------------

    async def index(
        self,
        path: str = "",
        *,
        recursive: bool = True,
        on_progress: Callable[[IndexProgress], None] | None = None,
        thumbnails: bool | None = None,
    ) -> IndexReport:
        """Build or refresh the manifests of ``path`` (and the folders below it), making the
        missing thumbnails unless ``thumbnails`` (default: the ``thumbnails`` setting) is off."""
        return await self._index(
            path, recursive=recursive, on_progress=on_progress, thumbnails=thumbnails, save=True
        )

    async def _index(
        self,
        path: str,
        *,
        recursive: bool,
        save: bool,
        on_progress: Callable[[IndexProgress], None] | None = None,
        thumbnails: bool | None = None,
    ) -> IndexReport:
        folder = paths.normalize(path)
        make = self.settings.thumbnails if thumbnails is None else thumbnails
        await self._load_state()
        seen: list[str] = []

        async def on_folder(
            done: str,
            entries: Sequence[Entry],
            items: Sequence[ItemEntry],
            listed_at: float,
            manifest: str,
        ) -> None:
            seen.append(done)
            await self.rollup.update_folder(done, entries, items, listed_at, manifest)
            if not self.health.counted(done, manifest):
                self.health.set_folder(done, folder_health(done, entries, items, manifest))

        started = time.time()
        # One build of a folder's manifest at a time (a watch's job, a rebuild for a reader):
        # the later build has the later listing, and it is the one that lands.
        async with self._rebuilds(folder) if not recursive else contextlib.nullcontext():
            report = await index_tree(
                self.storage,
                self.imaging,
                self.settings,
                folder,
                recursive=recursive,
                on_progress=on_progress,
                thumbs=self.thumbs,
                make_thumbs=make,
                on_folder=on_folder,
            )
        self._invalidate(folder, below=recursive)
        # Folders the run could not read are kept as they were, with what is below them.
        unread = [("" if s.path == "/" else s.path) for s in report.skipped if s.error]
        if recursive:
            self.rollup.prune(folder, seen, keep_below=unread)
        # Health's "last index run" is the last run asked for, not a watch's folder refresh.
        summary = report.summary() if save else None
        self.health.finish_run(folder, recursive, seen, report.skipped, summary, keep_below=unread)
        if save and not self.storage.readonly:
            # A run over the whole tree has read every sidecar changed since the old basis.
            basis = started if recursive and not folder else None
            try:
                await self._save_rollup(basis)
                await self.health.save(self.storage, self.jobs.stats().to_json())
            except LensletError as exc:
                name = paths.ROLLUP_NAME if self.rollup.dirty else paths.HEALTH_NAME
                report.skipped.append(Skipped(name, f"not written: {exc.message}", exc.code))
        return report

    # -- watching ------------------------------------------------------------------------------

    async def watch(
        self,
        path: str = "",
        *,
        stop: anyio.Event | None = None,
        on_wave: Callable[[Wave], Awaitable[None] | None] | None = None,
        debounce_ms: int = 1600,
    ) -> None:
        """Keep ``path`` (and below) indexed until ``stop`` is set: new, changed and deleted
        images and sidecars reach the manifests, thumbnails, rollup and health within seconds.
        Each wave of changes runs as index jobs (one per folder); ``on_wave`` is told of each
        wave once its folders are done. A local root reports changes as they happen; any other
        (S3) is listed whole every ``watch_interval`` seconds and compared with the last
        listing."""
        folder = paths.normalize(path)
        root = self.storage.local_root
        await self._load_state()

        async def handle(wave: Wave) -> None:
            for changed in wave.folders | wave.new_folders | wave.removed:
                self.storage.forget(changed)  # a config written, edited or removed
            for gone in wave.removed:
                self._forget(gone)
            for new in sorted(wave.new_folders):
                try:
                    await self._index(new, recursive=True, save=False)
                except NotFound:
                    self._forget(new)  # gone again before its turn
                except LensletError:
                    continue  # a pointer folder, an unreadable one: its parent's index says
            handles = [
                await self.jobs.submit(Job("index", self.storage.url, f))
                for f in sorted(wave.folders)
            ]
            for handle in handles:
                await handle.wait()
            self._feed.publish(wave.folders | wave.new_folders | wave.removed)
            if wave.new_folders or wave.removed:
                await self._submit_quietly(Job("rollup", self.storage.url))
                await self._submit_quietly(Job("health", self.storage.url))
            if on_wave is not None:
                awaited = on_wave(wave)
                if awaited is not None:
                    await awaited

        stop = stop or anyio.Event()
        every = self.settings.watch_interval

        async def watch_one(storage: Store, prefix: str) -> None:
            """Watch one root: the gallery's (``prefix`` "") or a pointer's target mounted at
            ``prefix``: a local one by its events, any other by listing it on an interval."""
            under = folder if not prefix else ""

            async def placed(wave: Wave) -> None:
                await handle(wave.mounted_at(prefix) if prefix else wave)

            local = storage.local_root if prefix else root
            if local is not None:
                await watch_changes(local, placed, under=under, stop=stop, debounce_ms=debounce_ms)
                return

            async def snapshot() -> Snapshot:
                return await storage.files(under)

            await poll_changes(snapshot, placed, under=under, stop=stop, interval=every)

        async def watch_target(target: Storage, prefix: str) -> None:
            """A pointer target's watch: its trouble (an outage of its S3) is logged and the
            watch tried again later; it never ends the gallery's own watch."""
            while not stop.is_set():
                try:
                    await watch_one(target, prefix)
                    return
                except LensletError as exc:
                    log.warning("watching pointer %r (%s): %s", prefix, target.url, exc.message)
                with anyio.move_on_after(every):
                    await stop.wait()

        async def watch_targets(tg: anyio.abc.TaskGroup) -> None:
            """Pointer targets are watched too, each mapped back to its pointer folder's
            logical paths, as soon as a listing or an index run has followed the pointer."""
            watched: set[tuple[str, str]] = set()
            while not stop.is_set():
                for prefix, target in self.storage.mounted():
                    inside = not folder or prefix == folder or prefix.startswith(folder + "/")
                    if (prefix, target.url) not in watched and inside:
                        watched.add((prefix, target.url))
                        tg.start_soon(watch_target, target, prefix)
                with anyio.move_on_after(_POINTERS_CHECKED_EVERY):
                    await stop.wait()

        failed: list[LensletError] = []

        async def watch_root(tg: anyio.abc.TaskGroup) -> None:
            try:
                await watch_one(self.storage, "")
            except LensletError as exc:
                failed.append(exc)  # raised as itself below, not inside an exception group
            tg.cancel_scope.cancel()  # the gallery's watch ended: its targets' watches end too

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_root, tg)
            tg.start_soon(watch_targets, tg)
        if failed:
            raise failed[0]

    def _forget(self, folder: str) -> None:
        """Drop what is known of a folder that is gone (and everything below it)."""
        self._invalidate(folder, below=True)
        self.rollup.prune(folder, ())
        self.health.forget(folder)

    @property
    def folder_counts(self) -> tuple[int, int]:
        """Folder pages served from an existing manifest, and rebuilt for want of one."""
        return self._folders.served, self._folders.rebuilt

    def _invalidate(self, folder: str, *, below: bool = False) -> None:
        """Forget cached pages of ``folder`` (and, with ``below``, of every folder under it)."""
        self._folders.invalidate(folder, below=below)
