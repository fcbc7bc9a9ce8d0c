"""The facade: the one object adapters (HTTP, CLI, your own code) talk to.

async with Lenslet("/photos") as lens:
    report = await lens.index()
    page = await lens.folder("/trips/2025")
    item = await lens.item("/trips/2025/beach.jpg")
    item = await lens.update_item(item.path, {"tags": ["sea"]}, if_match=item.etag)

It is wiring and short delegations: what each operation does lives in its module —
:mod:`items` (sidecars, thumbnails, originals), :mod:`images` (upload, move, delete),
:mod:`work` (the kinds of background work, indexing), :mod:`watch`, :mod:`search`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from . import images as changes
from . import items, paths, work
from .errors import InvalidParameter
from .gallery import Gallery, Stats
from .health import Status, read_health
from .index_report import IndexProgress, IndexReport
from .items import Hit, Item, Original, Pending, Thumbnail
from .jobs import Engine, Job
from .manifest import ItemEntry, Manifest
from .rollup import RollupItem
from .settings import Settings
from .storage import Observer, Storage
from .watch import Wave, watch_gallery

__all__ = ["Lenslet"]


class Lenslet:
    """A gallery root and everything lenslet does with it.

    ``root`` is a local path, an fsspec URL (``memory://…``) or a ready :class:`Storage`;
    ``engine`` runs the background work (default: in this process). Use it as an async
    context manager; the operations need the event loop it was entered on.
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
        self._gallery = Gallery.open(
            root,
            settings or Settings(),
            observer=observer,
            storage_options=storage_options,
            engine=engine,
        )

    async def __aenter__(self) -> Lenslet:
        await self.check()  # fail now, clearly, when the root is not usable
        self._gallery.jobs.bind(self.url, self._gallery.settings)
        work.register(self._gallery.jobs, self._gallery)
        await self._gallery.jobs.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            await self._gallery.jobs.__aexit__(*exc_info)
        finally:
            self._gallery.folders.clear()
            self._gallery.kept_items.close()

    def __repr__(self) -> str:
        return f"Lenslet({self.url!r})"

    # -- the gallery -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The root, as a URL (a plain path for local disk)."""
        return self._gallery.storage.url

    @property
    def settings(self) -> Settings:
        return self._gallery.settings

    @property
    def local(self) -> bool:
        """Whether the root is a folder on local disk (its changes come as events)."""
        return self._gallery.storage.local_root is not None

    @property
    def readonly(self) -> bool:
        """Whether the root refuses every write (uploads, moves, deletes, sidecars)."""
        return self._gallery.storage.readonly

    async def check(self) -> None:
        """Fail now, with an error that says what to fix, when the root cannot be used (a
        missing folder; a bucket that is not there, refuses the credentials or cannot be
        reached). Entering the ``Lenslet`` checks too."""
        await self._gallery.storage.check_root()

    def stats(self) -> Stats:
        """What this process did so far (the job queue, thumbnails, folder pages), for
        metrics."""
        return self._gallery.stats()

    async def stop_work(self) -> None:
        """Stop the background work now: queued jobs are dropped and running ones cancelled
        (every file is written atomically, so none is left half-written). A server stopping
        calls this before leaving the context, which would otherwise finish the queue."""
        await self._gallery.jobs.close(finish=False)

    async def run_job(self, job: Job) -> Any:
        """Run one job of this gallery's background work through its engine and return what
        it gives (raising its error): a worker of a distributed engine runs the jobs sent to
        it so, each in the one open gallery of its root."""
        if job.root != self.url:
            raise InvalidParameter(f"a job for {job.root!r} sent to the gallery at {self.url!r}")
        handle = await self._gallery.jobs.submit(job)
        await handle.wait()
        return handle.result()

    # -- folders -----------------------------------------------------------------------------

    async def folder(self, path: str = "", page: int = 0, *, refresh: bool = False) -> Manifest:
        """One page of a folder's manifest, served from its ``_index.json`` (cached in memory
        for ``manifest_ttl`` seconds) and rebuilt only when it is missing, unreadable or
        ``refresh`` asks for it. Pages of a paged folder always come from one build."""
        return await self._gallery.folders.get(paths.normalize(path), page, refresh=refresh)

    async def whole_folder(self, path: str = "") -> Manifest:
        """The whole folder as one page (every page of one build joined, ``page_count`` 1):
        what clients that never page get."""
        return Manifest.join(await self._gallery.folders.pages(paths.normalize(path)))

    # -- images ------------------------------------------------------------------------------

    async def item(self, path: str) -> Item:
        """An image's sidecar, with its EXIF basics filled in from the image when missing."""
        return await items.item(self._gallery, paths.item_path(path))

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
        writer = writer or self._gallery.settings.writer
        return await items.update_item(
            self._gallery, image, body, if_match=if_match, updated_by=updated_by, writer=writer
        )

    async def thumbnail(self, path: str, *, wait: float = 0.8) -> Thumbnail | Pending:
        """An image's thumbnail. A missing one is made by a job at the highest priority and
        awaited up to ``wait`` seconds; :class:`Pending` when the queue is too busy for that."""
        return await items.thumbnail(self._gallery, paths.item_path(path), wait=wait)

    async def original(self, path: str) -> Original:
        """An image file as stored: its size, mtime and type (by content), for serving it
        whole or in ranges with :meth:`read_original`."""
        return await items.original(self._gallery, paths.item_path(path))

    async def link(self, path: str, *, seconds: int, thumbnail: bool = False) -> str | None:
        """A URL that serves an image (``thumbnail``: its thumbnail) for ``seconds`` without
        lenslet (an S3 presigned GET); ``None`` where there is none."""
        image = paths.item_path(path)
        return await items.link(self._gallery, image, seconds=seconds, thumbnail=thumbnail)

    async def read_original(self, path: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of an image file."""
        return await self._gallery.storage.read_range(paths.item_path(path), start, end)

    async def upload(self, dest: str, name: str, data: bytes, *, overwrite: bool = False) -> str:
        """Add an image (checked by content first) at ``dest``: a folder (made if missing),
        where it keeps ``name``, or the image's own path. Refuses to replace an image unless
        ``overwrite``. Returns its logical path."""
        return await changes.upload(self._gallery, dest, name, data, overwrite=overwrite)

    async def move(self, source: str, target: str, *, overwrite: bool = False) -> str:
        """Move an image with its sidecar and thumbnail. ``target`` is a new image path, or a
        folder to move it into — created when it does not exist yet (a trash folder); an
        existing image there is replaced only with ``overwrite`` (its sidecar and thumbnail go
        with it). The image's previous path is recorded in its sidecar as
        ``original_position`` (a sidecar is made for it when it had none), so a client can put
        it back."""
        return await changes.move(self._gallery, source, target, overwrite=overwrite)

    async def delete(self, images: Sequence[str]) -> list[str]:
        """Delete images with their sidecars and thumbnails; returns those deleted (images that
        are not there are skipped)."""
        return await changes.delete(self._gallery, images)

    async def entries(self, images: Sequence[str]) -> dict[str, ItemEntry]:
        """The manifest entries (size, w, h, hasThumb, …) of images, by path, from their
        folders' manifests. Images a manifest does not list are left out."""
        return await items.entries(self._gallery, images)

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
        return self._gallery.feed.subscribe()

    # -- search and health -------------------------------------------------------------------

    async def search(self, query: str, *, limit: int = 100, path: str = "") -> list[RollupItem]:
        """Images whose name, tags or notes contain ``query`` (any case), under the folder
        ``path``: exact tag matches first, then by path. Served from the rollup in memory,
        which is read again when another process has saved a newer one."""
        await self._gallery.load_state()
        ttl = self._gallery.settings.manifest_ttl
        found = await self._gallery.search.search(query, limit=limit, path=path, ttl=ttl)
        return list(found)  # the search keeps its answer for the next asker: this one is yours

    async def find(self, query: str, *, limit: int = 100, path: str = "") -> tuple[Hit, ...]:
        """:meth:`search`, each hit with its folder manifest's entry (size, w, h, hasThumb,
        …), shaped like a folder item for clients."""
        return await items.find(self._gallery, query, limit=limit, path=paths.normalize(path))

    async def indexed(self) -> bool:
        """Whether the root has been indexed (it has a ``_rollup.json``)."""
        await self._gallery.load_state()
        return self._gallery.rollup.stored

    async def stored_health(self) -> dict[str, Any] | None:
        """``_health.json`` as the last process that wrote it left it (``None``: none yet)."""
        return await read_health(self._gallery.storage)

    async def status(self, *, check_within: float = 1.2, read_within: float = 0.6) -> Status:
        """How the gallery is now, for a health check (see :class:`Status`): answered within
        about two seconds whatever the storage does (a load balancer must not time out)."""
        return await self._gallery.status(check_within=check_within, read_within=read_within)

    async def health_report(self) -> dict[str, Any]:
        """The gallery's health as ``_health.json`` has it, with the live job queue."""
        await self._gallery.load_state()
        return self._gallery.health.report(self._gallery.jobs.stats().to_json())

    # -- indexing and watching ---------------------------------------------------------------

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
        return await work.index(
            self._gallery,
            path,
            recursive=recursive,
            save=True,
            on_progress=on_progress,
            thumbnails=thumbnails,
        )

    async def watch(
        self,
        path: str = "",
        *,
        stop: anyio.Event | None = None,
        on_wave: Callable[[Wave], Awaitable[None] | None] | None = None,
        debounce_ms: int = 1600,
        ready: anyio.Event | None = None,
    ) -> None:
        """Keep ``path`` (and below) indexed until ``stop`` is set: new, changed and deleted
        images and sidecars reach the manifests, thumbnails, rollup and health within seconds.
        Each wave of changes runs as index jobs (one per folder); ``on_wave`` is told of each
        wave once its folders are done. A local root reports changes as they happen; any other
        (S3) is listed whole every ``watch_interval`` seconds and compared with the last
        listing. ``ready`` is set once the root is watched: a change made after it is seen."""
        await watch_gallery(
            self._gallery, path, stop=stop, on_wave=on_wave, debounce_ms=debounce_ms, ready=ready
        )
