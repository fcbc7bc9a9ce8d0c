"""The search rollup: ``_rollup.json`` at the root, every image with its tags and notes.

:class:`Rollup` holds it in memory and keeps it in step incrementally: a folder that was indexed
replaces that folder's images (reading only the sidecars that are new or changed since the
rollup's basis time), a sidecar that was written replaces one image. Saving is a conditional
write of the whole file: when another process saved in between, its file is read back and this
process's pending changes are applied on top, so neither loses the other's changes.

``generatedAt`` is the rollup's basis: when the last full index run of the root started. Every
sidecar last modified before it is reflected in the file; later ones are read when their folder
is next indexed.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence

import anyio
import anyio.to_thread

from . import paths
from .errors import DocumentError, LensletError, NotFound, PreconditionFailed
from .models import ItemEntry, RollupItem, decode_rollup, encode_rollup, format_time, parse_time
from .sidecar import read_sidecar
from .storage import Entry, Storage

__all__ = ["Rollup"]

#: Sidecars modified this close to the basis time are read again (coarse mtime clocks).
_MTIME_SLACK = 2.0
#: Attempts of a save that keeps meeting other writers.
_SAVE_ATTEMPTS = 5


class Rollup:
    """One root's rollup, in memory. Not thread-safe: use it from one event loop."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        #: folder → name → item
        self._folders: dict[str, dict[str, RollupItem]] = {}
        #: Epoch seconds of the basis (``None``: unknown, every sidecar must be read).
        self.basis: float | None = None
        #: Bumped by every change.
        self.version = 0
        #: Bumped when the rollup is replaced whole (read from storage again).
        self.generation = 0
        self._recent: dict[str, RollupItem | None] = {}
        self._etag: str | None = None
        self._pending: dict[str, RollupItem | None] = {}
        self.loaded = False

    def __len__(self) -> int:
        return sum(len(names) for names in self._folders.values())

    @property
    def dirty(self) -> bool:
        """Whether there are changes not yet saved."""
        return bool(self._pending)

    def items(self) -> list[RollupItem]:
        """Every image, sorted by path."""
        every = [item for names in self._folders.values() for item in names.values()]
        every.sort(key=lambda item: item.path)
        return every

    # -- reading -------------------------------------------------------------------------------

    async def load(self) -> None:
        """Read ``_rollup.json``; a missing or unreadable one leaves the rollup empty, with no
        basis (its folders' sidecars will all be read)."""
        try:
            data, etag = await self.storage.read_versioned(paths.ROLLUP_NAME)
        except NotFound:
            self._reset([], None, None)
            return
        try:
            items, generated = await anyio.to_thread.run_sync(decode_rollup, data)
        except DocumentError:
            self._reset([], None, etag)  # derived data: it is rebuilt and overwritten
            return
        moment = parse_time(generated)
        self._reset(items, moment.timestamp() if moment is not None else None, etag)

    def _reset(self, items: Iterable[RollupItem], basis: float | None, etag: str | None) -> None:
        self._folders = {}
        for item in items:
            self._folders.setdefault(paths.parent(item.path), {})[item.name] = item
        self.basis = basis
        self._etag = etag
        self.loaded = True
        self.version += 1
        self.generation += 1
        self._recent = {}

    # -- changes -------------------------------------------------------------------------------

    def drain(self) -> dict[str, RollupItem | None]:
        """The images changed (``None``: removed) since the last drain or reload."""
        recent, self._recent = self._recent, {}
        return recent

    def set_item(self, item: RollupItem) -> None:
        folder = paths.parent(item.path)
        if self._folders.get(folder, {}).get(item.name) == item:
            return
        self._folders.setdefault(folder, {})[item.name] = item
        self._pending[item.path] = item
        self._recent[item.path] = item
        self.version += 1

    def remove(self, path: str) -> None:
        folder, name = paths.split(path)
        names = self._folders.get(folder)
        if names is None or names.pop(name, None) is None:
            return
        if not names:
            del self._folders[folder]
        self._pending[path] = None
        self._recent[path] = None
        self.version += 1

    async def update_folder(
        self, folder: str, entries: Sequence[Entry], items: Sequence[ItemEntry]
    ) -> None:
        """Make ``folder``'s images those of its new manifest (``items``), reading the sidecars
        that are new or changed since the basis (their mtimes come from the listing)."""
        listed = {e.name: e for e in entries}
        old = self._folders.get(folder, {})
        fresh: dict[str, RollupItem] = {}
        to_read: list[ItemEntry] = []
        for item in items:
            path = paths.join(folder, item.name)
            sidecar = listed.get(paths.sidecar_name(item.name))
            if not item.hasMeta or sidecar is None:
                fresh[item.name] = RollupItem(path, item.name)
            elif item.name in old and not self._changed(sidecar):
                fresh[item.name] = old[item.name]
            else:
                to_read.append(item)

        async def read(item: ItemEntry) -> None:
            path = paths.join(folder, item.name)
            try:
                stored = await read_sidecar(self.storage, path)
            except LensletError:
                stored = None  # unreadable or malformed: searchable by name until fixed
            if stored is None:
                fresh[item.name] = RollupItem(path, item.name)
            else:
                sidecar = stored[0]
                fresh[item.name] = RollupItem(path, item.name, sidecar.tags, sidecar.notes)

        async with anyio.create_task_group() as tg:
            for item in to_read:
                tg.start_soon(read, item)
        for name in old.keys() - fresh.keys():
            self.remove(paths.join(folder, name))
        for entry in fresh.values():
            self.set_item(entry)

    def prune(self, under: str, keep: Iterable[str]) -> None:
        """Forget images of folders under ``under`` (itself included) that are not in
        ``keep``: folders a recursive index run no longer found."""
        kept = set(keep)
        prefix = under + "/" if under else ""
        for folder in list(self._folders):
            if (folder == under or folder.startswith(prefix)) and folder not in kept:
                for name in list(self._folders.get(folder, {})):
                    self.remove(paths.join(folder, name))

    def _changed(self, sidecar: Entry) -> bool:
        return self.basis is None or sidecar.mtime >= self.basis - _MTIME_SLACK

    # -- saving --------------------------------------------------------------------------------

    async def save(self, *, basis: float | None = None) -> bool:
        """Write ``_rollup.json`` if anything changed since it was read or written (``basis``:
        a new basis time, after a run that read every sidecar changed since the old one): a
        conditional write that, when another process saved first, reads theirs and applies
        this rollup's pending changes on top. Returns whether it wrote. An unchanged rollup
        keeps its older basis on storage, which only means more sidecars are read later."""
        if basis is not None and (self.basis is None or basis > self.basis):
            self.basis = basis
        if not self._pending and self._etag is not None:
            return False
        for _ in range(_SAVE_ATTEMPTS):
            pending = dict(self._pending)
            items = self.items()
            when = format_time(
                datetime.datetime.fromtimestamp(self.basis or 0, datetime.timezone.utc)
            )
            data = await anyio.to_thread.run_sync(encode_rollup, items, when)
            try:
                self._etag = await self.storage.write_if(
                    paths.ROLLUP_NAME, data, expected=self._etag
                )
            except PreconditionFailed:
                await self._merge_theirs()
                continue
            for path, item in pending.items():
                if self._pending.get(path, ...) == item:
                    del self._pending[path]
            return True
        raise PreconditionFailed(
            f"{paths.ROLLUP_NAME} kept changing under other writers; not saved this time",
            path=paths.ROLLUP_NAME,
        )

    async def refresh(self) -> None:
        """Read the stored rollup again if another process saved a newer one, keeping this
        rollup's unsaved changes on top."""
        try:
            _, etag = await self.storage.read_versioned(paths.ROLLUP_NAME)
        except NotFound:
            return
        if etag != self._etag:
            await self._merge_theirs()

    async def _merge_theirs(self) -> None:
        pending, basis = dict(self._pending), self.basis
        await self.load()
        if basis is not None and (self.basis is None or basis < self.basis):
            self.basis = basis  # the older basis is the safe one
        for path, item in pending.items():
            if item is None:
                self.remove(path)
            else:
                self.set_item(item)
        self._pending.update(pending)
