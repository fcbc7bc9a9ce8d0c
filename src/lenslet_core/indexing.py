"""An index run: walk a tree, build every folder's manifest, report what was skipped and why.

The walk lists each folder once. Each folder's manifest is then built from that listing (see
:mod:`manifest`), with the sub-folders' listings giving their kinds; images are read at most once
and only when new or changed, so a second run over an unchanged tree reads no image and writes no
manifest.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

import anyio

from . import paths
from .build import (
    PERMANENT_CODES,
    THUMB_BATCH,
    build_folder,
    settled,
    unsupported,
)
from .codec import format_time, utcnow
from .companions import finish_moves, remove_stale_temp_files
from .errors import LensletError, MalformedDocument, NotFound, StorageError
from .heads import StoredItems, manifest_heads
from .imaging import Imaging
from .index_report import FolderOutcome, IndexProgress, IndexReport, arrivals
from .manifest import (
    ItemEntry,
    Manifest,
    Skipped,
    manifest_names,
    paginate,
    parse_manifest,
    same_content,
    star_of,
    write_manifest,
)
from .settings import Settings
from .sidecar import Sidecar
from .signature import listing_signature
from .storage import Entry, Store
from .thumbnails import ThumbnailStore
from .walk import ListedFolder, walk

__all__ = ["Delegate", "FolderCallback", "IndexProgress", "IndexReport", "index_tree"]

#: Told a folder's path, its listing, its items, when it was listed (epoch seconds), the
#: key of its manifest's build (its listing signature and build id, see :func:`_build_key`;
#: the same key, the same items), the files it skipped, and the sidecars it read after the
#: listing and left as they were (decoded, by image name), once an index run is done with it.
FolderCallback = Callable[
    [str, Sequence[Entry], Sequence[ItemEntry], float, str, Sequence[Skipped],
     Mapping[str, Sidecar]],
    Awaitable[None],
]  # fmt: skip

#: Indexes one folder somewhere else (a job on a cluster) and gives back what it did.
Delegate = Callable[[str], Awaitable[FolderOutcome]]

#: Folders sent to a delegate at once: enough to keep a cluster's workers busy (its scheduler
#: queues them by priority), few enough that their results are not held all at once.
DELEGATED_FOLDERS = 512

#: Folders processed at once; images in flight are bounded separately.
FOLDER_CONCURRENCY = 8


async def index_tree(
    storage: Store,
    imaging: Imaging,
    settings: Settings,
    path: str = "",
    *,
    recursive: bool = True,
    on_progress: Callable[[IndexProgress], None] | None = None,
    keep_pages: bool = False,
    fallback: Mapping[str, list[Manifest]] | None = None,
    thumbs: ThumbnailStore | None = None,
    make_thumbs: bool = True,
    on_folder: FolderCallback | None = None,
    delegate: Delegate | None = None,
) -> IndexReport:
    """Index ``path`` (and, when ``recursive``, every folder below it, through pointer folders
    into their targets; a pointer that cannot be followed is skipped and reported).
    ``keep_pages`` puts every folder's manifest pages in ``report.pages``; ``fallback`` gives
    earlier pages to reuse entries from where storage has no manifest (a read-only root).
    With ``thumbs``, missing thumbnails are made and kept there (with ``make_thumbs`` off, the
    thumbnails it already holds still count for ``hasThumb``). ``on_folder`` is told each
    folder's listing and current items once the folder is done (rollup and health use it)."""
    report = IndexReport(
        root=paths.printable(storage.url), path=path, started_at=format_time(utcnow())
    )
    if thumbs is not None and make_thumbs and not thumbs.keeps_all:
        report.thumbnails = "off: the root is read-only and no thumb_cache is set"
        make_thumbs = False
    elif thumbs is not None and make_thumbs:
        report.thumbnails = "on" if thumbs.cache is None else "on (with a thumbnail cache)"
    started = time.perf_counter()
    progress = IndexProgress(current=path)

    def tell() -> None:
        if on_progress is not None:
            on_progress(progress)

    # A delegate reads each folder's manifest where it indexes it: the walk here only lists.
    contents = delegate is None
    # Batches of images in flight across all folders, each holding its images' bytes. On local
    # disk a batch is read by the thread that works on it: enough to keep every core busy.
    # Elsewhere a batch waits on the network first: io_concurrency reads going at once (counted
    # in the smallest batches, those that make thumbnails: a first index) while as many
    # batches as there are cores are worked on, so no read waits for a core to finish.
    cores = settings.cpu_concurrency
    reading = storage.io_concurrency // THUMB_BATCH
    slots = anyio.Semaphore(max(cores, reading) if storage.local_root else reading + cores)
    folder_slots = anyio.Semaphore(FOLDER_CONCURRENCY if delegate is None else DELEGATED_FOLDERS)

    async def sent(folder: ListedFolder, delegate: Delegate) -> None:
        async with folder_slots:
            try:
                try:
                    outcome = await delegate(folder.path)
                    if outcome.gone:
                        raise NotFound(f"{folder.path!r} is gone", path=folder.path)
                except NotFound:
                    outcome = None  # gone since the walk (if it is gone here too)
                    await storage.list(folder.path)
                    raise StorageError(
                        f"a worker did not find {folder.path or '/'}, which is here: it does "
                        "not see the same root"
                    ) from None
            except NotFound:
                pass  # gone here too: the next run forgets it
            except LensletError as exc:
                outcome = None
                report.skipped.append(Skipped(folder.path or "/", exc.message, exc.code, error=exc))
            if outcome is not None and outcome.indexed and folder.images and not outcome.entries:
                # Listed with images here, empty there: the worker does not see this root (an
                # empty mount point). Kept as it was, not forgotten.
                unseen = StorageError(
                    f"a worker found {folder.path or '/'} empty where this run listed "
                    f"{folder.images} images: it does not see the same root"
                )
                outcome = None
                where = folder.path or "/"
                report.skipped.append(Skipped(where, unseen.message, unseen.code, error=unseen))
            if outcome is not None:
                report.add(outcome.report)
                if on_folder is not None and outcome.indexed:
                    await on_folder(
                        folder.path, outcome.entries, outcome.items, outcome.listed_at,
                        outcome.manifest, outcome.skipped, {},
                    )  # fmt: skip
            progress.folders_done += 1
            progress.images_done += folder.images
            progress.current = folder.path
            tell()

    async def one(folder: ListedFolder) -> None:
        async with folder_slots:
            progress.current = folder.path
            tell()
            known = (fallback or {}).get(folder.path, [])
            done = await _index_folder(
                storage,
                imaging,
                settings,
                folder,
                known,
                report,
                progress,
                slots,
                tell,
                thumbs,
                make_thumbs,
                whole=keep_pages,
            )
            pages, items, sidecars = done if done is not None else (None, (), {})
            if pages is not None:
                for kind, count in unsupported(folder.entries, pages[0].skipped).items():
                    report.unsupported[kind] = report.unsupported.get(kind, 0) + count
            if on_folder is not None and pages is not None:
                # The listing as it is now (sidecars this run refreshed have new stamps).
                await on_folder(
                    folder.path, folder.entries, items, folder.listed_at, _build_key(pages[0]),
                    pages[0].skipped, sidecars,
                )  # fmt: skip
            if keep_pages and pages is not None:
                report.pages[folder.path] = pages
            progress.folders_done += 1
            tell()

    unlisted: LensletError | None = None  # the start's, raised as it is (not in a group)
    async with anyio.create_task_group() as tg:

        def ready(folder: ListedFolder) -> None:
            # Built as soon as the walk has listed it and its sub-folders, while it goes on.
            if delegate is None:
                tg.start_soon(one, folder)
            else:
                tg.start_soon(sent, folder, delegate)

        try:
            await walk(storage, path, recursive, report, progress, tell, ready, contents=contents)
        except LensletError as exc:
            unlisted = exc
    if unlisted is not None:
        raise unlisted
    report.skipped.sort(key=lambda s: s.path)
    report.seconds = time.perf_counter() - started
    report.finished_at = format_time(utcnow())
    return report


async def _index_folder(
    storage: Store,
    imaging: Imaging,
    settings: Settings,
    folder: ListedFolder,
    known: list[Manifest],
    report: IndexReport,
    progress: IndexProgress,
    slots: anyio.Semaphore,
    tell: Callable[[], None],
    thumbs: ThumbnailStore | None,
    make_thumbs: bool,
    *,
    whole: bool,
) -> tuple[list[Manifest], Sequence[ItemEntry], Mapping[str, Sidecar]] | None:
    """Bring one folder's manifest up to date; returns its current pages and items, and the
    sidecars read that this run did not rewrite (``None`` when the folder was skipped). Pages
    of a manifest reused as it is come without their items (decoded when first asked for)
    unless ``whole``."""
    report.temp_files_removed += await remove_stale_temp_files(storage, folder.path, folder.entries)
    finished = await finish_moves(storage, folder.path, folder.entries)
    if finished:
        report.moves_finished += finished
        with contextlib.suppress(LensletError):  # else the next run sees what they moved
            folder.relisted(await storage.list(folder.path))  # as the finished moves left it
    contents, folder.manifests = folder.manifests, {}
    cached = await thumbs.cached(folder.path) if thumbs is not None else {}

    def signature(made: Iterable[str] = ()) -> str:
        return listing_signature(
            folder.entries,
            folder.child_kinds,
            max_file_bytes=settings.max_file_bytes,
            max_pixels=settings.max_pixels,
            page_size=settings.page_size,
            thumbnails=[*cached, *made],
            rows=folder.rows,
        )

    making_thumbs = thumbs is not None and make_thumbs

    def reused(pages: list[Manifest], *, all_thumbs: bool | None = None) -> bool:
        """Whether nothing the manifest was built from has changed and it left nothing to
        retry (then it is counted as reused)."""
        if not pages or pages[0].listing != signature():
            return False
        if not settled(pages, making_thumbs=making_thumbs, all_thumbs=all_thumbs):
            return False
        rejected = pages[0].skipped
        report.folders += 1
        report.items += pages[0].item_count
        report.reused += pages[0].item_count + sum(1 for r in rejected if _was_read(r))
        report.skipped.extend(
            Skipped(paths.join(folder.path, r.name), r.reason, r.code) for r in rejected
        )
        progress.images_done += folder.images
        return True

    heads = None if whole else manifest_heads(folder.path, contents)
    if heads is not None and reused(heads.pages, all_thumbs=heads.all_thumbs):
        return heads.pages, StoredItems(folder.path, contents), {}
    try:
        old_pages = parse_manifest(folder.path, contents)
    except MalformedDocument:
        old_pages = []  # derived data: rebuilt from the images, nothing is lost
    except LensletError as exc:
        report.skipped.append(Skipped(folder.path or "/", exc.message, exc.code, error=exc))
        return None
    reusable = old_pages or known
    # Pages kept in memory stand in for a manifest only where none can be written: where one
    # can, a missing or broken manifest is written again.
    current = old_pages or (known if not storage.writable(folder.path) else [])
    if reused(current):
        return current, [i for p in current for i in p.items], {}
    if any(
        e.mtime == 0.0 and e.size == 0 and paths.is_thumbnail_name(e.name) for e in folder.entries
    ):
        # Listed without the thumbnails' stamps, and to be built: listed again with them
        # (a thumbnail older than its image is made again).
        listed_at = time.time()
        try:
            folder.relisted(await storage.list(folder.path), listed_at)
        except LensletError as exc:
            report.skipped.append(Skipped(folder.path or "/", exc.message, exc.code, error=exc))
            return None
    previous: dict[str, ItemEntry] = {i.name: i for p in reusable for i in p.items}
    previous_skipped = {s.name: s for s in reusable[0].skipped} if reusable else {}
    seen = 0

    def advance() -> None:
        nonlocal seen
        seen += 1
        progress.images_done += 1
        progress.current = folder.path  # ... and the folder whose images are being read
        tell()

    build = await build_folder(
        storage,
        imaging,
        folder.path,
        folder.entries,
        child_kinds=folder.child_kinds,
        previous=previous,
        previous_skipped=previous_skipped,
        max_file_bytes=settings.max_file_bytes,
        max_pixels=settings.max_pixels,
        slots=slots,
        on_item=advance,
        thumbs=thumbs if make_thumbs else None,
        cached_thumbs=cached,
    )
    progress.images_done += folder.images - seen
    rewritten = build.rewritten
    report.sidecars_refreshed += len(rewritten)
    ours: dict[str, Sidecar] = {}  # sidecars as this run wrote them, and still are
    if build.thumbnails_kept or rewritten:
        # One more listing (not a request per file): the new stamps of the sidecars this run
        # rewrote, so the rollup and the next run see what lenslet wrote, not a change to
        # read again; and the images still there, so that one moved or deleted while its
        # thumbnail was made leaves no thumbnail behind.
        try:
            now = {e.name: e for e in await storage.list(folder.path)}
        except LensletError:
            now = None  # the next run reads those sidecars once more; nothing is lost
        if now is not None and thumbs is not None and build.thumbnails_kept:
            gone = await thumbs.drop_orphans(folder.path, build.thumbnails_kept, set(now))
            if gone:
                build.thumbnails_kept -= gone
                build.items = [i for i in build.items if paths.thumbnail_name(i.name) not in gone]
        refreshed = await _restamped(storage, folder.path, rewritten, now or {})
        if refreshed:
            folder.relisted(
                [refreshed[e.name][0] if e.name in refreshed else e for e in folder.entries]
            )
            # Each item's star as written (a retried write wrote a star set meanwhile), at the
            # new stamp; and what was written, for the rollup.
            for index, item in enumerate(build.items):
                restamped = refreshed.get(paths.sidecar_name(item.name))
                if restamped is not None:
                    entry, written = restamped
                    stamp, star = (entry.size, entry.mtime), star_of(written.extra)
                    build.items[index] = item._replace(star=star, metaStamp=stamp)
                    ours[item.name] = written
    # Read after the listing, as the rollup would read them; those rewritten since have a
    # stamp from after the rewrite, which the bytes read before it cannot vouch for (what was
    # written can, where it is still what is there).
    sidecars = {n: s for n, s in build.sidecars.items() if n not in rewritten} | ours
    report.arrivals.extend(arrivals(old_pages, build.items))
    report.folders += 1
    report.items += len(build.items)
    report.analyzed += len(build.analyzed)
    report.reused += build.reused
    report.thumbnails_made += build.thumbnails_made
    report.skipped.extend(build.skipped)
    # A sidecar that could not be read (storage trouble) left its image's star unknown: the
    # manifest then gets no signature, so the next run builds the folder again and reads it.
    files = {e.name for e in folder.entries if e.is_file}
    unread = any(
        i.hasMeta and i.metaStamp is None and paths.sidecar_name(i.name) in files
        for i in build.items
    )
    listing = "" if unread else signature(build.thumbnails_kept)
    pages = paginate(
        folder.path,
        build.items,
        build.dirs,
        settings.page_size,
        build.rejected,
        listing,
        thumbs_checked=making_thumbs,
    )
    if (
        old_pages
        and same_content(old_pages, pages)
        and old_pages[0].listing == listing
        and (old_pages[0].thumbs_checked or not making_thumbs)
    ):
        return old_pages, build.items, sidecars
    if not storage.writable(folder.path):
        return pages, build.items, sidecars  # served from memory; a read-only root is never written
    try:
        await write_manifest(storage, folder.path, pages, manifest_names(folder.entries))
    except LensletError as exc:
        report.skipped.append(
            Skipped(folder.path or "/", f"manifest not written: {exc.message}", exc.code)
        )
        return pages, build.items, sidecars
    report.manifests_written += 1
    return pages, build.items, sidecars


async def _restamped(
    storage: Store,
    folder: str,
    rewritten: Mapping[str, tuple[bytes, str]],
    now: Mapping[str, Entry],
) -> dict[str, tuple[Entry, Sidecar]]:
    """The entries, in the listing taken after a build (``now``), of the sidecars it rewrote
    that still hold what it wrote, and what it wrote, decoded; by sidecar name. The listing's
    ETag says so; where it gives none (local disk), a read after it. A sidecar written again
    since (a tag typed meanwhile) keeps its old stamp: read once more, by the rollup now and by
    the next run for its star."""
    refreshed: dict[str, tuple[Entry, Sidecar]] = {}

    async def vouch(name: str, data: bytes, etag: str, entry: Entry) -> None:
        sidecar = paths.sidecar_name(paths.join(folder, name))
        version = entry.etag
        if version is None:
            try:
                version = (await storage.read_versioned(sidecar))[1]
            except LensletError:
                return  # read again later, as any sidecar whose stamp is not known
        if version == etag:
            refreshed[entry.name] = entry, Sidecar.decode(data, what=f"sidecar {sidecar!r}")

    async with anyio.create_task_group() as tg:
        for name, (data, etag) in rewritten.items():
            entry = now.get(paths.sidecar_name(name))
            if entry is not None:
                tg.start_soon(vouch, name, data, etag, entry)
    return refreshed


def _build_key(page: Manifest) -> str:
    """What rollup and health keep to know a folder they have counted: the manifest's listing
    signature and build id (a folder rebuilt from the same listing, after a read error
    passed, has other items and another build)."""
    return f"{page.listing}:{page.build}" if page.listing else ""


def _was_read(rejected: Skipped) -> bool:
    """Whether a verdict came from reading the file (not from its listing entry alone)."""
    if rejected.code == "image_too_large":
        return rejected.w * rejected.h > 0  # the pixels, not the bytes
    return rejected.code in PERMANENT_CODES and rejected.size > 0  # not an empty file
