"""Where thumbnails live: ``foo.jpg.thumbnail`` beside the image, or in the thumbnail cache.

A thumbnail goes beside its image when the image's folder takes writes. When it does not (a
read-only root, a read-only mount or pointer, a bucket without write rights) it goes to the cache
named by the ``thumb_cache`` setting, under the same logical path, in a folder of its own per
gallery root so that one cache can serve many roots. With no cache set, such thumbnails are not
kept.

Thumbnails served lately are also kept in memory (:mod:`fresh`, bounded by bytes), so a
thumbnail many viewers ask for is answered without a storage call while it is fresh.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence

from . import paths
from .errors import LensletError, NotFound, PermissionDenied, ReadOnly
from .fresh import Fresh
from .hashing import hash_bytes
from .storage import Entry, Storage, Store

__all__ = ["RECENT_BYTES", "Recent", "ThumbnailStore", "recent_thumbnails", "thumbnails_in"]

#: Bytes of thumbnails kept in memory at most (about 1,500 of 20 KB).
RECENT_BYTES = 32 * 1024 * 1024

#: A thumbnail served lately: its bytes and ETag.
Recent = Fresh[tuple[bytes, str]]


def recent_thumbnails(fresh_for: float, max_bytes: int = RECENT_BYTES) -> Recent:
    """Thumbnails served lately, weighed by their bytes (see :mod:`fresh`)."""
    return Fresh(max_bytes, fresh_for, lambda kept: len(kept[0]))


class ThumbnailStore:
    """Reads and writes the thumbnails of one gallery root."""

    def __init__(
        self, storage: Store, cache: Store | None = None, recent: Recent | None = None
    ) -> None:
        self.storage = storage
        self.cache = cache
        self.recent = recent if recent is not None else recent_thumbnails(2.0)

    @classmethod
    def open(
        cls, storage: Store, cache_url: str | None, *, fresh_for: float = 2.0
    ) -> ThumbnailStore:
        """The store for ``storage``, with its cache under ``cache_url`` (created if missing);
        thumbnails served are kept in memory ``fresh_for`` seconds."""
        recent = recent_thumbnails(fresh_for)
        if cache_url is None:
            return cls(storage, recent=recent)
        # One folder per root: the root's URL, hashed (URLs hold characters no path should).
        key = hash_bytes(storage.url.encode()).split(":", 1)[1][:24]
        cache = Storage.open(f"{cache_url.rstrip('/')}/{key}", create=True)
        return cls(storage, cache, recent)

    async def read(self, image: str) -> bytes:
        """The thumbnail of ``image``, beside it or in the cache; :class:`NotFound` if neither,
        or if what is there is not a whole WebP (cut short by a power cut: made again)."""
        name = paths.thumbnail_name(image)
        try:
            return _whole(name, await self.storage.read(name))
        except NotFound:
            if self.cache is None:
                raise
        return _whole(name, await self.cache.read(name))

    async def write(self, image: str, data: bytes) -> None:
        """Keep a thumbnail (atomically): beside the image if its folder takes writes, else in
        the cache. Raises what the write raised when neither can take it."""
        name = paths.thumbnail_name(image)
        self.recent.forget(image)
        if not self.storage.readonly:
            try:
                await self.storage.write(name, data)
                return
            except (ReadOnly, PermissionDenied):
                if self.cache is None:
                    raise
        if self.cache is None:
            raise ReadOnly(
                f"cannot keep the thumbnail of {image!r}: the gallery root is read-only and no "
                "thumb_cache is set",
                path=image,
            )
        await self.cache.write(name, data, parents=True)

    async def prepare_here(self, images: Sequence[str]) -> bool:
        """Ready the thumbnails of ``images`` (of one folder) for :meth:`write_here`: what is
        kept of them in memory forgotten, as :meth:`write` does first, and the pointers above
        them learnt (the thread that writes needs no look). Returns whether they can be written
        that way: beside their images, on local disk."""
        if not images or self.storage.readonly:
            return False
        name = paths.thumbnail_name(images[0])
        try:
            await self.storage.ensure_writable(name)
        except LensletError:
            return False  # write says why, with the cache to fall back on
        if not self.storage.writes_here(name):
            return False
        for image in images:
            self.recent.forget(image)
        return True

    def write_here(self, image: str, data: bytes) -> None:
        """:meth:`write` beside the image in the calling thread (a worker that has just made
        the thumbnail: see :meth:`Storage.write_here`), after :meth:`prepare_here`. Raises
        what the write raised; the cache is :meth:`write`'s to fall back on."""
        self.storage.write_here(paths.thumbnail_name(image), data)

    async def delete(self, image: str) -> None:
        """Delete the thumbnail of ``image``, beside it and in the cache (none there is fine)."""
        name = paths.thumbnail_name(image)
        self.recent.forget(image)
        if not self.storage.readonly:
            await self.storage.delete(name)
        if self.cache is not None:
            await self.cache.delete(name)

    async def drop_orphans(self, folder: str, made: Iterable[str], present: set[str]) -> set[str]:
        """Delete the thumbnails just ``made`` in ``folder`` (their names) whose image is not
        among the names ``present`` in a listing taken after they were written — moved or
        deleted while its thumbnail was being made. Returns the names deleted."""
        gone = {name for name in made if paths.image_of(name) not in present}
        for name in gone:
            image = paths.join(folder, name[: -len(paths.THUMBNAIL_SUFFIX)])
            with contextlib.suppress(NotFound):
                await self.delete(image)
        return gone

    async def cached(self, folder: str) -> dict[str, float]:
        """The thumbnails the cache holds for ``folder``, by name, with their mtimes (one
        listing; empty when there is no cache or it has nothing for that folder)."""
        if self.cache is None:
            return {}
        try:
            entries = await self.cache.list(folder)
        except LensletError:
            return {}
        return thumbnails_in(entries)

    @property
    def keeps_all(self) -> bool:
        """Whether every thumbnail made can be kept somewhere."""
        return not self.storage.readonly or self.cache is not None


def _whole(name: str, data: bytes) -> bytes:
    """``data`` if it is a whole WebP file (its RIFF header's size is all there), else
    :class:`NotFound`."""
    size = int.from_bytes(data[4:8], "little") + 8 if len(data) >= 12 else 0
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < size:
        raise NotFound(f"the thumbnail {name!r} is not a whole WebP file", path=name)
    return data


def thumbnails_in(entries: Iterable[Entry]) -> dict[str, float]:
    """The thumbnails in a folder's listing, by name, with their mtimes."""
    return {e.name: e.mtime for e in entries if e.is_file and paths.is_thumbnail_name(e.name)}
