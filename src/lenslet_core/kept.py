"""Answers kept in memory for as long as their folder has not changed, by any process: on a
local root the kernel reports every change (:mod:`inotify`), so an image's item is answered
again without a storage call, and an edit made through another server is seen by the next
request here, as it would be with no cache at all.

Every lookup first takes what the kernel reported (one non-blocking read). A folder's
answers carry the folder's count of changes they were read at: a change counts it up, and an
answer of an older count is not given. An answer is kept only if no change came between the
folder being watched (before its read began) and the answer being kept.

Elsewhere (S3, a network file system, pointer folders, past the watch limit) nothing is kept
and every answer is read from storage. Watching looks paths up: it runs in the storage seam's
threads (:meth:`Storage.run_local`).
"""

from __future__ import annotations

import collections
from typing import Generic, TypeVar

from . import paths
from .inotify import FolderEvents
from .storage import Store

__all__ = ["Kept"]

V = TypeVar("V")

#: Folders whose change counts are held; past it they are all forgotten at once (and with
#: them every answer kept: their counts start again).
_FOLDERS = 50_000


class Kept(Generic[V]):
    """Answers by key, each kept with its folder's change count; at most ``max_entries``,
    least recently used first out. The changes watched are those of ``storage``'s local root
    (from the first :meth:`stamp`); without one nothing is ever kept."""

    def __init__(self, storage: Store, max_entries: int = 10_000) -> None:
        self.storage = storage
        self.root = storage.local_root
        self.events: FolderEvents | None = None
        self.max_entries = max_entries
        self._kept: collections.OrderedDict[str, tuple[tuple[int, int], V]] = (
            collections.OrderedDict()
        )
        self._counts: dict[str, int] = {}
        self._era = 0  # counts up when every answer goes (the kernel dropped events)

    def close(self) -> None:
        """Stop watching (a later :meth:`stamp` watches again)."""
        if self.events is not None:
            self.events.close()
            self.events = None
        self._kept.clear()
        self._era += 1

    def get(self, folder: str, key: str) -> V | None:
        """The answer kept for ``key`` (in ``folder``), if nothing changed there since."""
        if self.events is None:
            return None
        self._catch_up()
        kept = self._kept.get(key)
        if kept is None or kept[0] != (self._era, self._counts.get(folder, 0)):
            return None
        self._kept.move_to_end(key)
        return kept[1]

    async def stamp(self, folder: str) -> tuple[int, int] | None:
        """Take before reading what will be kept (it watches ``folder`` first); ``None``
        when nothing in ``folder`` can be kept."""
        if self.events is None and self.root is not None:
            self.events = await self.storage.run_local(FolderEvents.open, self.root)
            if self.events is None:
                self.root = None  # the kernel cannot tell this root's changes: keep nothing
        events = self.events
        if events is None:
            return None
        if not events.watched(folder) and not await self.storage.run_local(events.watch, folder):
            return None
        self._catch_up()
        return self._era, self._counts.setdefault(folder, 0)

    def put(self, folder: str, key: str, value: V, stamp: tuple[int, int]) -> None:
        """Keep ``value``, read after :meth:`stamp` gave ``stamp``, unless ``folder`` changed
        since."""
        if self.events is None:
            return
        self._catch_up()
        if stamp != (self._era, self._counts.get(folder, 0)):
            return
        self._kept[key] = (stamp, value)
        self._kept.move_to_end(key)
        while len(self._kept) > self.max_entries:
            self._kept.popitem(last=False)

    def _catch_up(self) -> None:
        assert self.events is not None
        if len(self._counts) <= _FOLDERS and not self.events.pending():
            return  # nothing queued: the usual case, answered without a read
        changes = self.events.changed()
        if changes.everything or len(self._counts) > _FOLDERS:
            self._era += 1
            self._counts.clear()
            self._kept.clear()
            return
        counts = self._counts
        for folder in changes.folders:
            if folder in counts:
                counts[folder] += 1
        for tree in changes.trees:
            for folder in counts:
                if paths.within(folder, tree):
                    counts[folder] += 1
