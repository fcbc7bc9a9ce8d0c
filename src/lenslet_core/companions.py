"""An image file with its companions — the files lenslet keeps for it: add one, move one,
delete one, its sidecar and its thumbnail going where the image goes (in storage; what the
gallery makes of such a change is :mod:`images`).

Nothing here replaces an existing file unless asked: a new image is created only where there is
none, and a move never lands on an existing image, sidecar or thumbnail unless ``overwrite`` says
so (then the image there is deleted with its sidecar and thumbnail first, as by a delete).

A move is several file moves (the image, then its sidecar and thumbnail), so it first writes an
intent beside the image (``.lenslet-move-*.json``: from where, to where) and deletes it when
done. A process killed in between leaves the intent, and the next index run of that folder
finishes the move (:func:`finish_moves`): the image decides — where it is, its sidecar and
thumbnail go too. An image is never separated from its tags.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import time
from collections.abc import Sequence

from . import paths, sidecar
from .backend import entry_name
from .codec import VERSION, dumps, loads
from .errors import AlreadyExists, LensletError, NotFound
from .imaging import Imaging
from .storage import Entry, Store
from .thumbnails import ThumbnailStore

__all__ = [
    "INTENT_PREFIX",
    "create_image",
    "delete_image",
    "finish_moves",
    "move_image",
    "remove_stale_temp_files",
]

#: Names of move intents (hidden: listings and the indexer skip them).
INTENT_PREFIX = ".lenslet-move-"
INTENT_SUFFIX = ".json"
#: An intent younger than this may belong to a move still under way.
INTENT_GRACE = 10.0
_COMPANIONS = (paths.sidecar_name, paths.thumbnail_name)


async def create_image(
    storage: Store, imaging: Imaging, image: str, data: bytes, *, overwrite: bool = False
) -> None:
    """Store a new image at ``image`` (a logical image path), atomically, after checking that
    its content is a JPEG, PNG or WebP lenslet can read (corrupt files and pixel bombs are
    refused before anything is written)."""
    await storage.ensure_writable(image)
    await imaging.analyze(data)
    if overwrite:
        await storage.write(image, data)
    else:
        await storage.create(image, data)


async def move_image(
    storage: Store,
    thumbs: ThumbnailStore,
    image: str,
    target: str,
    *,
    overwrite: bool = False,
) -> None:
    """Move an image, then its sidecar and thumbnail if it has them. Refuses a target where an
    image, sidecar or thumbnail already is, before moving anything, unless ``overwrite``."""
    await storage.info(image)  # NotFound first, not half a move
    if image == target:
        return
    thumbs.recent.forget(image)
    thumbs.recent.forget(target)
    companions = _COMPANIONS
    if overwrite:
        await storage.ensure_writable(image)
        with contextlib.suppress(NotFound):
            await delete_image(storage, thumbs, target)
        for companion in companions:  # strays of an image that was already gone
            await storage.delete(companion(target))
    for name in [target, *(f(target) for f in companions)]:
        try:
            await storage.info(name)
        except NotFound:
            continue
        raise AlreadyExists(f"{name!r} already exists; nothing was moved", path=name)
    intent = paths.join(
        paths.parent(image), f"{INTENT_PREFIX}{secrets.token_hex(8)}{INTENT_SUFFIX}"
    )
    document = {"v": VERSION, "src": image, "dest": target, "at": time.time_ns()}
    await storage.write(intent, dumps(document))
    await storage.move(image, target)
    await _bring_companions(storage, image, target)
    if thumbs.cache is not None:
        with contextlib.suppress(LensletError):  # a missing one is made again on request
            await thumbs.cache.move(paths.thumbnail_name(image), paths.thumbnail_name(target))
    await storage.delete(intent)


async def _bring_companions(storage: Store, image: str, target: str) -> None:
    """Move an image's sidecar and thumbnail after it (those still there, where none is)."""
    for companion in _COMPANIONS:
        try:
            await storage.move(companion(image), companion(target))
        except (NotFound, AlreadyExists):
            continue


async def _exists(storage: Store, path: str) -> bool:
    try:
        await storage.info(path)
    except NotFound:
        return False
    return True


@dataclasses.dataclass(frozen=True)
class _Intent:
    path: str
    source: str
    target: str
    at: float  # when it was written (ns; its file's mtime for an intent that does not say)
    mtime: float

    def touches(self, other: _Intent) -> bool:
        return bool({self.source, self.target} & {other.source, other.target})


async def _intents(storage: Store, folder: str, entries: Sequence[Entry]) -> list[_Intent]:
    """The move intents in a folder's listing, read (unreadable ones left for a later run)."""
    found: list[_Intent] = []
    if not _named(INTENT_PREFIX, entries):
        return found
    for entry in entries:
        name = entry.name
        if not (name.startswith(INTENT_PREFIX) and name.endswith(INTENT_SUFFIX)):
            continue
        if not entry.is_file:
            continue
        intent = paths.join(folder, name)
        try:
            document = loads(await storage.read(intent), what=intent)
            source = paths.item_path(str(document.get("src", "")))
            target = paths.item_path(str(document.get("dest", "")))
        except LensletError:
            continue
        at = document.get("at")
        when = float(at) if isinstance(at, int) else entry.mtime * 1e9
        found.append(_Intent(intent, source, target, when, entry.mtime))
    return found


async def finish_moves(storage: Store, folder: str, entries: Sequence[Entry]) -> int:
    """Finish the moves a killed process left half done in ``folder`` (their intents are in
    its listing ``entries``): where the image went, its sidecar and thumbnail follow; an image
    that never left needs nothing. Returns how many intents it settled.

    Of the intents left for one image (in this folder and in the folder at the other end of
    each), only the last written is acted on: an earlier move was done (or refused) before the
    next began, and acting on it after a later one could move or delete what that one left."""
    if not storage.writable(folder):
        return 0
    settled = 0
    cutoff = time.time() - INTENT_GRACE
    mine = await _intents(storage, folder, entries)
    if not mine:
        return 0
    others: list[_Intent] = []
    for there in sorted({paths.parent(i.target) for i in mine} - {folder}):
        with contextlib.suppress(LensletError):
            others += await _intents(storage, there, await storage.list(there))
    for intent in sorted(mine, key=lambda i: i.at):
        if intent.mtime > cutoff:
            continue  # a move that may still be under way
        try:
            later = [o for o in [*mine, *others] if o.at > intent.at and o.touches(intent)]
            if not later:
                await _settle(storage, intent)
            await storage.delete(intent.path)
        except LensletError:
            continue  # refused: tried again by the next run
        settled += 1
    return settled


async def _settle(storage: Store, intent: _Intent) -> None:
    source, target = intent.source, intent.target
    left, arrived = await _exists(storage, source), await _exists(storage, target)
    if left and arrived and await _drop_copy(storage, source, target):
        left = False
    if arrived and not left:  # the image went: its sidecar and thumbnail follow
        for companion in _COMPANIONS:
            await _finish_move(storage, companion(source), companion(target))
    # Else it never left, or another image is at the target: each file stays as it is.


async def _finish_move(storage: Store, source: str, target: str) -> None:
    """Move one companion after its image (different bytes already at the target are left
    as they are: health lists the one beside no image)."""
    try:
        await storage.move(source, target)
    except NotFound:
        return  # it went already, or the image never had one
    except AlreadyExists:
        with contextlib.suppress(NotFound):
            await _drop_copy(storage, source, target)


async def _drop_copy(storage: Store, source: str, target: str) -> bool:
    """Finish a file's move cut between its arrival and its leaving (a hard link made, or a
    copy between storages written): with the same bytes in both places, only the leaving is
    left to do. Whether it did so. A sidecar that the target folder's index has brought up to
    date since (its EXIF basics and hash) is still the same one."""
    first, second = await storage.read(source), await storage.read(target)
    same = sidecar.same_but_derived if source.endswith(paths.SIDECAR_SUFFIX) else bytes.__eq__
    if not same(first, second):
        return False
    await storage.delete(source)
    return True


async def delete_image(storage: Store, thumbs: ThumbnailStore, image: str) -> None:
    """Delete an image with its thumbnail and sidecar. The sidecar goes last: a delete cut
    short leaves at worst an orphan sidecar (health lists it), never an image without its
    tags."""
    await storage.info(image)
    thumbs.recent.forget(image)
    await storage.delete(paths.thumbnail_name(image))
    if thumbs.cache is not None:
        with contextlib.suppress(LensletError):
            await thumbs.cache.delete(paths.thumbnail_name(image))
    await storage.delete(image)
    await storage.delete(paths.sidecar_name(image))


async def remove_stale_temp_files(storage: Store, folder: str, entries: Sequence[Entry]) -> int:
    """Delete what a killed writer left in ``folder``: temp files of atomic writes, found in
    its listing ``entries``, that no live writer still owns (see ``remove_abandoned``).
    Returns how many it removed."""
    if not storage.writable(folder) or not _named(paths.TEMP_SUFFIX, entries):
        return 0
    removed = 0
    for entry in entries:
        if entry.name.endswith(paths.TEMP_SUFFIX) and entry.is_file:
            try:
                removed += await storage.remove_abandoned(paths.join(folder, entry.name))
            except LensletError:
                continue  # gone already (its writer finished), or not ours to remove
    return removed


def _named(part: str, entries: Sequence[Entry]) -> bool:
    """Whether ``part`` is in any entry's name: one scan of the names joined, before a loop
    over a listing for files that are nearly never there (temp files, move intents)."""
    return part in "/".join(map(entry_name, entries))
