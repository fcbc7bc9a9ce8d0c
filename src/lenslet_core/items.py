"""Images as clients see them: an image's sidecar (:class:`Item`), written by the sidecar write
rules; its thumbnail, made on request when missing (:class:`Thumbnail`, or :class:`Pending`
while the queue is busy); the original file (:class:`Original`); and the manifest entries of
images found by search.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from . import paths
from .errors import ImageError, LensletError, NotFound
from .gallery import Gallery
from .hashing import content_etag
from .imaging import sniff_mime
from .manifest import ItemEntry, star_of
from .rollup import RollupItem
from .sidecar import ABSENT_ETAG, Exif, Sidecar, read_sidecar, update_sidecar
from .storage import Entry
from .work import INDEX, ROLLUP, THUMBNAIL

__all__ = ["Hit", "Item", "Original", "Pending", "Thumbnail"]


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

    @classmethod
    def of(cls, image: str, data: bytes) -> Thumbnail:
        return cls(image, data, content_etag(data))


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


@dataclasses.dataclass(frozen=True)
class Hit:
    """An image a search found: what the rollup matched (path, name, tags, notes) and its
    folder manifest's entry (size, w, h, hasThumb, …; ``None`` when its manifest does not
    list it yet), so a client renders hits like folder items."""

    found: RollupItem
    entry: ItemEntry | None

    @property
    def path(self) -> str:
        return self.found.path

    def to_json(self) -> dict[str, Any]:
        return {**(self.entry.to_json() if self.entry else {}), **self.found.to_json()}


# -- sidecars ------------------------------------------------------------------------------------


async def item(gallery: Gallery, image: str) -> Item:
    """An image's sidecar, with its EXIF basics filled in from the image when missing. On a
    local root the answer is kept while its folder does not change (:mod:`kept`)."""
    folder = paths.parent(image)
    kept: Item | None = gallery.kept_items.get(folder, image)
    if kept is not None:
        return kept
    stamp = await gallery.kept_items.stamp(folder)
    found = await _read_item(gallery, image)
    if stamp is not None and gallery.storage.route_known(image)[2] is None:
        gallery.kept_items.put(folder, image, found, stamp)  # not inside a pointer folder
    return found


async def _read_item(gallery: Gallery, image: str) -> Item:
    """:func:`item` from storage.

    A folder page read within ``manifest_ttl`` answers what it can: that the image is there
    (no stat), its size, and whether it has a sidecar at all (``hasMeta``; not after this
    process wrote one the manifest does not show yet). On S3 an image without a sidecar then
    costs one GET, for its EXIF basics."""
    folder = paths.parent(image)
    listed = gallery.listed(image, within=gallery.settings.manifest_ttl)
    if listed is not None and not listed.hasMeta and folder not in gallery.sidecars_written:
        stored = None
    else:
        stored = await read_sidecar(gallery.storage, image)
    if stored is None:
        basics, digest = await gallery.basics(image, listed)
        return Item(image, Sidecar(exif=basics, hash=digest), ABSENT_ETAG, False)
    sidecar, etag = stored
    # With its sidecar there, a page read a little longer ago still vouches that the image
    # is there, and for what size and mtime (as it does for thumbnails): no stat for it.
    present = listed or gallery.listed(image)
    if sidecar.exif is None:
        sidecar = await with_basics(gallery, image, sidecar, present)
    elif present is None:
        await gallery.image_file(image)  # an orphan sidecar is not an item
    return Item(image, sidecar, etag, True)


async def with_basics(
    gallery: Gallery, image: str, sidecar: Sidecar, listed: ItemEntry | None = None
) -> Sidecar:
    """A sidecar without EXIF basics, with them (and the hash) from the image."""
    try:
        basics, digest = await gallery.basics(image, listed)
    except ImageError:
        # The image cannot give its basics (too large, corrupt): its tags and notes are still
        # the user's, so they are served without them.
        if listed is None:
            await gallery.image_file(image)
        return sidecar
    return dataclasses.replace(sidecar, exif=basics, hash=sidecar.hash or digest)


async def update_item(
    gallery: Gallery,
    image: str,
    body: Mapping[str, Any],
    *,
    if_match: str | None,
    updated_by: str | None,
    writer: str,
) -> Item:
    """Write a client's sidecar by the rules of :mod:`lenslet_core.sidecar`; what was stored
    and its new ETag, as :func:`item` answers it next."""
    await gallery.storage.ensure_writable(image)
    folder = paths.parent(image)
    known: ItemEntry | Entry | None = gallery.listed(image)
    if known is None:
        # No sidecar for an image that does not exist (a folder page read lately says it does:
        # a burst of edits costs the sidecars' requests, not a stat each too).
        known = await gallery.image_file(image)
    gallery.note_sidecar_written(folder)  # before: a manifest may lag it

    async def basics() -> tuple[Exif, str] | None:
        try:
            return await gallery.basics(image, gallery.listed(image, within=math.inf) or known)
        except NotFound:
            raise  # gone since: no sidecar for it
        except LensletError:
            # Too large, corrupt, or a storage that fails to read it now: the tags and notes
            # are written without them (the next index adds them).
            return None

    async with gallery.writes(image):
        sidecar, etag, previous = await update_sidecar(
            gallery.storage,
            image,
            body,
            if_match=if_match,
            author=updated_by,
            writer=writer,
            basics=basics,
        )
    await gallery.load_state()
    gallery.rollup.edit(RollupItem.of(image, sidecar))
    if previous is None or star_of(previous.extra) != star_of(sidecar.extra):
        # A first sidecar (hasMeta) or a new star: the manifest catches up in the background,
        # reading this sidecar again, not the folder's images. Tags and notes are not in the
        # manifest: such an edit costs the sidecar's own requests and a share of one coalesced
        # rollup write.
        await gallery.submit_quietly(INDEX, folder)
    await gallery.submit_quietly(ROLLUP)
    gallery.feed.publish([folder])
    return Item(image, sidecar, etag, True)


# -- files ---------------------------------------------------------------------------------------


async def original(gallery: Gallery, image: str) -> Original:
    """An image file as stored: its size, mtime and type (by content)."""
    entry = await gallery.image_file(image)
    head = await gallery.storage.read_range(image, 0, 16)
    return Original(image, entry.size, entry.mtime, sniff_mime(head))


async def link(gallery: Gallery, image: str, *, seconds: int, thumbnail: bool) -> str | None:
    """A URL that serves an image (or its thumbnail, once it is made) for ``seconds`` without
    lenslet — an S3 presigned GET — or ``None`` where the storage has none (local disk) or
    the thumbnail is not made yet (it is then made and served the usual way)."""
    await gallery.image_file(image)  # a missing image is a 404, never a link
    if not thumbnail:
        return await gallery.storage.sign(image, seconds)
    kept = paths.thumbnail_name(image)
    try:
        await gallery.storage.info(kept)
    except NotFound:
        return None
    return await gallery.storage.sign(kept, seconds)


async def thumbnail(gallery: Gallery, image: str, *, wait: float) -> Thumbnail | Pending:
    """An image's thumbnail. A missing one is made by a job at the highest priority and
    awaited up to ``wait`` seconds; :class:`Pending` when the queue is too busy for that."""
    recent = gallery.thumbs.recent.get(image)
    if recent is None:
        # Requests for one thumbnail that is no longer fresh wait for one read of it.
        async with gallery.thumb_reads(image):
            recent = gallery.thumbs.recent.get(image) or await _stored_thumbnail(gallery, image)
    if recent is not None:  # served lately and fresh (no storage call), or just read
        gallery.counts["thumbnails_served"] += 1
        return Thumbnail(image, *recent)
    since = gallery.thumbs.recent.epoch
    job = gallery.job(THUMBNAIL, image)
    handle = await gallery.jobs.submit(job, wait_for_room=False)
    if await handle.wait(wait):
        data: bytes = handle.result()
        gallery.counts["thumbnails_made"] += 1
        made = Thumbnail.of(image, data)
        gallery.thumbs.recent.put(image, (made.data, made.etag), since=since)
        return made
    gallery.counts["thumbnails_pending"] += 1
    return Pending(image, gallery.jobs.retry_after(job))


async def _stored_thumbnail(gallery: Gallery, image: str) -> tuple[bytes, str] | None:
    """The thumbnail kept for ``image`` (then fresh in memory), or ``None`` if none is."""
    since = gallery.thumbs.recent.epoch
    if gallery.listed(image) is None:
        # A missing image is a 404 (its thumbnail an orphan). A folder page read lately
        # already says the image is there: a client showing a folder's thumbnails costs one
        # read each, not a read and a stat.
        await gallery.image_file(image)
    try:
        found = Thumbnail.of(image, await gallery.thumbs.read(image))
    except NotFound:
        return None
    gallery.thumbs.recent.put(image, (found.data, found.etag), since=since)
    return found.data, found.etag


async def entries(gallery: Gallery, images: Sequence[str]) -> dict[str, ItemEntry]:
    """The manifest entries of images, by path, from their folders' manifests: pages read
    lately are used as they are, others are read (folders concurrently). Images a manifest
    does not list are left out."""
    wanted: dict[str, set[str]] = {}
    found: dict[str, ItemEntry] = {}
    for image in images:
        listed = gallery.listed(image)
        if listed is not None:
            found[image] = listed
        else:
            folder, name = paths.split(image)
            wanted.setdefault(folder, set()).add(name)

    async def look(folder: str, names: set[str]) -> None:
        page, count = 0, 1
        while page < count and names:
            try:
                manifest = await gallery.folders.get(folder, page)
            except LensletError:
                return  # a folder gone or unreadable since the rollup was written
            count = manifest.page_count
            for name in list(names):
                listed = gallery.folders.cached_item(folder, name)
                if listed is not None:
                    found[paths.join(folder, name)] = listed
                    names.discard(name)
            page += 1

    async with anyio.create_task_group() as tg:
        for folder, names in wanted.items():
            tg.start_soon(look, folder, names)
    return found


async def find(gallery: Gallery, query: str, *, limit: int, path: str) -> tuple[Hit, ...]:
    """Search hits with their manifest entries (see :class:`Hit`).

    The same question asked again gets the same hits (the same tuple, so an adapter can keep
    its encoding too) while the search has taken no change and the folder pages no other
    build, for at most ``manifest_ttl`` seconds (then the pages are read again)."""
    await gallery.load_state()
    ttl = gallery.settings.manifest_ttl
    key = f"{limit} {path}\0{query}"
    if gallery.search.current(ttl):  # the usual case: the hits kept are answered at once
        kept = gallery.found.get(key)
        if kept is not None and kept[0] == (gallery.search.version, gallery.folders.version):
            hits: tuple[Hit, ...] = kept[1]
            return hits
    found = await gallery.search.search(query, limit=limit, path=path, ttl=ttl)
    versions = (gallery.search.version, gallery.folders.version)
    kept = gallery.found.get(key)
    if kept is not None and kept[0] == versions:
        hits = kept[1]
        return hits
    for _ in range(2):
        # Reading the pages it needs changes the folders' version: the second time round
        # they are all in memory, and an answer made while nothing moved is kept.
        listed = await entries(gallery, [item.path for item in found])
        hits = tuple(Hit(item, listed.get(item.path)) for item in found)
        now = (gallery.search.version, gallery.folders.version)
        if now == versions:
            gallery.found.put(key, (versions, hits))
            break
        if now[0] != versions[0]:
            break  # the search took a change meanwhile: this answer is not for keeping
        versions = now
    return hits
