"""Folder manifests served from memory: pages cached for ``manifest_ttl`` seconds, read from
``_index*.json`` when stale, and built (then written where storage allows) only when a folder
has no readable manifest. Pages of a paged folder always come from one build."""

from __future__ import annotations

import collections
import dataclasses
import math
import time
from collections.abc import Mapping

from . import paths
from .errors import InvalidPath, MalformedDocument, NotFound, PermissionDenied
from .imaging import Imaging
from .indexing import index_tree
from .keyedlock import KeyedLock
from .manifest import ItemEntry, Manifest, read_page
from .settings import Settings
from .storage import Store
from .thumbnails import ThumbnailStore

__all__ = ["FolderPages"]

#: Pages kept in memory.
_CACHE_SIZE = 1024
#: Folders whose last in-process build is kept to stand in for a manifest storage lacks.
_BUILT_SIZE = 64


@dataclasses.dataclass
class _Cached:
    manifest: Manifest
    checked: float
    built: bool  # by this process's rebuild (not read from storage)
    digest: str | None = None  # of the bytes it was read from
    _names: dict[str, ItemEntry] | None = None

    def item(self, name: str) -> ItemEntry | None:
        if self._names is None:
            self._names = {item.name: item for item in self.manifest.items}
        return self._names.get(name)


def _page_of(folder: str, pages: list[Manifest], page: int) -> Manifest:
    if page >= len(pages):
        raise NotFound(
            f"folder {folder or '/'!r} has {len(pages)} page(s); no page {page}", path=folder
        )
    return pages[page]


class FolderPages:
    """The manifest pages of one root, as readers get them. ``locks`` serialises builds of one
    folder with the index runs of the facade that share it."""

    def __init__(
        self,
        storage: Store,
        imaging: Imaging,
        settings: Settings,
        thumbs: ThumbnailStore,
        locks: KeyedLock,
    ) -> None:
        self.storage = storage
        self.imaging = imaging
        self.settings = settings
        self.thumbs = thumbs
        self.locks = locks
        self._reads = KeyedLock()
        self.ttl = settings.manifest_ttl
        self._pages: collections.OrderedDict[tuple[str, int], _Cached] = collections.OrderedDict()
        self._built: collections.OrderedDict[str, list[Manifest]] = collections.OrderedDict()
        #: Pages served from an existing manifest, and rebuilt because there was none (the
        #: PRD's goal: 95% from manifests). Read by metrics.
        self.served = 0
        self.rebuilt = 0
        #: Counts the changes to what :meth:`cached_item` can answer (a page of another build,
        #: or one dropped); a page read again from the same build leaves it.
        self.version = 0

    def cached_item(self, folder: str, name: str, *, within: float = math.inf) -> ItemEntry | None:
        """An image's entry in the pages this process holds for its folder (no I/O), from
        pages checked against storage ``within`` seconds."""
        first = self._pages.get((folder, 0))
        if first is None:
            return None
        now = time.monotonic()
        for number in range(first.manifest.page_count):
            cached = self._pages.get((folder, number))
            if cached is None or now - cached.checked >= within:
                continue
            found = cached.item(name)
            if found is not None:
                return found
        return None

    def clear(self) -> None:
        self._pages.clear()
        self._built.clear()
        self.version += 1

    async def get(self, folder: str, page: int = 0, *, refresh: bool = False) -> Manifest:
        """One page of the (normalized) ``folder``'s manifest: see :meth:`Lenslet.folder`."""
        if page < 0:
            raise NotFound(f"page {page} does not exist", path=folder)
        if refresh:
            return _page_of(folder, await self._rebuild(folder, refresh=True), page)
        for _ in range(2):
            first = await self._page(folder, 0)
            if first is None:
                break
            if page == 0:
                self.served += 1
                return first
            if page >= first.page_count:
                raise NotFound(
                    f"folder {folder or '/'!r} has {first.page_count} page(s); no page {page}",
                    path=folder,
                )
            other = await self._page(folder, page, first.page_count)
            if other is not None and other.build == first.build:
                self.served += 1
                return other
            self.invalidate(folder)  # another writer replaced the pages: read them again
        self.rebuilt += 1
        return _page_of(folder, await self._rebuild(folder), page)

    async def pages(self, folder: str) -> list[Manifest]:
        """Every page of the (normalized) ``folder``'s manifest, all of one build."""
        for _ in range(3):
            first = await self.get(folder, 0)
            if first.page_count == 1:
                return [first]  # most folders: one page is the whole of one build
            pages = [first]
            for number in range(1, first.page_count):
                pages.append(await self.get(folder, number))
            if all(page.build == first.build for page in pages):
                return pages
        # Rebuilt under us again and again (a busy folder): build it here, once.
        return await self._rebuild(folder, refresh=True)

    async def _page(self, folder: str, page: int, count: int | None = None) -> Manifest | None:
        """A page from the cache while it is fresh, else from storage; ``None`` when storage
        has no readable page. Readers that find it stale together wait for one read."""
        fresh = self._fresh(folder, page)
        if fresh is not None:
            return fresh
        async with self._reads(f"{page}/{folder}"):
            fresh = self._fresh(folder, page)  # read by the reader this one waited for
            if fresh is not None:
                return fresh
            cached = self._pages.get((folder, page))
            known = (cached.manifest, cached.digest) if cached and cached.digest else None
            try:
                manifest, digest = await read_page(self.storage, folder, page, count, known)
            except (NotFound, MalformedDocument, InvalidPath, PermissionDenied):
                return None  # unreadable as a manifest (a FIFO, no access, ...): rebuild it
            self._remember(folder, {page: manifest}, time.monotonic(), built=False)
            self._pages[(folder, page)].digest = digest
            return manifest

    def _fresh(self, folder: str, page: int) -> Manifest | None:
        cached = self._pages.get((folder, page))
        if cached is not None and time.monotonic() - cached.checked < self.ttl:
            self._pages.move_to_end((folder, page))
            return cached.manifest
        return None

    def _remember(
        self, folder: str, pages: Mapping[int, Manifest], checked: float, *, built: bool
    ) -> None:
        for number, manifest in pages.items():
            was = self._pages.get((folder, number))
            if was is None or was.manifest.build != manifest.build:
                self.version += 1
            self._pages[(folder, number)] = _Cached(manifest, checked, built)
            self._pages.move_to_end((folder, number))
        while len(self._pages) > _CACHE_SIZE:
            self._pages.popitem(last=False)
            self.version += 1

    async def _rebuild(self, folder: str, *, refresh: bool = False) -> list[Manifest]:
        """Build one folder's manifest (written where the storage allows) and cache its pages.
        Callers that queued behind a rebuild of the same folder take its result (except a
        ``refresh``, which always lists the folder again)."""
        asked = time.monotonic()
        async with self.locks(folder):
            first = self._pages.get((folder, 0))
            # A rebuild that finished while we queued serves us, unless the caller asked for a
            # refresh: that rebuild may have listed the folder before the caller's change.
            if not refresh and first is not None and first.built and first.checked >= asked:
                done = [self._pages.get((folder, n)) for n in range(first.manifest.page_count)]
                if all(c is not None for c in done):
                    return [c.manifest for c in done if c is not None]
            # What the last build saw stands in for a manifest storage does not have (a
            # read-only root), so unchanged images are not read again.
            fallback = {folder: self._built[folder]} if folder in self._built else {}
            report = await index_tree(
                self.storage,
                self.imaging,
                self.settings,
                folder,
                recursive=False,
                keep_pages=True,
                fallback=fallback,
                thumbs=self.thumbs,
                make_thumbs=False,  # made on request, one by one, by thumbnail jobs
            )
            pages = report.pages.get(folder)
            if pages is None:
                for problem in report.skipped:
                    if problem.path == (folder or "/") and problem.error is not None:
                        raise problem.error
                raise NotFound(f"folder {folder or '/'!r} could not be indexed", path=folder)
            self.invalidate(folder)
            self._remember(folder, dict(enumerate(pages)), time.monotonic(), built=True)
            self._built[folder] = pages
            self._built.move_to_end(folder)
            while len(self._built) > _BUILT_SIZE:
                self._built.popitem(last=False)
            return pages

    def invalidate(self, folder: str, *, below: bool = False) -> None:
        """Forget cached pages of ``folder`` (and, with ``below``, of every folder under it)."""
        for key in list(self._pages):
            if key[0] == folder or (below and paths.within(key[0], folder)):
                del self._pages[key]
                self.version += 1
