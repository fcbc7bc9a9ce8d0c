"""Watching a local root: file-system events, gathered into waves of folders to index again.

watchfiles (Rust ``notify`` underneath) reports changes; it already groups a burst into one
batch (a batch closes after ``step`` ms without news, or after ``debounce`` ms at most), so
copying 10,000 files becomes a few waves. Each wave is reduced here to the folders whose
manifests must change: a folder is indexed once per wave however many of its files changed.
lenslet's own files (manifests, thumbnails, rollup, health, temp files) are not events;
sidecars are, since another tool may edit tags.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Awaitable, Callable, Iterable

import anyio
import anyio.to_thread

from . import paths
from .errors import InvalidPath, SettingsError

__all__ = ["Wave", "plan_wave", "watch_changes"]


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
    prefix = under + "/" if under else ""
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
        if under and logical != under and not logical.startswith(prefix):
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
    wave.new_folders = {f for f in new if not any(f != o and _below(f, o) for o in new)}
    wave.folders -= {f for f in wave.folders for top in wave.new_folders if _below(f, top)}
    return wave


def _below(folder: str, ancestor: str) -> bool:
    return folder == ancestor or folder.startswith(ancestor + "/")


async def watch_changes(
    root: str,
    on_wave: Callable[[Wave], Awaitable[None]],
    *,
    under: str = "",
    stop: anyio.Event | None = None,
    debounce_ms: int = 1600,
    step_ms: int = 300,
) -> None:
    """Watch the local folder ``root`` until ``stop`` is set, handing each wave of changes to
    ``on_wave`` (waves that arrive while it runs are gathered into the next one)."""
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
    async for batch in watchfiles.awatch(
        root, watch_filter=keep, debounce=debounce_ms, step=step_ms, stop_event=stop
    ):
        changes = [(names[change], full) for change, full in batch]
        wave = await anyio.to_thread.run_sync(plan_wave, root, changes, under)
        if wave:
            await on_wave(wave)
