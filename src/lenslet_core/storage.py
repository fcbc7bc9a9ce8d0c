"""The one seam to fsspec: an async API over any filesystem, rooted at the gallery root.

Everything else in lenslet calls :class:`Storage` with logical paths (see :mod:`paths`); only this
module imports fsspec, runs its blocking calls (in worker threads, bounded by one
``CapacityLimiter``) and turns its errors into :mod:`errors`. Local disk gets what a local disk
can do: atomic writes by temp file + rename, conditional writes serialised by a lock file, and a
check that no path resolves outside the root through a symlink. S3 gets its conditional PUTs and
one-GET reads from :mod:`s3`. A storage with a :class:`~lenslet_core.pointers.Mounts` table sends
each call on a path below a pointer folder to that pointer's target storage (the ``_routed``
methods); the blocking primitives below only ever see paths of their own storage.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime
import errno
import fcntl
import functools
import os
import stat
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

import anyio
import anyio.to_thread
import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from . import paths
from .errors import (
    AlreadyExists,
    InvalidPath,
    LensletError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    ReadOnly,
    StorageError,
)
from .hashing import content_etag
from .s3 import S3Objects, check_bucket_name, is_s3, s3_error

if TYPE_CHECKING:
    from .pointers import Mounts

__all__ = ["Entry", "Observer", "Storage"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _routed(method: F) -> F:
    """Send a call on a logical path to the storage that holds it: this one, or the target of
    a pointer folder above it (see :mod:`pointers`)."""
    return _router(method, settle=False)


def _routed_write(method: F) -> F:
    """:func:`_routed` for writes, which first make sure no folder above the path is a
    pointer not seen yet (a write must never land in the pointer folder itself)."""
    return _router(method, settle=True)


def _router(method: F, *, settle: bool) -> F:
    name = method.__name__

    @functools.wraps(method)
    async def routed(self: Storage, path: str, *args: Any, **kwargs: Any) -> Any:
        if self.mounts is not None:
            if settle:
                await self.mounts.settle(path)
            target, inner, _ = await self.mounts.route(path)
            if target is not self:
                return await getattr(target, name)(inner, *args, **kwargs)
        return await method(self, path, *args, **kwargs)

    return routed  # type: ignore[return-value]


#: A temp file younger than this is never taken for abandoned (its writer may not have locked
#: it yet; after the last write, the rename follows within this).
_TEMP_GRACE = 2.0
#: Where no lock can tell, a temp file this old is taken for abandoned.
_TEMP_ABANDONED = 15 * 60.0

#: Operations whose worker thread may be abandoned when its caller is cancelled.
_ABANDONABLE = frozenset({"info", "list", "read"})

#: Called once per storage request with (operation, logical path): "list", "read", "info",
#: "write", "delete". Used for metrics and by tests that count requests; it may be called from
#: a worker thread, so it must be cheap and thread-safe.
Observer = Callable[[str, str], None]

EntryKind = Literal["file", "dir", "other"]

#: Concurrent requests to a backend reached over the network (object stores, memory).
REMOTE_IO_CONCURRENCY = 16


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Entry(NamedTuple):
    """One child of a listed folder. ``problem`` says why an entry cannot be used (a dangling
    symlink, a symlink out of the root, a name that is not UTF-8); such entries keep the kind
    they would have, are reported, and are never followed or read. (A named tuple: a listing
    of a large tree makes a million of them, and a tuple is made three times faster than a
    frozen dataclass.)"""

    name: str
    kind: EntryKind
    size: int = 0
    mtime: float = 0.0
    problem: str | None = None

    @property
    def is_folder(self) -> bool:
        """A sub-folder lenslet can go into."""
        return self.kind == "dir" and self.problem is None

    @property
    def is_file(self) -> bool:
        """A regular file lenslet can read."""
        return self.kind == "file" and self.problem is None


#: Listed among a pointer folder's entries: its config, which lives beside the target, not in it.
_POINTER_ENTRY = Entry(paths.POINTER_NAME, "file")


class Storage:
    """Async, root-relative access to one fsspec filesystem.

    Build one with :meth:`open` (``"/photos"``, ``"file:///photos"``, ``"memory://gallery"``) or
    pass an fsspec filesystem and a root. Blocking calls run in worker threads, at most
    ``io_concurrency`` at a time (default: the usable cores on local disk, where more threads
    only contend for the same page cache; 16 elsewhere, where requests wait on the network —
    raise it for a NAS mount).
    """

    def __init__(
        self,
        fs: Any,
        root: str,
        *,
        io_concurrency: int | None = None,
        readonly: bool = False,
        observer: Observer | None = None,
    ) -> None:
        self.fs = fs
        self.readonly = readonly
        self.observer = observer
        self._local = isinstance(fs, LocalFileSystem)
        self._s3 = S3Objects(fs) if is_s3(fs) else None
        if self._s3 is not None:
            check_bucket_name(root.split("/", 1)[0])
        #: The pointer folders below this root (set by :class:`Lenslet`; ``None``: not followed).
        self.mounts: Mounts | None = None
        self._memory_lock = threading.Lock()
        #: Folders listed at once (with their manifests) for an index run. Listing a local
        #: folder is mostly Python work per entry (the stat calls are quick), so a second
        #: thread mainly adds hand-offs of the GIL: 500,000 images listed in 4.9 s with one
        #: thread, 6.8 s with two. A NAS mount, where each stat waits on the network, wants
        #: more: an ``io_concurrency`` given is used as it is.
        self.list_concurrency = io_concurrency or (1 if self._local else REMOTE_IO_CONCURRENCY)
        self._list_limiter = anyio.CapacityLimiter(self.list_concurrency)
        if io_concurrency is None:
            io_concurrency = _usable_cores() if self._local else REMOTE_IO_CONCURRENCY
        self.io_concurrency = io_concurrency
        self._limiter = anyio.CapacityLimiter(io_concurrency)
        if self._local:
            real = os.path.realpath(root)
            if not os.path.isdir(real):
                raise NotFound(f"gallery root {root!r} is not a folder", path=root)
            self.root = real
        else:
            self.root = root.rstrip("/") or "/"
        #: Named in error messages: which bucket at which endpoint (S3), else the root.
        self.where = self._s3.where(self.root) if self._s3 is not None else self.url

    @classmethod
    def open(
        cls,
        url: str,
        *,
        io_concurrency: int | None = None,
        readonly: bool = False,
        observer: Observer | None = None,
        storage_options: Mapping[str, Any] | None = None,
        create: bool = False,
    ) -> Storage:
        """Open a root by URL or local path (``create``: making its folder if missing).
        Unknown protocols fail here, at startup."""
        try:
            fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
        except ImportError as exc:
            extra = (
                " (pip install 'lenslet-core[s3]')" if url.startswith(("s3://", "s3a://")) else ""
            )
            raise StorageError(f"cannot open storage {url!r}: {exc}{extra}") from exc
        except ValueError as exc:
            raise StorageError(f"cannot open storage {url!r}: {exc}") from exc
        if create:
            with translate(url):
                fs.makedirs(root, exist_ok=True)
        return cls(fs, root, io_concurrency=io_concurrency, readonly=readonly, observer=observer)

    @property
    def local_root(self) -> str | None:
        """The root's real path when it is on local disk, else ``None``."""
        return self.root if self._local else None

    @property
    def url(self) -> str:
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        return self.root if self._local else f"{protocol}://{self.root.lstrip('/')}"

    def __repr__(self) -> str:
        return f"Storage({self.url!r})"

    # -- the async API -------------------------------------------------------------------------

    async def check_root(self) -> None:
        """Fail now, clearly, when the root cannot be used: a local folder that is not there;
        a bucket that does not exist, refuses these credentials or cannot be reached (one HEAD
        on the bucket: an S3 prefix with nothing in it yet is a fine, empty gallery)."""
        if self._s3 is not None:
            await self._run("info", "", self._s3.check_bucket, self.root)
        else:
            await self.info("")

    async def list(self, path: str) -> list[Entry]:
        """The children of a folder, with kinds, sizes and mtimes, in one backend call. A
        pointer folder lists its target, with its config among the entries (so its parent
        knows it for a pointer)."""
        if self.mounts is None:
            return await self._run("list", path, self._list_sync, path)
        await self.mounts.settle(path)
        target, inner, _ = await self.mounts.route(path)
        if target is not self:
            entries = await target.list(inner)
            return [*entries, _POINTER_ENTRY] if inner == "" else entries
        entries = await self._run("list", path, self._list_sync, path)
        if any(e.name == paths.POINTER_NAME for e in entries):
            await self.mounts.learn(path)
            return await self.list(path)
        self.mounts.plain(path)
        return entries

    async def list_with_contents(
        self, path: str, wanted: Callable[[str], bool]
    ) -> tuple[builtins.list[Entry], dict[str, bytes | LensletError]]:
        """List a folder and read the small files ``wanted`` picks by name from that listing
        (e.g. its manifest pages). Local disk does both in one worker-thread hop; elsewhere it is
        one listing request and then one read per picked file, concurrently. A file that cannot
        be read maps to its error."""
        if self.mounts is not None:
            await self.mounts.settle(path)
            target, inner, _ = await self.mounts.route(path)
            if target is not self:
                entries, contents = await target.list_with_contents(inner, wanted)
                return ([*entries, _POINTER_ENTRY] if inner == "" else entries), contents

        def pick(entries: builtins.list[Entry]) -> builtins.list[str]:
            names = [e.name for e in entries if e.is_file and wanted(e.name)]
            self._observe("read", [paths.join(path, name) for name in names])
            return names

        if not self._local:
            entries = await self.list(path)  # learns a pointer it lists
            if self.mounts is not None and (await self.mounts.route(path))[0] is not self:
                return await self.list_with_contents(path, wanted)
            names = pick(entries)
            datas = await self._read_all([paths.join(path, name) for name in names])
            return entries, dict(zip(names, datas, strict=True))

        def list_and_read() -> tuple[builtins.list[Entry], dict[str, bytes | LensletError]]:
            with translate(path, self.where):
                entries = self._list_sync(path)
            names = pick(entries)
            return entries, {n: self._read_or_error(paths.join(path, n)) for n in names}

        self._observe("list", [path])
        found = await anyio.to_thread.run_sync(list_and_read, limiter=self._list_limiter)
        if self.mounts is not None:
            if any(e.name == paths.POINTER_NAME for e in found[0]):
                await self.mounts.learn(path)
                return await self.list_with_contents(path, wanted)
            self.mounts.plain(path)
        return found

    @_routed
    async def files(self, path: str = "") -> dict[str, tuple[int, float]]:
        """Every file below a folder, by logical path, with its size and mtime: one recursive
        listing (on S3, pages of 1,000 keys with no delimiter), for watchers that compare."""
        return await self._run("list", path, self._files_sync, path)

    @_routed
    async def info(self, path: str) -> Entry:
        return await self._run("info", path, self._info_sync, path)

    @_routed
    async def read(self, path: str) -> bytes:
        return await self._run("read", path, self._read_sync, path)

    @_routed
    async def read_range(self, path: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of a file (fewer at its end): one request, for serving
        ranges and streaming large files in parts."""
        return await self._run("read", path, self._read_range_sync, path, start, end)

    @_routed
    async def read_into(self, path: str, consume: Callable[[bytes], T]) -> T:
        """Read one file and hand its bytes to ``consume`` (e.g. decoding a large document) off
        the event loop, in the I/O worker thread on local disk."""
        (result,) = await self.read_each_into([path], consume, limiter=self._limiter)
        if isinstance(result, LensletError):
            raise result
        return result

    async def read_each_into(
        self,
        paths: Sequence[str],
        consume: Callable[[bytes], T],
        *,
        limiter: anyio.CapacityLimiter,
    ) -> builtins.list[T | LensletError]:
        """Read whole files and hand each one's bytes to ``consume`` (CPU work such as probing
        and hashing) in a worker thread bounded by ``limiter``. Returns, in order, each result or
        the :class:`LensletError` that file raised, so one bad file does not sink the batch.

        A batch costs one thread hop on local disk — the thread reads and works through the
        batch without a round trip to the event loop per file, as a bare thread-pool loop would.
        Elsewhere the files are read concurrently under the I/O limiter first, so slow network
        reads never hold CPU slots.
        """
        if self.mounts is not None and paths:
            routes = [await self.mounts.route(path) for path in paths]
            target = routes[0][0]
            if target is not self and all(r[0] is target for r in routes):
                inner = [r[1] for r in routes]
                return await target.read_each_into(inner, consume, limiter=limiter)
            if any(r[0] is not self for r in routes):  # a batch across pointers: one by one
                results: builtins.list[T | LensletError] = []
                for route in routes:
                    results.extend(
                        await route[0].read_each_into([route[1]], consume, limiter=limiter)
                    )
                return results
        self._observe("read", paths)

        def work(data: bytes | LensletError) -> T | LensletError:
            if isinstance(data, LensletError):
                return data
            try:
                return consume(data)
            except LensletError as exc:
                return exc

        if self._local:
            return await anyio.to_thread.run_sync(
                lambda: [work(self._read_or_error(path)) for path in paths], limiter=limiter
            )
        datas = await self._read_all(paths)
        return await anyio.to_thread.run_sync(
            lambda: [work(data) for data in datas], limiter=limiter
        )

    @_routed
    async def read_versioned(self, path: str) -> tuple[bytes, str]:
        """The bytes of a small document and the validator a conditional write expects (on S3
        the object's ETag, from the same GET)."""
        if self._s3 is not None:
            return await self._run("read", path, self._s3.get, self._full(path))
        data = await self.read(path)
        return data, content_etag(data)

    @_routed
    async def read_versioned_into(self, path: str, consume: Callable[[bytes], T]) -> tuple[T, str]:
        """:meth:`read_versioned` of a large document, handed to ``consume`` (decoding it) off
        the event loop: what ``consume`` returns, and the validator a conditional write of the
        same file expects — the one the storage itself gives (on S3 the object's ETag)."""
        if self._s3 is not None:
            data, etag = await self.read_versioned(path)
            return await anyio.to_thread.run_sync(consume, data, limiter=self._limiter), etag
        return await self.read_into(path, lambda data: (consume(data), content_etag(data)))

    @_routed_write
    async def write(self, path: str, data: bytes, *, parents: bool = False) -> None:
        """Replace a file whole; readers see the old or the new bytes, never a part.
        ``parents`` creates missing folders on the way (object stores have none to create)."""
        self.check_writable(path)
        await self._run("write", path, self._write_sync, path, data, parents)

    @_routed_write
    async def write_if(self, path: str, data: bytes, *, expected: str | None) -> str:
        """Write only if the stored version is ``expected`` (``None``: only if absent).

        Raises :class:`PreconditionFailed` when another writer got there first; returns the
        new version's validator.
        """
        self.check_writable(path)
        return await self._run("write", path, self._write_if_sync, path, data, expected)

    @_routed_write
    async def create(self, path: str, data: bytes) -> None:
        """Write a new file whole (atomically); :class:`AlreadyExists` if there is one."""
        self.check_writable(path)
        await self._run("write", path, self._create_sync, path, data)

    @_routed_write
    async def remove_abandoned(self, path: str) -> bool:
        """Delete the temp file of an atomic write (``*.lenslet-tmp``) whose writer is gone —
        killed mid-write: on local disk one that no live process holds locked (every writer
        locks its temp file while it writes), elsewhere or with no lock to tell by one older
        than 15 minutes. One younger than two seconds is always left (its writer may not have
        locked it yet). Returns whether it deleted the file."""
        self.check_writable(path)
        removed: bool = await self._run("delete", path, self._remove_abandoned_sync, path)
        return removed

    @_routed_write
    async def make_folder(self, path: str) -> None:
        """Create a folder and the folders above it that are missing (an object store has no
        folders: nothing to do there). On local disk no part of it may be a symlink."""
        self.check_writable(path)
        await self._run("write", path, self._make_folder_sync, path)

    async def move(self, source: str, target: str) -> None:
        """Move a file to a path that must not exist yet (:class:`AlreadyExists`). Between a
        pointer's target and elsewhere it is a copy, then a delete of the source."""
        if self.mounts is not None:
            await self.mounts.settle(source)
            await self.mounts.settle(target)
        self.check_writable(source)
        self.check_writable(target)
        if self.mounts is not None:
            here, inner_source, _ = await self.mounts.route(source)
            there, inner_target, _ = await self.mounts.route(target)
            if here is there and here is not self:
                return await here.move(inner_source, inner_target)
            if here is not there:
                await there.create(inner_target, await here.read(inner_source))
                await here.delete(inner_source)
                return None
        await self._run("write", target, self._move_sync, source, target)
        return None

    @_routed_write
    async def delete(self, path: str, *, missing_ok: bool = True) -> None:
        """Delete a file. An object store deletes a missing key without a word, so there
        ``missing_ok=False`` costs a HEAD first."""
        self.check_writable(path)
        if not missing_ok and not self._local:
            await self.info(path)
        try:
            await self._run("delete", path, self._delete_sync, path)
        except NotFound:
            if not missing_ok:
                raise

    async def read_own(self, path: str) -> bytes:
        """:meth:`read` in this storage itself, not following pointers (their configs)."""
        return await self._run("read", path, self._read_sync, path)

    async def info_own(self, path: str) -> Entry:
        """:meth:`info` in this storage itself, not following pointers."""
        return await self._run("info", path, self._info_sync, path)

    # -- the seam: threads, observation, translation ---------------------------------------------

    async def _run(self, op: str, path: str, func: Callable[..., T], *args: Any) -> T:
        self._observe(op, [path])
        with translate(path, self.where):
            # A read that is cancelled (a caller's deadline: /health answers in 2 s whatever the
            # storage does) is left to finish in its thread; a write is always waited for.
            return await anyio.to_thread.run_sync(
                func, *args, limiter=self._limiter, abandon_on_cancel=op in _ABANDONABLE
            )

    def _observe(self, op: str, paths: Sequence[str]) -> None:
        if self.observer is not None:
            for path in paths:
                self.observer(op, path)

    def _read_or_error(self, path: str) -> bytes | LensletError:
        """A blocking read whose failure is returned, for batches where one bad file must not
        sink the others."""
        try:
            with translate(path, self.where):
                return self._read_sync(path)
        except LensletError as exc:
            return exc

    async def _read_all(self, paths: Sequence[str]) -> builtins.list[bytes | LensletError]:
        """Read files concurrently under the I/O limiter (the caller has observed them)."""
        datas: builtins.list[bytes | LensletError] = [b""] * len(paths)

        async def fetch(index: int, path: str) -> None:
            datas[index] = await anyio.to_thread.run_sync(
                self._read_or_error, path, limiter=self._limiter
            )

        async with anyio.create_task_group() as tg:
            for index, path in enumerate(paths):
                tg.start_soon(fetch, index, path)
        return datas

    def check_writable(self, path: str) -> None:
        """Raise :class:`ReadOnly` when this root (or the pointer ``path`` is in) refuses
        writes."""
        if self.mounts is not None:
            target, inner, pointer = self.mounts.route_known(path)
            if target is not self:
                if target.readonly:
                    where = f"pointer folder {pointer or '/'!r}"
                    raise ReadOnly(f"{where} is read-only; cannot write {path!r}", path=path)
                target.check_writable(inner)
                return
        if self.readonly:
            raise ReadOnly(f"the gallery root is read-only; cannot write {path!r}", path=path)

    async def ensure_writable(self, path: str) -> None:
        """:meth:`check_writable`, after learning the pointers above ``path`` (and following a
        broken one afresh once its error is old)."""
        if self.mounts is not None:
            await self.mounts.settle(path)
            await self.mounts.route(path)
        self.check_writable(path)

    def mounted(self) -> builtins.list[tuple[str, Storage]]:
        """The targets of the pointer folders followed so far, nested ones included, each
        with the logical folder it is mounted at."""
        if self.mounts is None:
            return []
        found = []
        for folder, target in self.mounts.targets().items():
            found.append((folder, target))
            found.extend((paths.join(folder, inner), deeper) for inner, deeper in target.mounted())
        return found

    def forget_pointer(self, folder: str) -> None:
        """Whatever was learnt of ``folder`` being a pointer or not: learn it again."""
        if self.mounts is not None:
            self.mounts.forget(folder)

    def writable(self, path: str) -> bool:
        """Whether writes to ``path`` are allowed (by settings and pointers, without asking
        storage)."""
        try:
            self.check_writable(path)
        except LensletError:
            return False
        return True

    def _full(self, path: str, *, write: bool = False) -> str:
        """The backend path of a logical one; on local disk resolved (symlinks included) and
        refused outside the root. lenslet's own files are never used through a symlink: a
        sidecar linked to anything is refused (serving or overwriting the target could leak or
        destroy it); a manifest link is derived data, so it reads as absent and a write
        replaces the link itself."""
        if not self._local:
            return f"{self.root}/{path}" if path else self.root
        if not path:
            return self.root
        folder, name = paths.split(path)
        base = self._folder(folder)
        own = os.path.join(base, name)
        if paths.is_flat_file(name):
            if os.path.islink(own):
                if not paths.is_manifest_name(name):
                    raise InvalidPath(f"{path!r} is a symlink; lenslet's files must be regular")
                if write:
                    return own
                raise FileNotFoundError(errno.ENOENT, "a symlink stands in for the manifest", own)
            return own
        if os.path.islink(own):
            if write:
                # Never written, moved or deleted through: a dangling link would create its
                # target.
                raise InvalidPath(f"{path!r} is a symlink; lenslet writes only regular files")
            return paths.resolve_within(self.root, path)  # a file link: followed, inside only
        return own  # its folder is real (checked above) and it is no link: nothing to resolve

    def _folder(self, folder: str) -> str:
        """A folder's real path, refused (as the indexer refuses them) when any part of it is
        a symlink: folder symlinks are not followed, on any route."""
        if not folder:
            return self.root
        real = paths.resolve_within(self.root, folder)
        if real != os.path.join(self.root, *folder.split("/")):
            raise InvalidPath(
                f"{folder!r} passes through a folder symlink (they are not followed; a pointer "
                "folder links folders)",
                path=folder,
            )
        return real

    # -- blocking primitives (worker threads only) ---------------------------------------------

    def _list_sync(self, path: str) -> builtins.list[Entry]:
        if self._local:
            return self._list_local(self._folder(path))
        full = self._full(path)
        try:
            details = self.fs.ls(full, detail=True, refresh=True)  # the one request
        except FileNotFoundError:
            if path:
                raise
            return []  # an object store's root prefix with nothing in it yet: an empty gallery
        own = full.strip("/")
        if (
            len(details) == 1
            and details[0].get("type") == "file"
            and details[0]["name"].strip("/") == own
        ):
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", full)
        entries = []
        for detail in details:
            name = detail["name"].rstrip("/").rsplit("/", 1)[-1]
            if name and detail["name"].strip("/") != own:
                entries.append(_entry(name, detail))
        return entries

    def _list_local(self, full: str) -> builtins.list[Entry]:
        # os.scandir is what fsspec's LocalFileSystem.ls uses too; reading it directly gives
        # the symlink facts needed to keep every entry inside the root.
        entries = []
        with os.scandir(full) as it:
            for dirent in it:
                if not paths.is_utf8(dirent.name):
                    # Shown with U+FFFD for the bad bytes: JSON (and clients) cannot carry them.
                    shown = paths.printable(dirent.name)
                    problem = "the name is not valid UTF-8 (rename it to include it)"
                    kind: EntryKind = "dir" if dirent.is_dir(follow_symlinks=False) else "file"
                    entries.append(Entry(shown, kind, problem=problem))
                    continue
                try:
                    if dirent.is_symlink():
                        entries.append(self._local_link(full, dirent))
                        continue
                    st = dirent.stat(follow_symlinks=False)
                except OSError as exc:
                    entries.append(Entry(dirent.name, "other", problem=_reason(exc)))
                    continue
                kind = "dir" if dirent.is_dir() else "file" if dirent.is_file() else "other"
                entries.append(Entry(dirent.name, kind, st.st_size, st.st_mtime))
        return entries

    def _local_link(self, folder: str, dirent: os.DirEntry[str]) -> Entry:
        try:
            st = os.stat(dirent.path)
        except OSError as exc:
            return Entry(dirent.name, "other", problem=f"broken symlink ({_reason(exc)})")
        kind: EntryKind = (
            "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
        )
        try:
            paths.resolve_within(self.root, os.path.relpath(dirent.path, self.root))
        except InvalidPath:
            return Entry(dirent.name, kind, problem="symlink resolves outside the root")
        if kind == "dir":
            problem = "folder symlinks are not followed (a pointer folder links folders)"
            return Entry(dirent.name, kind, problem=problem)
        return Entry(dirent.name, kind, st.st_size, st.st_mtime)

    def _files_sync(self, path: str) -> dict[str, tuple[int, float]]:
        full = self._folder(path) if self._local else self._full(path)
        found: dict[str, tuple[int, float]] = {}
        if self._local:
            for folder, _, names in os.walk(full):
                for name in names:
                    with contextlib.suppress(OSError):
                        st = os.stat(os.path.join(folder, name), follow_symlinks=False)
                        relative = os.path.relpath(os.path.join(folder, name), self.root)
                        found[relative.replace(os.sep, "/")] = (st.st_size, st.st_mtime)
            return found
        base = self.root.strip("/") + "/"
        for name, detail in self.fs.find(full, detail=True).items():
            entry = _entry(name, detail)
            if entry.kind == "file" and name.strip("/").startswith(base):
                found[name.strip("/")[len(base) :]] = (entry.size, entry.mtime)
        return found

    def _info_sync(self, path: str) -> Entry:
        full = self._full(path)
        name = paths.split(path)[1]
        if self._local:
            st = os.stat(full)
            mode = st.st_mode
            kind: EntryKind = (
                "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"
            )
            return Entry(name, kind, st.st_size, st.st_mtime)
        try:
            # refresh: another writer may have made or removed it since a listing was cached
            found = self.fs.info(full, refresh=True) if self._s3 else self.fs.info(full)
        except FileNotFoundError:
            if path:
                raise
            return Entry("", "dir")  # the root of an object store is there, empty or not
        return _entry(name, found)

    def _read_sync(self, path: str) -> bytes:
        full = self._full(path)
        if self._local:
            with os.fdopen(_open_regular(full, path), "rb") as f:
                return f.read()
        if self._s3 is not None:
            return self._s3.get(full)[0]  # one GET (s3fs's cat_file may HEAD first for the size)
        data: bytes = self.fs.cat_file(full)
        return data

    def _read_range_sync(self, path: str, start: int, end: int) -> bytes:
        full = self._full(path)
        if self._local:
            fd = _open_regular(full, path)
            try:
                return os.pread(fd, max(0, end - start), start)
            finally:
                os.close(fd)
        data: bytes = self.fs.cat_file(full, start=start, end=end)
        return data

    def _write_sync(self, path: str, data: bytes, parents: bool = False) -> None:
        full = self._full(path, write=True)
        if self._local:
            if parents:
                os.makedirs(os.path.dirname(full), exist_ok=True)
            _atomic_local_write(full, data)
        else:
            self.fs.pipe_file(full, data)

    def _write_if_sync(self, path: str, data: bytes, expected: str | None) -> str:
        full = self._full(path, write=True)
        if self._s3 is not None:
            return self._s3.put_if(full, data, expected)
        with self._exclusive(full):
            try:
                current: str | None = content_etag(self._read_sync(path))
            except FileNotFoundError:
                current = None
            if current != expected:
                raise PreconditionFailed(
                    f"{path!r} changed since it was read (expected {expected}, found {current})",
                    path=path,
                )
            self._write_sync(path, data)
        return content_etag(data)

    @contextlib.contextmanager
    def _exclusive(self, full: str) -> Iterator[None]:
        """Hold the lock that serialises conditional writes to ``full`` across threads and,
        on local disk, across processes (a lock file in the folder, locked with flock)."""
        if not self._local:
            if not isinstance(self.fs, MemoryFileSystem):
                raise StorageError(
                    f"conditional writes are not supported on {self.url!r} yet", path=full
                )
            with self._memory_lock:
                yield
            return
        lock_path = os.path.join(os.path.dirname(full), paths.LOCK_NAME)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _create_sync(self, path: str, data: bytes) -> None:
        full = self._full(path, write=True)
        if self._s3 is not None:
            self._s3.create(full, data)  # one conditional PUT
            return
        if not self._local:
            if self.fs.exists(full):
                raise FileExistsError(errno.EEXIST, "exists", full)
            self.fs.pipe_file(full, data)
            return
        _atomic_local_write(full, data, replace=False)

    def _remove_abandoned_sync(self, path: str) -> bool:
        full = self._full(path, write=True)
        now = time.time()
        if not self._local:
            if now - _entry(path, self.fs.info(full)).mtime < _TEMP_ABANDONED:
                return False
            self.fs.rm_file(full)
            return True
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            age = now - os.fstat(fd).st_mtime
            if age < _TEMP_GRACE:
                return False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a live writer holds it
            except OSError:  # no locks here (some network file systems): go by age alone
                if age < _TEMP_ABANDONED:
                    return False
            os.unlink(full)
            return True
        finally:
            os.close(fd)

    def _make_folder_sync(self, path: str) -> None:
        if self._s3 is not None or not path:
            return
        if not self._local:
            self.fs.makedirs(self._full(path), exist_ok=True)
            return
        current = self.root
        for segment in path.split("/"):
            current = os.path.join(current, segment)
            if os.path.islink(current):
                raise InvalidPath(f"{path!r} passes through a symlink", path=path)
            with contextlib.suppress(FileExistsError):
                os.mkdir(current)
            if not os.path.isdir(current):
                raise AlreadyExists(f"{path!r}: a file is in the way of the folder", path=path)

    def _move_sync(self, source: str, target: str) -> None:
        src, dst = self._full(source, write=True), self._full(target, write=True)
        if not self._local:
            with contextlib.suppress(FileNotFoundError):
                self._info_sync(target)  # asked afresh, not from a cached listing
                raise FileExistsError(errno.EEXIST, "exists", dst)
            self.fs.mv(src, dst)
            return
        os.link(src, dst)  # never replaces a file at the target
        os.unlink(src)

    def _delete_sync(self, path: str) -> None:
        full = self._full(path, write=True)
        if self._local:
            os.unlink(full)
        else:
            self.fs.rm_file(full)


def _open_regular(full: str, path: str) -> int:
    """A read descriptor of a regular file; anything else (a FIFO named like an image) is
    refused without blocking: it is opened O_NONBLOCK and checked before it is read."""
    fd = os.open(full, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "a folder, not a file", full)
        if not stat.S_ISREG(mode):
            raise InvalidPath(f"{path!r} is not a regular file", path=path)
        os.set_blocking(fd, True)  # a regular file: read it as usual
    except BaseException:
        os.close(fd)
        raise
    return fd


def _atomic_local_write(full: str, data: bytes, *, replace: bool = True) -> None:
    """Write a whole file by way of a temp file beside it: renamed over the target, or (not
    ``replace``) hard-linked to it, which fails and writes nothing when the target exists."""
    folder = os.path.dirname(full)
    # A fixed-length temp name: the target's own name may already be near the 255-byte limit.
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".lenslet-", suffix=paths.TEMP_SUFFIX)
    # Held while the temp file is written: an index run that finds the file unlocked knows its
    # writer is gone (killed mid-write) and removes it (Storage.remove_abandoned).
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        if replace:
            os.replace(tmp, full)
            return
        os.link(tmp, full)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.unlink(tmp)


def _entry(name: str, detail: Mapping[str, Any]) -> Entry:
    kind = detail.get("type")
    mtime = detail.get("mtime") or detail.get("LastModified") or detail.get("created") or 0.0
    if isinstance(mtime, datetime.datetime):
        mtime = mtime.timestamp()
    etag = detail.get("ETag")
    if isinstance(etag, str) and etag and float(mtime).is_integer():
        # S3 keeps mtimes to the second: two versions of one size written within a second
        # (a star set twice) would look the same. Their ETags differ: one fills the
        # sub-second part, so a size-and-mtime stamp tells them apart.
        mtime = float(mtime) + (zlib.crc32(etag.encode()) % 1000) / 1000
    return Entry(
        name,
        "dir" if kind == "directory" else "file" if kind == "file" else "other",
        int(detail.get("size") or 0),
        float(mtime),
    )


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


@contextlib.contextmanager
def translate(path: str, where: str = "") -> Iterator[None]:
    """Turn a backend's exception into lenslet's tree (the only place that does); ``where``
    (the bucket and endpoint, or the root) goes into messages that need it."""
    try:
        yield
    except LensletError:
        raise
    except Exception as exc:
        mapped = _translated(exc, path, where)
        if mapped is None:
            raise
        raise mapped from exc


def _translated(exc: Exception, path: str, where: str) -> LensletError | None:
    shown = path or "/"
    known = s3_error(exc, path, where or "storage")
    if known is not None:
        return known
    if isinstance(exc, FileNotFoundError):
        return NotFound(f"{shown!r} does not exist", path=path)
    if isinstance(exc, FileExistsError):
        return AlreadyExists(f"{shown!r} already exists", path=path)
    if isinstance(exc, NotADirectoryError):
        return NotFound(f"{shown!r} is not a folder", path=path)
    if isinstance(exc, IsADirectoryError):
        return NotFound(f"{shown!r} is a folder, not a file", path=path)
    if isinstance(exc, PermissionError):
        return PermissionDenied(f"the storage refused access to {shown!r}", path=path)
    if isinstance(exc, OSError):
        if exc.errno == errno.EROFS:
            return ReadOnly(f"{shown!r} is on a read-only file system", path=path)
        if exc.errno in (errno.ELOOP, errno.ENAMETOOLONG):
            return InvalidPath(f"{path!r}: {_reason(exc)}", path=path)
        return StorageError(f"storage failed on {shown!r}: {exc}", path=path)
    if isinstance(exc, (ValueError, TypeError, KeyError)):
        return StorageError(f"storage failed on {shown!r}: {exc}", path=path)
    return None
