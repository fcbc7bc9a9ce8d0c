"""Building a folder's manifest from ONE listing of the folder: the listing gives every
image's size and mtime and, from the names beside it, whether it has a thumbnail and a sidecar.
Entries whose size and mtime match the previous manifest are reused without reading the image;
only new or changed images are read (once) and analyzed, and the sidecars beside them read and
refreshed meanwhile (:mod:`folder_sidecars`). A digest of the listing (:mod:`signature`) tells
an index run when a manifest can be reused whole.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import MappingProxyType

import anyio
from anyio.abc import TaskGroup

from . import paths
from .backend import entry_kind, entry_name
from .errors import ImageTooLarge, LensletError, NotFound, UnsupportedImage
from .folder_sidecars import FolderSidecars
from .imaging import Analysis, Imaging, any_unsupported, unsupported_type
from .manifest import DirEntry, DirKind, ItemEntry, Manifest, Skipped
from .sidecar import Exif, Sidecar
from .storage import Consumers, Entry, Store
from .thumbnails import ThumbnailStore, thumbnails_in

__all__ = [
    "FolderBuild",
    "build_folder",
    "folder_kind",
    "settled",
    "unsupported",
]

#: Images read and analyzed per worker-thread hop: enough to keep a core busy between two
#: round trips to the event loop, few enough to spread a folder over every core.
READ_BATCH = 8
#: The same when thumbnails are made: each image is then milliseconds of work, so the hop
#: costs little and small batches keep the cores evenly loaded to the end.
THUMB_BATCH = 2
#: An image file this large is a batch of its own: its thumbnail is tens of milliseconds of
#: work, against a hop's tenth of one, and a pair of them would leave a core idle at the end.
ALONE_BYTES = 1 << 20
#: Reasons that stay true while a file's size and mtime do not change.
#: (Not ``image_too_large``: that verdict depends on settings that may change between runs.)
PERMANENT_CODES = frozenset({"unsupported_image", "corrupt_image"})
#: Verdicts an unchanged listing (and the same size limits) always gives again: a manifest
#: whose skipped files all have one of these needs no retry while its listing is the same.
SETTLED_CODES = PERMANENT_CODES | {"image_too_large", "unusable_entry"}


@dataclasses.dataclass
class FolderBuild:
    """The outcome of building one folder's manifest."""

    path: str
    items: list[ItemEntry]
    dirs: list[DirEntry]
    analyzed: dict[str, Analysis]
    reused: int
    rejected: list[Skipped]
    #: What went wrong besides unusable images (thumbnails that could not be kept, sidecars
    #: that could not be refreshed).
    problems: list[Skipped] = dataclasses.field(default_factory=list)
    thumbnails_made: int = 0
    #: The names of the thumbnails made and kept.
    thumbnails_kept: set[str] = dataclasses.field(default_factory=set)
    #: The sidecars read for their stars, by image name, as decoded (read after the listing,
    #: as the rollup would read them).
    sidecars: dict[str, Sidecar] = dataclasses.field(default_factory=dict)
    #: The sidecars whose EXIF basics and hash the build brought up to date, by image name:
    #: the bytes written and their ETag.
    rewritten: dict[str, tuple[bytes, str]] = dataclasses.field(default_factory=dict)

    @property
    def skipped(self) -> list[Skipped]:
        rejected = [Skipped(paths.join(self.path, r.name), r.reason, r.code) for r in self.rejected]
        return rejected + self.problems


def unsupported(entries: Sequence[Entry], skipped: Iterable[Skipped]) -> dict[str, int]:
    """The image files of a folder lenslet cannot show, counted by type: by extension where
    the name says (``IMG_0001.HEIC``), by content where a name that looks supported hides
    another format (a HEIC named ``.jpg``)."""
    found: dict[str, int] = {}
    for entry in entries if any_unsupported(map(entry_name, entries)) else ():
        kind = unsupported_type(entry.name) if entry.kind == "file" else None
        if kind is not None and not paths.is_hidden(entry.name):
            found[kind] = found.get(kind, 0) + 1
    for problem in skipped:
        if problem.code == "unsupported_image" and problem.type:
            found[problem.type] = found.get(problem.type, 0) + 1
    return found


def folder_kind(entries: Sequence[Entry]) -> DirKind:
    """``leaf-pointer`` for a pointer folder, ``branch`` when it has sub-folders, else
    ``leaf-real``."""
    # Asked of every folder's listing: the common answers are found by C-level scans.
    if paths.POINTER_NAME in map(entry_name, entries):
        return "leaf-pointer"
    if "dir" in map(entry_kind, entries) and any(
        e.is_folder and not paths.is_hidden(e.name) for e in entries
    ):
        return "branch"
    return "leaf-real"


def settled(
    pages: Sequence[Manifest], *, making_thumbs: bool, all_thumbs: bool | None = None
) -> bool:
    """Whether a manifest built from a listing is all that listing can give: no file was
    skipped for a reason worth another try (a read error, a file that vanished) and, when
    thumbnails are being made, its build made them too (a build that did not took any
    thumbnail there was, even one older than its image) and every image has one
    (``all_thumbs``: said by the caller, for pages without their items)."""
    if not pages:
        return False
    if any(s.code not in SETTLED_CODES for s in pages[0].skipped):
        return False
    if not making_thumbs:
        return True
    if all_thumbs is None:
        all_thumbs = all(i.hasThumb for p in pages for i in p.items)
    return pages[0].thumbs_checked and all_thumbs


async def build_folder(
    storage: Store,
    imaging: Imaging,
    folder: str,
    entries: Sequence[Entry],
    *,
    child_kinds: Mapping[str, DirKind],
    previous: Mapping[str, ItemEntry],
    previous_skipped: Mapping[str, Skipped] = MappingProxyType({}),
    max_file_bytes: int,
    max_pixels: int,
    slots: anyio.Semaphore,
    on_item: Callable[[], Awaitable[None] | None] | None = None,
    thumbs: ThumbnailStore | None = None,
    cached_thumbs: Mapping[str, float] = MappingProxyType({}),
) -> FolderBuild:
    """Build a folder's entries from its listing. Images not reusable from ``previous`` are read
    once each, in batches of ``READ_BATCH`` (at most ``slots`` batches in flight across all
    folders sharing it), and analyzed; where the folder is writable, the sidecars of the images
    analyzed get their EXIF basics and hash. With ``thumbs``, images whose thumbnail is missing
    or older than the image are read too, and their thumbnails made in that same read and kept
    (``cached_thumbs``: those the thumbnail cache already holds for this folder)."""
    names = {e.name for e in entries if e.kind != "dir"} | set(cached_thumbs)
    thumb_times = {**cached_thumbs, **thumbnails_in(entries)}
    build = FolderBuild(folder, [], [], {}, 0, [])
    to_read: list[Entry] = []
    sidecars = FolderSidecars(storage, folder, entries, previous)
    refresh = storage.writable(folder)

    def thumb_due(entry: Entry) -> bool:
        """A thumbnail is missing, older than its image, or of an image that changed since
        the last manifest (replaced by a file with an older mtime, as ``mv`` does)."""
        if thumbs is None:
            return False
        made = thumb_times.get(paths.thumbnail_name(entry.name))
        known = previous.get(entry.name)
        replaced = known is not None and not _unchanged(known, entry)
        return made is None or made < entry.mtime or replaced

    def skip(entry: Entry, reason: str, code: str, w: int = 0, h: int = 0, kind: str = "") -> None:
        rejected = Skipped(entry.name, reason, code, entry.size, entry.mtime, w, h, kind)
        build.rejected.append(rejected)

    for entry in entries:
        if paths.is_hidden(entry.name) or paths.is_flat_file(entry.name):
            continue
        if entry.kind == "dir":
            if entry.problem is None:  # unusable folders are reported by the walk
                build.dirs.append(DirEntry(entry.name, child_kinds.get(entry.name, "leaf-real")))
            continue
        if not paths.is_image_name(entry.name):
            continue
        if entry.problem is not None:
            skip(entry, entry.problem, "unusable_entry")
        elif entry.kind != "file":
            skip(entry, "not a regular file", "unusable_entry")
        elif entry.size == 0:
            skip(entry, "empty file (0 bytes)", "unsupported_image")
        elif entry.size > max_file_bytes:
            skip(
                entry,
                f"{entry.size:,} bytes is above max_file_bytes {max_file_bytes:,}",
                "image_too_large",
            )
        elif _unchanged(previous.get(entry.name), entry) and not (
            thumb_due(entry) and previous[entry.name].w * previous[entry.name].h <= max_pixels
        ):
            old = previous[entry.name]
            if old.w * old.h > max_pixels:
                pixels = f"{old.w} x {old.h} is {old.w * old.h:,} pixels"
                reason = f"{pixels}, above max_pixels {max_pixels:,}"
                skip(entry, reason, "image_too_large", old.w, old.h)
            else:
                build.items.append(_with_flags(old, names))
            build.reused += 1
        elif _unchanged(previous_skipped.get(entry.name), entry) and _still_refused(
            previous_skipped[entry.name], max_pixels
        ):
            build.rejected.append(previous_skipped[entry.name])
            build.reused += 1
        else:
            to_read.append(entry)

    async def analyze(tg: TaskGroup, batch: Sequence[Entry], thumbed: bool) -> None:
        logicals = [paths.join(folder, entry.name) for entry in batch]
        work: Consumers[Analysis] = (
            imaging.analyze_with_thumb_sync if thumbed else imaging.analyze_sync
        )
        written: dict[str, LensletError | None] = {}
        async with slots:
            # The images' sidecars are read beside them (one small request each, taking its
            # turn with the images' reads, not a wave of its own before or after them).
            sidecars.start_reads(tg, [entry.name for entry in batch])
            if thumbed and thumbs is not None and await thumbs.prepare_here(logicals):
                work = [_made_and_kept(imaging, thumbs, image, written) for image in logicals]
            results = await storage.read_each_into(logicals, work, limiter=imaging.limiter)
        kept = (
            await _keep_thumbnails(thumbs, logicals, results, build, written) if thumbed else set()
        )
        for entry, result in zip(batch, results, strict=True):
            if isinstance(result, NotFound):
                skip(entry, "vanished while indexing", "not_found")
            elif isinstance(result, ImageTooLarge):
                skip(entry, result.message, result.code, result.width, result.height)
            elif isinstance(result, UnsupportedImage):
                skip(entry, result.message, result.code, kind=result.media_type or "")
            elif isinstance(result, LensletError):
                skip(entry, result.message, result.code)
            else:
                build.analyzed[entry.name] = result
                info = result.probe
                item = ItemEntry(
                    name=entry.name,
                    type=info.mime,
                    w=info.width,
                    h=info.height,
                    size=result.size,
                    mtime=entry.mtime,
                    hasThumb=False,
                    hasMeta=False,
                    hash=result.hash,
                    createdAt=info.created_at,
                )
                item = _with_flags(item, names)
                if entry.name in kept and not item.hasThumb:
                    item = item._replace(hasThumb=True)
                build.items.append(item)
                if refresh:
                    basics = Exif(info.width, info.height, info.created_at)
                    sidecars.refresh_soon(tg, entry.name, basics, result.hash)
            if on_item is not None:
                awaited = on_item()
                if awaited is not None:
                    await awaited

    # Batches are all-thumbnail or none, so each batch runs one kind of work per thread hop.
    with_thumb = [e for e in to_read if thumb_due(e)]
    without = [e for e in to_read if not thumb_due(e)]
    async with anyio.create_task_group() as tg:
        sidecars.start_reads(tg, [i.name for i in build.items])  # the others with their images
        for batch in _batches(with_thumb, THUMB_BATCH, alone=ALONE_BYTES):
            tg.start_soon(analyze, tg, batch, True)
        for batch in _batches(without, READ_BATCH):
            tg.start_soon(analyze, tg, batch, False)
    build.items.sort(key=lambda i: i.name)
    sidecars.give_stars(build.items)
    build.sidecars = sidecars.decoded
    build.rewritten = dict(sorted(sidecars.rewritten.items()))
    build.problems.extend(sorted(sidecars.problems, key=lambda s: s.path))
    build.dirs.sort(key=lambda d: d.name)
    build.rejected.sort(key=lambda s: s.name)
    return build


def _batches(
    entries: Sequence[Entry], size: int, *, alone: float = float("inf")
) -> list[list[Entry]]:
    """``entries`` in batches of ``size``, a file of ``alone`` bytes or more in a batch of its
    own; the larger files first, so that the last batches of a folder are the short ones."""
    batches: list[list[Entry]] = []
    small: list[Entry] = []
    for entry in sorted(entries, key=lambda e: e.size, reverse=True):
        if entry.size >= alone:
            batches.append([entry])
            continue
        small.append(entry)
        if len(small) == size:
            batches.append(small)
            small = []
    if small:
        batches.append(small)
    return batches


def _made_and_kept(
    imaging: Imaging,
    thumbs: ThumbnailStore,
    image: str,
    written: dict[str, LensletError | None],
) -> Callable[[bytes], Analysis]:
    """One image's analysis with its thumbnail, the thumbnail written by the thread that made
    it (on local disk: a thread hop more per thumbnail cost more than the write); how the
    write went is put in ``written``."""

    def work(data: bytes) -> Analysis:
        result = imaging.analyze_with_thumb_sync(data)
        if result.thumbnail is not None:
            try:
                thumbs.write_here(image, result.thumbnail)
            except LensletError as exc:
                written[image] = exc
            else:
                written[image] = None
        return result

    return work


async def _keep_thumbnails(
    thumbs: ThumbnailStore | None,
    images: Sequence[str],
    results: Sequence[Analysis | LensletError],
    build: FolderBuild,
    written: Mapping[str, LensletError | None],
) -> set[str]:
    """Write the thumbnails a batch made, but those ``written`` already where they were made;
    returns the names of the images whose thumbnail was kept. A write that failed there is
    tried again here, where the thumbnail cache can take it. One that could not be written is
    a problem of the build and leaves ``hasThumb`` as the listing says (it is made again next
    time)."""
    kept: set[str] = set()
    if thumbs is None:
        return kept

    def done(image: str) -> None:
        build.thumbnails_made += 1
        build.thumbnails_kept.add(paths.thumbnail_name(paths.split(image)[1]))
        kept.add(paths.split(image)[1])

    async def keep(image: str, data: bytes) -> None:
        try:
            await thumbs.write(image, data)
        except LensletError as exc:
            reason = f"thumbnail not kept: {exc.message}"
            build.problems.append(Skipped(paths.thumbnail_name(image), reason, exc.code))
            return
        done(image)

    async with anyio.create_task_group() as tg:
        for image, result in zip(images, results, strict=True):
            if not isinstance(result, Analysis) or result.thumbnail is None:
                continue
            if image in written and written[image] is None:
                done(image)
            else:
                tg.start_soon(keep, image, result.thumbnail)
    return kept


def _still_refused(old: Skipped, max_pixels: int) -> bool:
    """Whether an unchanged file's earlier verdict still holds under today's settings."""
    if old.code == "image_too_large":
        return old.w * old.h > max_pixels
    return old.code in PERMANENT_CODES


def _unchanged(old: ItemEntry | Skipped | None, entry: Entry) -> bool:
    return old is not None and old.size == entry.size and old.mtime == entry.mtime


def _with_flags(item: ItemEntry, names: set[str]) -> ItemEntry:
    has_thumb = paths.thumbnail_name(item.name) in names
    has_meta = paths.sidecar_name(item.name) in names
    if item.hasThumb == has_thumb and item.hasMeta == has_meta:
        return item
    return item._replace(hasThumb=has_thumb, hasMeta=has_meta)
