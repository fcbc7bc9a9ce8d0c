"""An index run's walk: list each folder of a tree once, with its manifest files, and hand each
folder on as soon as it can be built — when it and its sub-folders are listed (their listings
give their kinds) — while the rest of the tree is still being listed.

On local disk the listing is one thread of stat calls; the building is Python on the event loop.
Handing folders on as they are ready lets the two overlap, where a walk of the whole tree first
would leave one of them idle (an unchanged re-index of 500,000 images: 2.7 s of walk, then
1.5 s of folders). What an index run asks of every entry (the signed rows, the image count) is
made in the listing's own thread hop (:meth:`ListedFolder.of`): the event loop then has less
Python to run while the listing thread wants the GIL back after each stat. On S3, where each
listing and each read is a round trip, a folder's manifest files are read while its
sub-folders are listed.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import anyio
import anyio.abc

from . import paths
from .build import folder_kind
from .errors import LensletError, PointerError
from .index_report import IndexProgress, IndexReport
from .manifest import DirKind, Skipped
from .signature import signed_rows
from .storage import Contents, Entry, Store

__all__ = ["WALK_CONCURRENCY", "ListedFolder", "walk"]

#: Folders being listed at once. Each storage bounds its own listing threads (one on local
#: disk, where more only contend for the GIL; ``io_concurrency`` on S3), so a local root with
#: pointers into S3 still lists the S3 folders side by side.
WALK_CONCURRENCY = 16


@dataclasses.dataclass
class ListedFolder:
    """A folder as the walk found it, ready to be built."""

    path: str
    entries: list[Entry]
    child_kinds: dict[str, DirKind]
    #: The folder's manifest files as read with its listing (dropped once processed).
    manifests: Contents
    #: When the listing was taken (epoch seconds).
    listed_at: float = 0.0
    #: How many of its entries are named like images.
    images: int = 0
    #: The entries' :func:`signed_rows`, made where they were listed (``None``: not made).
    rows: bytes | None = None

    @classmethod
    def of(
        cls,
        path: str,
        entries: list[Entry],
        manifests: Contents,
        listed_at: float,
    ) -> ListedFolder:
        """A folder from its listing, with what is made of each of its entries (the
        sub-folders' kinds are added when they are listed): the signed rows only where there
        is a manifest to compare them with (not for a walk that reads none)."""
        images = sum(map(paths.is_image_name, [e.name for e in entries]))
        rows = signed_rows(entries) if manifests else None
        return cls(path, entries, {}, manifests, listed_at, images, rows)

    def relisted(self, entries: list[Entry], at: float | None = None) -> None:
        """The folder listed again: what was made of the old entries goes with them."""
        self.entries, self.rows = entries, None
        if at is not None:
            self.listed_at = at


async def walk(
    storage: Store,
    start: str,
    recursive: bool,
    report: IndexReport,
    progress: IndexProgress,
    tell: Callable[[], None],
    ready: Callable[[ListedFolder], None],
    *,
    contents: bool = True,
    concurrency: int = WALK_CONCURRENCY,
) -> None:
    """List ``start`` and the folders below it, each once, and call ``ready`` with each folder
    to index once its sub-folders are listed too (a folder's sub-folders are listed for their
    kinds even when the walk does not go into them). ``contents``: with each folder's
    manifest files read in the same pass. Raises what listing ``start`` raised; any other
    folder that cannot be listed is reported in ``report.skipped``."""
    listings: dict[str, list[Entry]] = {}
    #: Folders listed, to index, by path: how many of their sub-folders are still unlisted
    #: (those that have any), and the folders as listed.
    waiting: dict[str, int] = {}
    found: dict[str, ListedFolder] = {}
    failed: list[LensletError] = []
    limiter = anyio.Semaphore(concurrency)
    # Elsewhere than on local disk a listing and each read are round trips of their own: a
    # folder's manifest files are read while its sub-folders are listed, not before (on S3 a
    # tree's depth then costs one round trip a level, not two).
    apart = storage.local_root is None

    def hand_on(path: str) -> None:
        folder = found.pop(path)
        for entry in folder.entries:
            if entry.kind == "dir" and (child := paths.join(path, entry.name)) in listings:
                folder.child_kinds[entry.name] = folder_kind(listings[child])
        progress.images_total += folder.images
        ready(folder)

    def listed(parent: str | None) -> None:
        """One more of what ``parent`` waits for is done: a sub-folder listed (or found
        unlistable), or its own manifest files read."""
        if parent is None or parent not in waiting:
            return
        waiting[parent] -= 1
        if waiting[parent] == 0:
            del waiting[parent]
            hand_on(parent)

    async def visit(
        folder: str, descend: bool, parent: str | None, tg: anyio.abc.TaskGroup
    ) -> None:
        started = time.time()

        def made(entries: list[Entry], manifests: Contents) -> ListedFolder:
            return ListedFolder.of(folder, entries, manifests, started)

        this: ListedFolder | None = None
        try:
            async with limiter:
                if descend and contents and apart:
                    entries = await storage.list(folder)
                elif descend and contents:
                    # Thumbnails by name only: an unchanged folder needs no more of them (a
                    # stat each, half the entries of a gallery); one that changed is listed
                    # again, whole, before it is built.
                    this = await storage.list_with_contents(
                        folder, paths.is_manifest_name, made, names_only=paths.is_thumbnail_name
                    )
                    entries = this.entries
                else:
                    entries = await storage.list(folder)
                    this = made(entries, {})
        except LensletError as exc:
            if isinstance(exc, PointerError):
                listings[folder] = [Entry(paths.POINTER_NAME, "file")]  # a pointer, if broken
            if folder == start:
                failed.append(exc)  # the folder asked for is not there (or not readable)
            elif descend:
                report.skipped.append(Skipped(folder or "/", exc.message, exc.code, error=exc))
            listed(parent)
            return
        listings[folder] = entries
        listed(parent)
        if not descend:
            return
        progress.folders_total += 1
        progress.current = folder  # the label follows the walk ...
        tell()
        # Unusable images are reported with their folder; other files are ignored.
        children = []
        for entry in [e for e in entries if e.kind == "dir" and e.name[0] != "."]:
            child = paths.join(folder, entry.name)
            if entry.problem is None:
                children.append(child)
            else:
                report.skipped.append(Skipped(child, entry.problem, "unusable_entry"))
        if this is not None:
            found[folder] = this
            if not children:
                hand_on(folder)
                return
        # Handed on once its sub-folders are listed (and, read apart, its manifest files).
        waiting[folder] = len(children) + (this is None)  # before any of them is listed
        for child in children:
            tg.start_soon(visit, child, recursive, folder, tg)
        if this is None:
            manifests = await _read_manifests(storage, folder, entries)
            found[folder] = await anyio.to_thread.run_sync(made, entries, manifests)
            listed(folder)

    async with anyio.create_task_group() as tg:
        tg.start_soon(visit, start, True, None, tg)
    if failed:
        raise failed[0]
    progress.listed = True  # the totals are final
    tell()


async def _read_manifests(storage: Store, folder: str, entries: list[Entry]) -> Contents:
    """The manifest files of a folder's listing, read concurrently; each that cannot be read
    maps to its error."""
    names = [e.name for e in entries if e.is_file and paths.is_manifest_name(e.name)]
    contents: Contents = dict.fromkeys(names, b"")  # in the listing's order

    async def read(name: str) -> None:
        try:
            contents[name] = await storage.read(paths.join(folder, name))
        except LensletError as exc:
            contents[name] = exc

    async with anyio.create_task_group() as tg:
        for name in names:
            tg.start_soon(read, name)
    return contents
