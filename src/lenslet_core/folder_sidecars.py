"""What an index run does with the sidecars of a folder it builds: reads those it has not seen
at their current stamp (for their ``star``, which the manifest carries), and brings the EXIF
basics and hash of those whose image it analyzed up to date.

Both run while the folder's images are read, not after them: a sidecar is read as soon as the
build starts, and refreshed as soon as its image's analysis and its own read are done. On S3,
where each is a request of tens of milliseconds, a folder's sidecars then cost no wave of
requests of their own after its images.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import anyio
from anyio.abc import TaskGroup

from . import paths
from .errors import DocumentError, LensletError
from .manifest import ItemEntry, Skipped, star_of
from .sidecar import Exif, Sidecar, read_sidecar_bytes, refresh_basics
from .storage import Entry, Store

__all__ = ["FolderSidecars"]


class FolderSidecars:
    """The sidecars of one folder's listing, as one build reads and refreshes them."""

    def __init__(
        self,
        storage: Store,
        folder: str,
        entries: Sequence[Entry],
        previous: Mapping[str, ItemEntry],
    ) -> None:
        self.storage = storage
        self.folder = folder
        self.previous = previous
        #: The listing's stamp (size, mtime) of each sidecar that is a file, by its image's
        #: name; ``listed``: the images with anything listed under a sidecar's name.
        self.stamps: dict[str, tuple[int, float]] = {}
        self.listed: set[str] = set()
        for e in entries:
            if e.kind != "dir" and e.name.endswith(paths.SIDECAR_SUFFIX):
                image = paths.image_of(e.name)
                if image:
                    self.listed.add(image)
                    if e.kind == "file":
                        self.stamps[image] = (e.size, e.mtime)
        #: The sidecars read, by image name: their bytes and ETag (what a refresh starts from:
        #: one GET each, not two) ...
        self.read: dict[str, tuple[bytes, str]] = {}
        #: ... and as decoded (read after the listing, as the rollup would read them).
        self.decoded: dict[str, Sidecar] = {}
        #: The star of each sidecar read, and the stamp it holds for (``None``: read again).
        self._stars: dict[str, tuple[Any, tuple[int, float] | None]] = {}
        self._reading: dict[str, anyio.Event] = {}
        #: The sidecars rewritten, by image name: the bytes written and their ETag; and those
        #: that could not be.
        self.rewritten: dict[str, tuple[bytes, str]] = {}
        self.problems: list[Skipped] = []

    def unseen(self, name: str) -> bool:
        """Whether an image's sidecar must be read for its star: it has one, and the last
        manifest did not take its star at the stamp it has now."""
        stamp = self.stamps.get(name)
        if stamp is None:
            return False
        old = self.previous.get(name)
        return old is None or old.metaStamp != stamp

    def start_reads(self, tg: TaskGroup, names: Iterable[str]) -> None:
        """Read, in ``tg``, the sidecars of ``names`` (images that may be items) not yet
        seen at their stamp."""
        for name in names:
            if name not in self._reading and self.unseen(name):
                self._reading[name] = anyio.Event()
                tg.start_soon(self._read, name)

    async def _read(self, name: str) -> None:
        stamp = self.stamps[name]
        try:
            try:
                stored = await read_sidecar_bytes(self.storage, paths.join(self.folder, name))
            except DocumentError:
                stored, known = None, stamp  # unreadable as it is: read again when it changes
            except LensletError as exc:
                stored, known = None, None  # storage trouble: read again next time
                reason = f"sidecar not read: {exc.message}"
                sidecar = paths.sidecar_name(paths.join(self.folder, name))
                self.problems.append(Skipped(sidecar, reason, exc.code))
            else:
                known = stamp
            if stored is not None:
                self.read[name] = (stored[2], stored[1])
                self.decoded[name] = stored[0]
            self._stars[name] = (star_of(stored[0].extra) if stored is not None else None, known)
        finally:
            self._reading[name].set()  # what a refresh waits for is in (or never will be)

    def refresh_soon(self, tg: TaskGroup, name: str, basics: Exif, digest: str) -> None:
        """Bring, in ``tg``, the EXIF basics and hash of ``name``'s sidecar (if one is listed:
        what is not a file there is reported) up to date, from the bytes its read gives once
        that is done."""
        if name in self.listed:
            tg.start_soon(self._refresh, name, basics, digest)

    async def _refresh(self, name: str, basics: Exif, digest: str) -> None:
        reading = self._reading.get(name)
        if reading is not None:
            await reading.wait()
        image = paths.join(self.folder, name)
        try:
            written = await refresh_basics(
                self.storage, image, basics, digest, read=self.read.get(name)
            )
        except LensletError as exc:
            reason = f"sidecar not updated: {exc.message}"
            self.problems.append(Skipped(paths.sidecar_name(image), reason, exc.code))
        else:
            if written is not None:
                self.rewritten[name] = written

    def give_stars(self, items: list[ItemEntry]) -> None:
        """Give each item its sidecar's ``star``: as read, else carried over from the last
        manifest while the sidecar has the stamp it was read at (each in place)."""
        for index, item in enumerate(items):
            stamp = self.stamps.get(item.name) if item.hasMeta else None
            if stamp is None:
                if item.star is not None or item.metaStamp is not None:
                    items[index] = item._replace(star=None, metaStamp=None)
                continue
            if item.metaStamp == stamp:
                continue
            taken = self._stars.get(item.name)
            if taken is not None:
                items[index] = item._replace(star=taken[0], metaStamp=taken[1])
                continue
            old = self.previous.get(item.name)
            if old is not None and old.metaStamp == stamp:
                items[index] = item._replace(star=old.star, metaStamp=stamp)
        named = {item.name for item in items}
        for gone in set(self.decoded) - named:  # read for an image that is not an item
            del self.decoded[gone]
