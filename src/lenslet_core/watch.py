"""Watching a root: changes gathered into waves of folders to index again. A local root has
file-system events; an object store has none, so its root is listed whole on an interval and
each listing compared with the one before (:func:`poll_changes`).

watchfiles (Rust ``notify`` underneath) reports changes; it already groups a burst into one
batch (a batch closes after ``step`` ms without news, or after ``debounce`` ms at most), so
copying 10,000 files becomes a few waves. Each wave is reduced here to the folders whose
manifests must change: a folder is indexed once per wave however many of its files changed.
lenslet's own files (manifests, thumbnails, rollup, health, temp files) are not events;
sidecars are, since another tool may edit tags.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Awaitable, Callable, Iterable

import anyio
import anyio.abc
import anyio.to_thread

from . import paths
from .errors import InvalidPath, LensletError, NotFound, SettingsError
from .gallery import Gallery
from .storage import Storage, Store
from .work import HEALTH, INDEX, ROLLUP, index

__all__ = [
    "Snapshot",
    "Wave",
    "diff_snapshots",
    "plan_wave",
    "poll_changes",
    "watch_changes",
    "watch_gallery",
]

log = logging.getLogger("lenslet")

#: The longest a local watch waits without changes before it hears from its watcher.
_READY_WITHIN_MS = 1000
#: Seconds between two looks for pointer folders followed since watching began.
_POINTERS_CHECKED_EVERY = 2.0

#: What a polling watcher knows of each file: logical path -> (size, mtime).
Snapshot = dict[str, tuple[int, float]]


@dataclasses.dataclass
class Wave:
    """One batch of changes, as work: folders to index again (``folders``), new folders to
    index with everything below them (``new_folders``), paths that may have been folders and
    are gone (``removed``)."""

    changes: int = 0
    folders: set[str] = dataclasses.field(default_factory=set)
    new_folders: set[str] = dataclasses.field(default_factory=set)
    removed: set[str] = dataclasses.field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.folders or self.new_folders or self.removed)

    def mounted_at(self, prefix: str) -> Wave:
        """This wave of a root mounted at the folder ``prefix`` (a pointer folder's target),
        in the logical paths of the gallery it is mounted in."""

        def place(folders: set[str]) -> set[str]:
            return {paths.join(prefix, f) if f else prefix for f in folders}

        return Wave(self.changes, place(self.folders), place(self.new_folders), place(self.removed))


def _counts(name: str) -> bool:
    """Whether a change to a file of this name is news: images, sidecars, pointer configs and
    folders, not lenslet's derived files nor hidden ones."""
    if name == paths.POINTER_NAME:
        return True
    if paths.is_hidden(name) or name.endswith(paths.TEMP_SUFFIX):
        return False
    if paths.is_flat_file(name):
        return name.endswith(paths.SIDECAR_SUFFIX) and paths.image_of(name) is not None
    return True


def plan_wave(root: str, changes: Iterable[tuple[str, str]], under: str = "") -> Wave:
    """Turn ``(kind, absolute path)`` changes (kind ``added``, ``modified`` or ``deleted``)
    below the local folder ``root`` into a :class:`Wave`, keeping folders under ``under``.
    Blocking (it looks at what an added path is): run it off the event loop."""
    wave = Wave()
    for kind, full in changes:
        relative = os.path.relpath(full, root).replace(os.sep, "/")
        if relative == "." or relative.startswith("../"):
            continue
        try:
            logical = paths.normalize(relative)
        except InvalidPath:
            continue  # a name lenslet cannot serve (not UTF-8, ...): the index reports it
        folder, name = paths.split(logical)
        if not _counts(name) or any(paths.is_hidden(part) for part in folder.split("/")):
            continue
        if under and not paths.within(logical, under):
            continue
        wave.changes += 1
        if logical != under:
            wave.folders.add(paths.parent(logical))
        if kind == "added" and os.path.isdir(full):
            wave.new_folders.add(logical)
        elif kind == "deleted" and not paths.is_image_name(logical):
            wave.removed.add(logical)
    # A new folder is indexed with everything below it (its parent for its sub-folder list).
    new = wave.new_folders
    wave.new_folders = {f for f in new if not any(f != o and paths.within(f, o) for o in new)}
    wave.folders -= {f for f in wave.folders for top in wave.new_folders if paths.within(f, top)}
    return wave


async def watch_changes(
    root: str,
    on_wave: Callable[[Wave], Awaitable[None]],
    *,
    under: str = "",
    stop: anyio.Event | None = None,
    debounce_ms: int = 1600,
    step_ms: int = 300,
    ready: anyio.Event | None = None,
) -> None:
    """Watch the local folder ``root`` until ``stop`` is set, handing each wave of changes to
    ``on_wave`` (waves that arrive while it runs are gathered into the next one). ``ready``
    is set once the watcher listens: a change made after that is seen."""
    try:
        import watchfiles
    except ImportError as exc:
        raise SettingsError(
            "watching needs the watchfiles package: pip install 'lenslet-core[watch]'"
        ) from exc

    def keep(change: watchfiles.Change, full: str) -> bool:
        return _counts(os.path.basename(full))

    names = {
        watchfiles.Change.added: "added",
        watchfiles.Change.modified: "modified",
        watchfiles.Change.deleted: "deleted",
    }
    # An empty batch each second without changes: the first one (or the first change) says
    # the watcher runs, which it does from before its first wait.
    async for batch in watchfiles.awatch(
        root,
        watch_filter=keep,
        debounce=debounce_ms,
        step=step_ms,
        stop_event=stop,
        rust_timeout=_READY_WITHIN_MS,
        yield_on_timeout=True,
    ):
        if ready is not None:
            ready.set()
        if not batch:
            continue
        changes = [(names[change], full) for change, full in batch]
        wave = await anyio.to_thread.run_sync(plan_wave, root, changes, under)
        if wave:
            await on_wave(wave)


def diff_snapshots(before: Snapshot, after: Snapshot, under: str = "") -> Wave:
    """The :class:`Wave` that takes the manifests from one listing of files to the next:
    folders whose files were added, changed or removed; folders that appeared (indexed with
    everything below them, their parent for its list of sub-folders) and folders that went."""
    wave = Wave()
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    for logical in changed:
        folder, name = paths.split(logical)
        if not _counts(name) or any(paths.is_hidden(part) for part in folder.split("/")):
            continue
        if under and not paths.within(folder, under):
            continue
        wave.changes += 1
        wave.folders.add(folder)
    had, has = _folders_of(before), _folders_of(after)
    for new in has - had:
        if not any(paths.within(new, other) and new != other for other in has - had):
            wave.new_folders.add(new)
    wave.removed = {f for f in had - has if not under or paths.within(f, under)}
    wave.new_folders = {f for f in wave.new_folders if not under or paths.within(f, under)}
    for folder in wave.new_folders | wave.removed:
        if folder != under:
            wave.folders.add(paths.parent(folder))
    wave.folders -= {f for f in wave.folders for top in wave.new_folders if paths.within(f, top)}
    wave.folders -= wave.removed
    return wave


def _folders_of(snapshot: Snapshot) -> set[str]:
    """Every folder that holds a file of ``snapshot``, with its ancestors (the root is "")."""
    folders = {""}
    for logical in snapshot:
        folder = paths.parent(logical)
        while folder not in folders:
            folders.add(folder)
            folder = paths.parent(folder)
    return folders


async def poll_changes(
    snapshot: Callable[[], Awaitable[Snapshot]],
    on_wave: Callable[[Wave], Awaitable[None]],
    *,
    under: str = "",
    stop: anyio.Event | None = None,
    interval: float = 30.0,
    ready: anyio.Event | None = None,
) -> None:
    """Take a ``snapshot`` of the files every ``interval`` seconds until ``stop`` is set, and
    hand ``on_wave`` what changed between two. The first snapshot is the baseline (an index run
    covers what was there before); ``ready`` is set once it is taken."""
    stop = stop or anyio.Event()
    before = await snapshot()
    if ready is not None:
        ready.set()
    while True:
        with anyio.move_on_after(interval):
            await stop.wait()
        if stop.is_set():
            return
        after = await snapshot()
        wave = diff_snapshots(before, after, under)
        before = after
        if wave:
            await on_wave(wave)


async def watch_gallery(
    gallery: Gallery,
    path: str,
    *,
    stop: anyio.Event | None,
    on_wave: Callable[[Wave], Awaitable[None] | None] | None,
    debounce_ms: int,
    ready: anyio.Event | None = None,
) -> None:
    """Keep ``path`` (and below) of a gallery indexed until ``stop`` is set: each wave of
    changes runs as index jobs (one per folder), and ``on_wave`` is told of each wave once its
    folders are done. The gallery's root is watched by its events (local disk) or listed on
    an interval (anything else), and so is each pointer target as soon as it is followed,
    its changes mapped back to the pointer folder's paths."""
    folder = paths.normalize(path)
    root = gallery.storage.local_root
    await gallery.load_state()

    async def handle(wave: Wave) -> None:
        for changed in wave.folders | wave.new_folders | wave.removed:
            gallery.storage.forget(changed)  # a config written, edited or removed
        for gone in wave.removed:
            gallery.forget(gone)
        for new in sorted(wave.new_folders):
            try:
                await index(gallery, new, recursive=True, save=False)
            except NotFound:
                gallery.forget(new)  # gone again before its turn
            except LensletError:
                continue  # a pointer folder, an unreadable one: its parent's index says
        handles = [await gallery.jobs.submit(gallery.job(INDEX, f)) for f in sorted(wave.folders)]
        for handle in handles:
            await handle.wait()
        log.info("watch: %d changes, %d folders indexed, %d new, %d gone", wave.changes,
                 len(wave.folders), len(wave.new_folders), len(wave.removed))  # fmt: skip
        gallery.feed.publish(wave.folders | wave.new_folders | wave.removed)
        if wave.new_folders or wave.removed:
            await gallery.submit_quietly(ROLLUP)
            await gallery.submit_quietly(HEALTH)
        if on_wave is not None:
            awaited = on_wave(wave)
            if awaited is not None:
                await awaited

    stop = stop or anyio.Event()
    every = gallery.settings.watch_interval

    async def watch_one(storage: Store, prefix: str) -> None:
        """Watch one root: the gallery's (``prefix`` "") or a pointer's target mounted at
        ``prefix``: a local one by its events, any other by listing it on an interval."""
        under = folder if not prefix else ""
        listening = ready if not prefix else None

        async def placed(wave: Wave) -> None:
            await handle(wave.mounted_at(prefix) if prefix else wave)

        local = storage.local_root if prefix else root
        if local is not None:
            await watch_changes(
                local, placed, under=under, stop=stop, debounce_ms=debounce_ms, ready=listening
            )
            return

        async def snapshot() -> Snapshot:
            return await storage.files(under)

        await poll_changes(
            snapshot, placed, under=under, stop=stop, interval=every, ready=listening
        )

    async def watch_target(target: Storage, prefix: str) -> None:
        """A pointer target's watch: its trouble (an outage of its S3) is logged and the
        watch tried again later; it never ends the gallery's own watch."""
        while not stop.is_set():
            try:
                await watch_one(target, prefix)
                return
            except LensletError as exc:
                log.warning("watching pointer %r (%s): %s", prefix, target.url, exc.message)
            with anyio.move_on_after(every):
                await stop.wait()

    async def watch_targets(tg: anyio.abc.TaskGroup) -> None:
        """Pointer targets are watched too, each mapped back to its pointer folder's
        logical paths, as soon as a listing or an index run has followed the pointer."""
        watched: set[tuple[str, str]] = set()
        while not stop.is_set():
            for prefix, target in gallery.storage.mounted():
                inside = paths.within(prefix, folder)
                if (prefix, target.url) not in watched and inside:
                    watched.add((prefix, target.url))
                    tg.start_soon(watch_target, target, prefix)
            with anyio.move_on_after(_POINTERS_CHECKED_EVERY):
                await stop.wait()

    failed: list[LensletError] = []

    async def watch_root(tg: anyio.abc.TaskGroup) -> None:
        try:
            await watch_one(gallery.storage, "")
        except LensletError as exc:
            failed.append(exc)  # raised as itself below, not inside an exception group
        tg.cancel_scope.cancel()  # the gallery's watch ended: its targets' watches end too

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch_root, tg)
        tg.start_soon(watch_targets, tg)
    if failed:
        raise failed[0]
