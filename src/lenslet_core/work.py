"""lenslet's own kinds of background work and what each does, highest priority first.

- ``thumbnail``: make one image's thumbnail and keep it (a request waits for it; one worker
  of its own); then the folder's manifest catches up (``index``);
- ``index``: one folder's manifest, with its missing thumbnails; then ``rollup`` and
  ``health``;
- ``folder``: one folder of an index run that walked the tree elsewhere (a run on a cluster):
  its manifest and missing thumbnails, handed back to the run, which keeps rollup and health;
- ``rollup``: write this process's ``_rollup.json`` changes (coalesced to one write a second);
- ``health``: write ``_health.json``.

``index``, ``rollup`` and ``health`` keep the state of the process that asks for them (its
rollup and health in memory), so they run there (``Kind.local``); on a cluster, an ``index``
job sends its folder's work as a ``folder`` job and keeps the books itself. ``thumbnail`` and
``folder`` are plain functions of the root and may run on any worker.

A kind is a value an engine schedules by (:class:`~lenslet_core.jobs.Kind`); :func:`register`
gives an engine each kind with its handler over one open :class:`~lenslet_core.gallery.Gallery`.
Adding a kind is a value and a handler here.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence

from . import paths
from .errors import LensletError, NotFound, PermissionDenied, ReadOnly
from .folder_job import index_folder
from .gallery import Gallery
from .health import folder_health
from .index_report import FolderOutcome, IndexProgress, IndexReport
from .indexing import index_tree
from .jobs import Engine, Job, Kind
from .manifest import ItemEntry, Skipped
from .rollup import folder_signature
from .sidecar import Sidecar
from .storage import Entry

__all__ = [
    "FOLDER",
    "HEALTH",
    "INDEX",
    "KINDS",
    "ROLLUP",
    "THUMBNAIL",
    "changed",
    "index",
    "register",
]

log = logging.getLogger("lenslet.index")

#: Seconds between two progress lines of a long index run in the log.
PROGRESS_EVERY = 5.0

THUMBNAIL = Kind("thumbnail", priority=0, joins_running=True, dedicated_workers=1)
INDEX = Kind("index", priority=1, local=True)
FOLDER = Kind("folder", priority=2)
ROLLUP = Kind("rollup", priority=3, local=True)
HEALTH = Kind("health", priority=4, local=True)
KINDS = (THUMBNAIL, INDEX, FOLDER, ROLLUP, HEALTH)


def register(engine: Engine, gallery: Gallery) -> None:
    """Give ``engine`` lenslet's kinds, each with its handler over ``gallery``."""

    async def thumbnail(job: Job) -> bytes:
        return await make_thumbnail(gallery, job.path)

    async def index_folder(job: Job) -> IndexReport | None:
        return await _index_job(gallery, job.path)

    async def folder(job: Job) -> FolderOutcome:
        return await _folder_job(gallery, job.path)

    async def rollup(job: Job) -> bool:
        return await gallery.search.save_soon()

    async def health(job: Job) -> None:
        await gallery.save_health()

    engine.register(THUMBNAIL, thumbnail)
    engine.register(INDEX, index_folder)
    engine.register(FOLDER, folder)
    engine.register(ROLLUP, rollup)
    engine.register(HEALTH, health)


async def make_thumbnail(gallery: Gallery, image: str) -> bytes:
    """Make, keep and return one image's thumbnail (kept where the thumbnail store can;
    returned even when it cannot be kept)."""
    data = await gallery.imaging.thumbnail(await gallery.read_image(image))
    thumbs = gallery.thumbs
    if not thumbs.keeps_all:
        return data
    try:
        await thumbs.write(image, data)
    except (ReadOnly, PermissionDenied):
        return data  # a read-only folder and no thumb_cache: served, not kept
    try:
        await gallery.image_file(image)
    except NotFound:
        # Moved or deleted while it was made: its thumbnail must not stay behind.
        with contextlib.suppress(NotFound):
            await thumbs.delete(image)
        raise
    # The folder's manifest says hasThumb; bring it up to date when the queue has time.
    await gallery.submit_quietly(INDEX, paths.parent(image))
    return data


async def _index_job(gallery: Gallery, folder: str) -> IndexReport | None:
    began = time.monotonic()
    try:
        report = await index(gallery, folder, recursive=False, save=False)
    except NotFound:
        gallery.forget(folder)  # the folder is gone: so is what was known of it
        return None
    if gallery.sidecars_written.get(folder, math.inf) < began:
        del gallery.sidecars_written[folder]
    now = time.time()
    for arrived in report.arrivals:
        gallery.arrival_lag.observe(now - arrived)
    if not gallery.storage.readonly:
        await gallery.submit_quietly(ROLLUP)
        await gallery.submit_quietly(HEALTH)
    return report


async def _folder_job(gallery: Gallery, folder: str) -> FolderOutcome:
    async with gallery.rebuilds(folder):
        try:
            outcome = await index_folder(
                gallery.storage, gallery.imaging, gallery.settings, folder, thumbs=gallery.thumbs
            )
        except NotFound:  # not a failure of the job: the run that sent it decides
            report = IndexReport(root=gallery.storage.url, path=folder)
            return FolderOutcome(report, [], [], time.time(), "", [], indexed=False, gone=True)
    gallery.folders.invalidate(folder)
    return outcome


@contextlib.asynccontextmanager
async def _logged_failure(where: str) -> AsyncIterator[None]:
    """An index run that fails says so in the log (a folder gone is not news: at debug)."""
    try:
        yield
    except NotFound as exc:
        log.debug("indexing %s: %s", where, exc.message)
        raise
    except LensletError as exc:
        log.warning("indexing %s failed: %s [%s]", where, exc.message, exc.code)
        raise


async def changed(gallery: Gallery, folders: Iterable[str]) -> None:
    """Folders whose images changed: their manifests rebuilt now (no image but the new ones
    is read), so the next listing shows the change; thumbnails, rollup and health follow in
    the background."""
    folders = set(folders)
    for folder in sorted(folders):
        with contextlib.suppress(NotFound):
            await gallery.folders.get(folder, refresh=True)
        await gallery.submit_quietly(INDEX, folder)
    gallery.feed.publish(folders)


async def index(
    gallery: Gallery,
    path: str,
    *,
    recursive: bool,
    save: bool,
    on_progress: Callable[[IndexProgress], None] | None = None,
    thumbnails: bool | None = None,
) -> IndexReport:
    """Build or refresh the manifests of ``path`` (and, ``recursive``, the folders below it),
    keeping the rollup and health in step; ``save`` also writes them and records the run as
    health's last index run (a run asked for, not a job's folder refresh)."""
    folder = paths.normalize(path)
    settings = gallery.settings
    make = settings.thumbnails if thumbnails is None else thumbnails
    # A run over a tree that changed nothing does not read the rollup, the largest file: what
    # it holds, folder by folder, is known from _health.json. A folder that changed loads it.
    known = await gallery.known_rollup() if save and recursive else None
    if known is None:
        await gallery.load_state()
    seen: list[str] = []
    # A run asked for is told at info (start, progress every few seconds, end); a folder's
    # refresh by a job, which happens all the time, at debug.
    level = logging.INFO if save else logging.DEBUG
    where = f"{gallery.storage.url} {folder or '/'}"
    log.log(level, "indexing %s", where)
    told = time.monotonic()

    def progress(now: IndexProgress) -> None:
        nonlocal told
        if on_progress is not None:
            on_progress(now)
        if time.monotonic() - told >= PROGRESS_EVERY:
            told = time.monotonic()
            done = (now.folders_done, now.folders_total, now.images_done, now.images_total)
            log.log(level, "indexing %s: %d of %d folders, %d of %d images", where, *done)

    async def on_folder(
        done: str,
        entries: Sequence[Entry],
        items: Sequence[ItemEntry],
        listed_at: float,
        manifest: str,
        skipped: Sequence[Skipped],
        sidecars: Mapping[str, Sidecar],
    ) -> None:
        seen.append(done)
        unchanged = (
            known is not None
            and not gallery.rollup.loaded
            and bool(manifest)
            and known.get(done) == folder_signature(manifest, entries)
        )
        if not unchanged:  # the rollup has this folder otherwise, as it is
            await gallery.load_state()  # a no-op unless this run began without reading it
            await gallery.rollup.update_folder(
                done, entries, items, listed_at, manifest, sidecars=sidecars
            )
        if not gallery.health.counted(done, manifest):
            counts = folder_health(done, entries, items, manifest, skipped)
            gallery.health.set_folder(done, counts)

    async def delegate(folder: str) -> FolderOutcome:
        handle = await gallery.jobs.submit(gallery.job(FOLDER, folder))
        await handle.wait()
        outcome: FolderOutcome = handle.result()
        return outcome

    # On a cluster, each folder of the run is a job (with the thumbnails the settings ask
    # for); rollup and health are kept here, as for a run done here.
    sends = gallery.jobs.remote and make == settings.thumbnails
    started = time.time()
    # One build of a folder's manifest at a time (a watch's job, a rebuild for a reader):
    # the later build has the later listing, and it is the one that lands.
    async with (
        gallery.rebuilds(folder) if not recursive else contextlib.nullcontext(),
        _logged_failure(where),
    ):
        report = await index_tree(
            gallery.storage,
            gallery.imaging,
            settings,
            folder,
            recursive=recursive,
            on_progress=progress,
            thumbs=gallery.thumbs,
            make_thumbs=make,
            on_folder=on_folder,
            delegate=delegate if sends else None,
        )
    log.log(level, "indexed %s: %d images in %d folders (%d read, %d unchanged, %d skipped) in "
            "%.1f s", where, report.items, report.folders, report.analyzed, report.reused,
            len(report.skipped), report.seconds)  # fmt: skip
    gallery.folders.invalidate(folder, below=recursive)
    # Folders the run could not read are kept as they were, with what is below them.
    unread = [("" if s.path == "/" else s.path) for s in report.skipped if s.error]
    if recursive and known is not None and not gallery.rollup.loaded:
        found = set(seen)
        for gone in known.keys() - found:
            if paths.within(gone, folder) and not any(paths.within(gone, u) for u in unread):
                await gallery.load_state()  # a folder to forget
                break
    if recursive and gallery.rollup.loaded:
        gallery.rollup.prune(folder, seen, keep_below=unread)
    # A run that found nothing to do says nothing about speed: the last real run's figures stay.
    worked = report.analyzed or report.manifests_written or gallery.health.last_index is None
    summary = report.summary() if save and worked else None
    gallery.health.finish_run(folder, recursive, seen, report.skipped, summary, keep_below=unread)
    if save and not gallery.storage.readonly:
        # A run over the whole tree has read every sidecar changed since the old basis.
        basis = started if recursive and not folder else None
        try:
            if gallery.rollup.loaded:  # else the run changed nothing in it
                await gallery.search.save(basis)
            await gallery.save_health()
        except LensletError as exc:
            name = paths.ROLLUP_NAME if gallery.rollup.dirty else paths.HEALTH_NAME
            report.skipped.append(Skipped(name, f"not written: {exc.message}", exc.code))
    return report
