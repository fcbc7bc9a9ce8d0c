"""The search rollup: ``_rollup.json`` at the root, every image with its tags and notes.

:class:`Rollup` holds it in memory and keeps it in step incrementally: a folder that was indexed
replaces that folder's images (reading only the sidecars that are new or changed: their size and
mtime in the listing differ from those the rollup read), a sidecar written through lenslet
replaces one image. Saving is a conditional write of the whole file: when another process saved
in between, its file is read back and this process's pending changes are applied on top, so
neither loses the other's changes.

Each folder also keeps the signature of what its images were last taken from (its manifest's
build and every sidecar's size and mtime), so a run that finds the same again skips the
folder without looking at its images.

``generatedAt`` is the rollup's basis: when the last full index run of the root started. It is
what decides for images whose sidecar stamp is unknown (a rollup written before stamps): a
sidecar last modified before it is reflected in the file.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import anyio
import anyio.to_thread
import orjson
from blake3 import blake3

from . import paths
from .codec import VERSION, dumps, format_time, loads, parse_time
from .errors import DocumentError, LensletError, MalformedDocument, NotFound
from .manifest import ItemEntry
from .sidecar import Sidecar, read_sidecar
from .storage import Entry, Store, retry_on_conflict

__all__ = ["Rollup", "RollupItem", "decode_rollup", "encode_rollup", "folder_signature"]


@dataclasses.dataclass(frozen=True)
class RollupItem:
    """One image in ``_rollup.json``: what search matches on. ``stamp`` is the size and mtime
    of the sidecar its tags and notes were read from (stored, never shown to clients), so a
    sidecar replaced by an older copy (``rsync -a``) is still seen as changed."""

    path: str
    name: str
    tags: tuple[str, ...] = ()
    notes: str = ""
    stamp: tuple[int, float] | None = dataclasses.field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "name": self.name, "tags": list(self.tags), "notes": self.notes}

    def to_stored_json(self) -> dict[str, Any]:
        document = self.to_json()
        if self.stamp is not None:
            document["stamp"] = list(self.stamp)
        return document

    @classmethod
    def of(
        cls, path: str, sidecar: Sidecar | None = None, stamp: tuple[int, float] | None = None
    ) -> RollupItem:
        """The rollup's entry for the image at ``path``: its sidecar's tags and notes (none
        without one), read from a sidecar file of size and mtime ``stamp``."""
        name = paths.split(path)[1]
        if sidecar is None:
            return cls(path, name, stamp=stamp)
        return cls(path, name, sidecar.tags, sidecar.notes, stamp)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RollupItem:
        # Read 500,000 times when a large gallery's rollup is loaded: the common case (no
        # tags, no notes) takes the shortest path.
        tags = data.get("tags") or ()
        if tags and (
            not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags)
        ):
            raise TypeError("tags must be a list of strings")
        notes = data.get("notes") or ""
        if not isinstance(notes, str):
            raise TypeError("notes must be a string")
        raw = data.get("stamp")
        stamp = None
        if isinstance(raw, list) and len(raw) == 2:
            stamp = (int(raw[0]), float(raw[1]))
        return cls(str(data["path"]), str(data["name"]), tuple(tags), notes, stamp)


#: Bumped when a rollup item gains a field: a rollup written before is taken as it is for
#: searching, but without its shortcuts (sidecar stamps, folder signatures, basis), so the next
#: index run reads every sidecar again and fills the new field in.
ITEM_FIELDS = 1


def encode_rollup(
    items: Iterable[RollupItem],
    generated_at: str,
    folders: Mapping[str, str] | None = None,
) -> bytes:
    """``{v, generatedAt, items: [{path, name, tags, notes}], folders: {path: signature}}``
    (``folders``: what each folder's items were last taken from, its manifest build and
    sidecars, see :meth:`Rollup.update_folder`)."""
    document: dict[str, Any] = {
        "v": VERSION,
        "itemFields": ITEM_FIELDS,
        "generatedAt": generated_at,
        "items": [item.to_stored_json() for item in items],
    }
    if folders:
        document["folders"] = dict(folders)
    return dumps(document)


def decode_rollup(
    data: bytes, *, what: str = "rollup"
) -> tuple[list[RollupItem], str, dict[str, str]]:
    """The items of a rollup document, when it was generated and its folders' signatures."""
    document = loads(data, what=what)
    try:
        items = [RollupItem.from_json(item) for item in document.get("items", ())]
        # Only a shortcut for later runs: when it is not a map of strings it is left out.
        folders = document.get("folders")
        signatures = (
            {k: v for k, v in folders.items() if isinstance(v, str)}
            if isinstance(folders, dict)
            else {}
        )
        if document.get("itemFields", 1) != ITEM_FIELDS:  # written before an item field
            items = [dataclasses.replace(item, stamp=None) for item in items]
            return items, "", {}
        return items, str(document.get("generatedAt", "")), signatures
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise MalformedDocument(f"{what} does not have the rollup shape: {exc}") from exc


#: Sidecars modified this close to the basis time are read again (coarse mtime clocks).
_MTIME_SLACK = 2.0
#: Attempts of a save that keeps meeting other writers.
_SAVE_ATTEMPTS = 5

Folders = dict[str, dict[str, RollupItem]]
#: Each folder's images, when the rollup was generated, and each folder's signature.
Decoded = tuple[Folders, str, dict[str, str]]


def _group(items: Iterable[RollupItem]) -> Folders:
    folders: Folders = {}
    # Items come sorted by path, so a folder's images are usually next to each other.
    folder, names = None, {}
    for item in items:
        parent = item.path.rpartition("/")[0]
        if parent != folder:
            folder, names = parent, folders.setdefault(parent, {})
        names[item.name] = item
    return folders


def _decode(data: bytes) -> Decoded:
    items, generated, signatures = decode_rollup(data)
    return _group(items), generated, signatures


def _decode_or_error(data: bytes) -> Decoded | DocumentError:
    """The rollup decoded, or why it cannot be (derived data: it is then rebuilt)."""
    try:
        return _decode(data)
    except DocumentError as exc:
        return exc


def _encode(parts: list[list[RollupItem]], generated_at: str, signatures: dict[str, str]) -> bytes:
    return encode_rollup(_sorted(parts), generated_at, signatures)


def folder_signature(manifest: str, entries: Sequence[Entry]) -> str:
    """What a folder's images in the rollup were taken from: its manifest's build key (see
    :meth:`Rollup.update_folder`) with its sidecars' sizes and mtimes from its listing."""
    sidecars = sorted(
        (e.name, e.size, e.mtime)
        for e in entries
        if e.name.endswith(paths.SIDECAR_SUFFIX) and paths.image_of(e.name) is not None
    )
    return blake3(orjson.dumps([manifest, sidecars])).hexdigest(length=16)


def _every_folder(folders: Folders, signatures: Mapping[str, str]) -> dict[str, str]:
    return {folder: signatures.get(folder, "") for folder in {*folders, *signatures}}


def _sorted(parts: list[list[RollupItem]]) -> list[RollupItem]:
    every = [item for part in parts for item in part]
    every.sort(key=lambda item: item.path)
    return every


class Rollup:
    """One root's rollup, in memory. Not thread-safe: use it from one event loop (the heavy
    parts, decoding, sorting and encoding, run in worker threads)."""

    def __init__(self, storage: Store) -> None:
        self.storage = storage
        self._folders: Folders = {}
        #: Epoch seconds of the basis (``None``: unknown, every sidecar must be read).
        self.basis: float | None = None
        #: Bumped by every change.
        self.version = 0
        #: Bumped when the rollup is replaced whole (read from storage again).
        self.generation = 0
        self._recent: dict[str, RollupItem | None] = {}
        self._etag: str | None = None
        #: (size, mtime) of ``_rollup.json`` as last read or written, to tell a newer one.
        self._seen: tuple[int, float] | None = None
        self._pending: dict[str, RollupItem | None] = {}
        #: When each image was last edited through :meth:`edit` (epoch seconds).
        self._edited: dict[str, float] = {}
        self._save_lock = anyio.Lock()
        self.loaded = False
        #: Per folder, the signature of what its images were taken from (see
        #: :meth:`update_folder`).
        self._signatures: dict[str, str] = {}
        #: Bumped when signatures change without an image changing (a save records them);
        #: the saved ones are those of ``_signed_saved``.
        self._signed = 0
        self._signed_saved = 0
        #: Every folder of ``_rollup.json`` as last read or written, with its signature
        #: (``""``: none), for :meth:`stored_state`.
        self._stored: dict[str, str] = {}

    def __len__(self) -> int:
        return sum(len(names) for names in self._folders.values())

    @property
    def stored(self) -> bool:
        """Whether storage had a ``_rollup.json`` when it was last read or written."""
        return self._seen is not None

    @property
    def dirty(self) -> bool:
        """Whether there are changes not yet saved."""
        return bool(self._pending) or self._signed != self._signed_saved

    def parts(self) -> list[list[RollupItem]]:
        """Every image, folder by folder, unsorted: a snapshot cheap enough for the event loop
        (sort it in a worker thread)."""
        return [list(names.values()) for names in self._folders.values()]

    # -- reading -------------------------------------------------------------------------------

    async def load(self) -> None:
        """Read ``_rollup.json``; a missing or unreadable one leaves the rollup empty, with no
        basis (its folders' sidecars will all be read). Changes not yet saved stay applied."""
        try:
            seen = await self._stat()
            # Decoded (and grouped) in the thread that reads it: one hop, off the loop.
            # The version is the storage's own (S3's ETag), which a conditional save expects.
            decoded, etag = await self.storage.read_versioned_into(
                paths.ROLLUP_NAME, _decode_or_error
            )
        except NotFound:
            self._reset({}, {}, None, None, None)
            return
        if isinstance(decoded, DocumentError):
            self._reset({}, {}, None, etag, seen)  # derived data: rebuilt and overwritten
            return
        folders, generated, signatures = decoded
        moment = parse_time(generated)
        basis = moment.timestamp() if moment is not None else None
        self._reset(folders, signatures, basis, etag, seen)

    def _reset(
        self,
        folders: Folders,
        signatures: dict[str, str],
        basis: float | None,
        etag: str | None,
        seen: tuple[int, float] | None,
    ) -> None:
        self._folders = folders
        self._signatures = signatures
        self._stored = _every_folder(folders, signatures)
        self._signed_saved = self._signed
        self.basis = basis
        self._etag = etag
        self._seen = seen
        self.loaded = True
        self.version += 1
        self.generation += 1
        self._recent = {}
        # What this process changed and has not saved goes on top of what was read, as it is
        # now (edits made while the file was being read included).
        for path, item in self._pending.items():
            self._signatures.pop(paths.parent(path), None)
            if item is None:
                self._drop(path)
            else:
                self._folders.setdefault(paths.parent(path), {})[item.name] = item

    def stored_state(self) -> dict[str, Any] | None:
        """What an index run needs to know of ``_rollup.json`` without reading it: its size and
        mtime as last read or written here, and every folder in it with its signature (see
        :func:`folder_signature`). ``None`` before it was read, or when there is none."""
        if not self.loaded or self._seen is None:
            return None
        return {"stamp": list(self._seen), "folders": dict(self._stored)}

    async def stored_stamp(self) -> tuple[int, float] | None:
        """The size and mtime of ``_rollup.json`` now (``None``: there is none): one metadata
        request, to tell whether a :meth:`stored_state` still describes it."""
        return await self._stat()

    async def _stat(self) -> tuple[int, float] | None:
        try:
            entry = await self.storage.info(paths.ROLLUP_NAME)
        except NotFound:
            return None
        return (entry.size, entry.mtime)

    async def refresh(self) -> None:
        """Read the stored rollup again if another process saved a newer one (told by its
        size and mtime: one metadata request), keeping this rollup's unsaved changes on top."""
        if await self._stat() != self._seen:
            await self.load()

    # -- changes -------------------------------------------------------------------------------

    def drain(self) -> dict[str, RollupItem | None]:
        """The images changed (``None``: removed) since the last drain or reload."""
        recent, self._recent = self._recent, {}
        return recent

    def set_item(self, item: RollupItem) -> None:
        folder = paths.parent(item.path)
        existing = self._folders.get(folder, {}).get(item.name)
        if existing == item and existing.stamp == item.stamp:
            return
        self._signatures.pop(folder, None)
        self._folders.setdefault(folder, {})[item.name] = item
        self._pending[item.path] = item
        self._recent[item.path] = item
        self.version += 1

    def edit(self, item: RollupItem) -> None:
        """An image's tags or notes as just written through lenslet: newer than any listing
        an index run took before now."""
        self._edited[item.path] = time.time()
        self.set_item(item)

    def remove(self, path: str) -> None:
        if not self._drop(path):
            return
        self._pending[path] = None
        self._recent[path] = None
        self.version += 1

    def _drop(self, path: str) -> bool:
        folder, name = paths.split(path)
        names = self._folders.get(folder)
        if names is None or names.pop(name, None) is None:
            return False
        self._signatures.pop(folder, None)
        if not names:
            del self._folders[folder]
        return True

    async def update_folder(
        self,
        folder: str,
        entries: Sequence[Entry],
        items: Sequence[ItemEntry],
        listed_at: float,
        manifest: str = "",
        *,
        sidecars: Mapping[str, Sidecar] | None = None,
    ) -> None:
        """Make ``folder``'s images those of its new manifest (``items``), from its listing
        taken at ``listed_at``: sidecars are read only when new or changed and not among
        ``sidecars`` (read after that listing), and an image edited through lenslet since
        keeps its edit. ``manifest``, the key of the manifest's build, with the sidecars'
        stamps tells a folder already taken from this build and these sidecars: left as is."""
        signature = folder_signature(manifest, entries) if manifest else ""
        if signature and self._signatures.get(folder) == signature:
            return
        listed = {e.name: e for e in entries}
        old = self._folders.get(folder, {})
        fresh: dict[str, RollupItem] = {}
        to_read: list[tuple[ItemEntry, Entry]] = []
        for item in items:
            path = paths.join(folder, item.name)
            known = old.get(item.name)
            sidecar = listed.get(paths.sidecar_name(item.name))
            if known is not None and self._edited.get(path, 0.0) > listed_at:
                fresh[item.name] = known  # the listing is older than the edit
            elif not item.hasMeta or sidecar is None or not sidecar.is_file:
                fresh[item.name] = RollupItem.of(path)
            elif known is not None and not self._changed(known, sidecar):
                stamp = (sidecar.size, sidecar.mtime)
                fresh[item.name] = (
                    known if known.stamp == stamp else dataclasses.replace(known, stamp=stamp)
                )
            else:
                to_read.append((item, sidecar))

        async def read(item: ItemEntry, entry: Entry) -> None:
            path = paths.join(folder, item.name)
            sidecar = (sidecars or {}).get(item.name)
            if sidecar is None:
                try:
                    stored = await read_sidecar(self.storage, path)
                except LensletError:
                    stored = None  # unreadable or malformed: searchable by name until fixed
                sidecar = stored[0] if stored is not None else None
            if sidecar is None:
                fresh[item.name] = RollupItem.of(path)
            else:
                fresh[item.name] = RollupItem.of(path, sidecar, (entry.size, entry.mtime))

        async with anyio.create_task_group() as tg:
            for item, entry in to_read:
                tg.start_soon(read, item, entry)
        old = self._folders.get(folder, {})  # as it is now, after the reads
        for name in old.keys() - fresh.keys():
            path = paths.join(folder, name)
            if self._edited.get(path, 0.0) > listed_at:
                continue  # put here after the listing was taken (moved in, tagged): kept
            self.remove(path)
        for name, found in fresh.items():
            path = paths.join(folder, name)
            if self._edited.get(path, 0.0) > listed_at and name in old:
                continue  # edited while its sidecar was being read
            self.set_item(found)
        if signature:
            self._signatures[folder] = signature
            self._signed += 1

    def prune(self, under: str, keep: Iterable[str], keep_below: Iterable[str] = ()) -> None:
        """Forget images of folders under ``under`` (itself included) that are not in
        ``keep`` nor below a folder of ``keep_below``: folders a recursive index run no longer
        found (as opposed to folders it could not read)."""
        kept = set(keep)
        for folder in set(self._folders) | set(self._signatures):
            if folder in kept or not paths.within(folder, under):
                continue
            if any(paths.within(folder, shelter) for shelter in keep_below):
                continue
            for name in list(self._folders.get(folder, {})):
                self.remove(paths.join(folder, name))
            if self._signatures.pop(folder, None) is not None:
                self._signed += 1

    def _changed(self, known: RollupItem, sidecar: Entry) -> bool:
        if known.stamp is not None:
            return known.stamp != (sidecar.size, sidecar.mtime)
        return self.basis is None or sidecar.mtime >= self.basis - _MTIME_SLACK

    # -- saving --------------------------------------------------------------------------------

    async def save(self, *, basis: float | None = None) -> bool:
        """Write ``_rollup.json`` if anything changed since it was read or written (``basis``:
        a new basis time, after a run that read every sidecar changed since the old one): a
        conditional write that, when another process saved first, reads theirs and applies
        this rollup's pending changes on top. Returns whether it wrote. An unchanged rollup
        keeps its older basis on storage, which only means more sidecars are read later."""
        async with self._save_lock:  # one save at a time: each is decided on the last one
            if basis is not None and (self.basis is None or basis > self.basis):
                self.basis = basis
            if not self.dirty and self._etag is not None:
                return False

            async def attempt() -> bool:
                pending = dict(self._pending)
                parts = self.parts()
                stored = _every_folder(self._folders, self._signatures)
                signatures, signed = dict(self._signatures), self._signed
                when = format_time(
                    datetime.datetime.fromtimestamp(self.basis or 0, datetime.timezone.utc)
                )
                data = await anyio.to_thread.run_sync(_encode, parts, when, signatures)
                self._etag = await self.storage.write_if(
                    paths.ROLLUP_NAME, data, expected=self._etag
                )
                self._seen = await self._stat()
                self._stored = stored
                self._signed_saved = signed
                for path, item in pending.items():
                    if self._pending.get(path, ...) is item:
                        del self._pending[path]
                return True

            async def read_theirs(attempt: int) -> None:
                # Another process saved first: its file, with this one's pending changes on top.
                basis = self.basis
                await self.load()
                if basis is not None and (self.basis is None or basis < self.basis):
                    self.basis = basis  # the older basis is the safe one

            return await retry_on_conflict(paths.ROLLUP_NAME, _SAVE_ATTEMPTS, attempt, read_theirs)
