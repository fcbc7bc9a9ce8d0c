"""The one seam to storage: an async API over a backend, rooted at the gallery root.

Everything else in lenslet calls :class:`Storage` with logical paths (see :mod:`paths`). The
seam runs a backend's blocking calls in worker threads (bounded by one ``CapacityLimiter``),
tells an observer of each request, refuses writes to a read-only root and turns the backend's
errors into :mod:`errors` — its own table first, then the common one — in one place
(:func:`translate`). What each kind of storage can do lives in its backend (:mod:`backend`):
:mod:`local`, :mod:`s3`, or :mod:`filesystem` for any other fsspec protocol, picked from a
registry by protocol (:func:`register_backend`). A storage with a
:class:`~lenslet_core.pointers.Mounts` table sends each call on a path below a pointer folder
to that pointer's target storage (the ``_routed`` methods).
"""

from __future__ import annotations

import builtins
import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

from . import paths
from .backend import Backend, BackendFactory, Entry, os_error
from .errors import LensletError, ReadOnly
from .filesystem import FilesystemBackend, filesystem_of
from .hashing import content_etag
from .local import LocalBackend
from .s3 import S3Backend

if TYPE_CHECKING:
    from .pointers import Mounts

__all__ = ["Entry", "Observer", "Storage", "backend_for", "register_backend", "translate"]

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


#: Operations whose worker thread may be abandoned when its caller is cancelled.
_ABANDONABLE = frozenset({"info", "list", "read"})

#: Called once per storage request with (operation, logical path): "list", "read", "info",
#: "write", "delete". Used for metrics and by tests that count requests; it may be called from
#: a worker thread, so it must be cheap and thread-safe.
Observer = Callable[[str, str], None]

#: The backends by fsspec protocol; any other protocol gets the generic fsspec backend.
_BACKENDS: dict[str, BackendFactory] = {
    "file": LocalBackend.for_filesystem,
    "local": LocalBackend.for_filesystem,
    "s3": S3Backend,
    "s3a": S3Backend,
}


def register_backend(protocol: str, factory: BackendFactory) -> None:
    """Use ``factory(fs, root)`` for roots of an fsspec ``protocol`` (e.g. a GCS backend for
    ``"gs"``); it replaces the one registered before."""
    _BACKENDS[protocol] = factory


def backend_for(fs: Any, root: str) -> Backend:
    """The registered backend for an fsspec filesystem's protocol, opened at ``root``."""
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    for protocol in protocols:
        factory = _BACKENDS.get(protocol)
        if factory is not None:
            return factory(fs, root)
    return FilesystemBackend(fs, root)


#: Listed among a pointer folder's entries: its config, which lives beside the target, not in it.
_POINTER_ENTRY = Entry(paths.POINTER_NAME, "file")


class Storage:
    """Async, root-relative access to one backend.

    Build one with :meth:`open` (``"/photos"``, ``"file:///photos"``, ``"memory://gallery"``),
    :meth:`of` (an fsspec filesystem and a root) or from a :class:`~lenslet_core.backend.Backend`.
    Blocking calls run in worker threads, at most ``io_concurrency`` at a time (default: the
    backend's — the usable cores on local disk, where more threads only contend for the same
    page cache; 16 elsewhere, where requests wait on the network — raise it for a NAS mount).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        io_concurrency: int | None = None,
        readonly: bool = False,
        observer: Observer | None = None,
    ) -> None:
        self.backend = backend
        self.readonly = readonly
        self.observer = observer
        #: The pointer folders below this root (set by :class:`Lenslet`; ``None``: not followed).
        self.mounts: Mounts | None = None
        #: Folders listed at once (with their manifests) for an index run; an
        #: ``io_concurrency`` given is used as it is.
        self.list_concurrency = io_concurrency or backend.list_concurrency
        self._list_limiter = anyio.CapacityLimiter(self.list_concurrency)
        self.io_concurrency = io_concurrency or backend.io_concurrency
        self._limiter = anyio.CapacityLimiter(self.io_concurrency)

    @classmethod
    def of(cls, fs: Any, root: str, **options: Any) -> Storage:
        """A storage over an fsspec filesystem, with the backend registered for its protocol."""
        return cls(backend_for(fs, root), **options)

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
        fs, root = filesystem_of(url, storage_options or {})
        if create:
            with translate(url):
                fs.makedirs(root, exist_ok=True)
        return cls.of(fs, root, io_concurrency=io_concurrency, readonly=readonly, observer=observer)

    @property
    def root(self) -> str:
        return self.backend.root

    @property
    def where(self) -> str:
        """Named in error messages: which bucket at which endpoint (S3), else the root."""
        return self.backend.where

    @property
    def local_root(self) -> str | None:
        """The root's real path when it is on local disk, else ``None``."""
        return self.backend.local_root

    @property
    def url(self) -> str:
        return self.backend.url

    def __repr__(self) -> str:
        return f"Storage({self.url!r})"

    # -- the async API -------------------------------------------------------------------------

    async def check_root(self) -> None:
        """Fail now, clearly, when the root cannot be used: a local folder that is not there;
        a bucket that does not exist, refuses these credentials or cannot be reached (one HEAD
        on the bucket: an S3 prefix with nothing in it yet is a fine, empty gallery)."""
        await self._run("info", "", self.backend.check_root)

    async def list(self, path: str) -> list[Entry]:
        """The children of a folder, with kinds, sizes and mtimes, in one backend call. A
        pointer folder lists its target, with its config among the entries (so its parent
        knows it for a pointer)."""
        if self.mounts is None:
            return await self._run("list", path, self.backend.list, path)
        await self.mounts.settle(path)
        target, inner, _ = await self.mounts.route(path)
        if target is not self:
            entries = await target.list(inner)
            return [*entries, _POINTER_ENTRY] if inner == "" else entries
        entries = await self._run("list", path, self.backend.list, path)
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

        if not self.backend.reads_in_place:
            entries = await self.list(path)  # learns a pointer it lists
            if self.mounts is not None and (await self.mounts.route(path))[0] is not self:
                return await self.list_with_contents(path, wanted)
            names = pick(entries)
            datas = await self._read_all([paths.join(path, name) for name in names])
            return entries, dict(zip(names, datas, strict=True))

        def list_and_read() -> tuple[builtins.list[Entry], dict[str, bytes | LensletError]]:
            with translate(path, self.backend):
                entries = self.backend.list(path)
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
        return await self._run("list", path, self.backend.files, path)

    @_routed
    async def info(self, path: str) -> Entry:
        return await self._run("info", path, self.backend.info, path)

    @_routed
    async def read(self, path: str) -> bytes:
        return await self._run("read", path, self.backend.read, path)

    @_routed
    async def read_range(self, path: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of a file (fewer at its end): one request, for serving
        ranges and streaming large files in parts."""
        return await self._run("read", path, self.backend.read_range, path, start, end)

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

        if self.backend.reads_in_place:
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
        return await self._run("read", path, self.backend.read_versioned, path)

    @_routed
    async def read_versioned_into(self, path: str, consume: Callable[[bytes], T]) -> tuple[T, str]:
        """:meth:`read_versioned` of a large document, handed to ``consume`` (decoding it) off
        the event loop: what ``consume`` returns, and the validator a conditional write of the
        same file expects — the one the storage itself gives (on S3 the object's ETag)."""
        if not self.backend.reads_in_place:
            data, etag = await self.read_versioned(path)
            return await anyio.to_thread.run_sync(consume, data, limiter=self._limiter), etag

        def versioned(data: bytes) -> tuple[T, str]:
            # the validator a conditional write of a local file compares: its content's
            return consume(data), content_etag(data)

        return await self.read_into(path, versioned)

    @_routed_write
    async def write(self, path: str, data: bytes, *, parents: bool = False) -> None:
        """Replace a file whole; readers see the old or the new bytes, never a part.
        ``parents`` creates missing folders on the way (object stores have none to create)."""
        self.check_writable(path)
        await self._run("write", path, self.backend.write, path, data, parents)

    @_routed_write
    async def write_if(self, path: str, data: bytes, *, expected: str | None) -> str:
        """Write only if the stored version is ``expected`` (``None``: only if absent).

        Raises :class:`PreconditionFailed` when another writer got there first; returns the
        new version's validator.
        """
        self.check_writable(path)
        return await self._run("write", path, self.backend.write_if, path, data, expected)

    @_routed_write
    async def create(self, path: str, data: bytes) -> None:
        """Write a new file whole (atomically); :class:`AlreadyExists` if there is one."""
        self.check_writable(path)
        await self._run("write", path, self.backend.create, path, data)

    @_routed_write
    async def remove_abandoned(self, path: str) -> bool:
        """Delete the temp file of an atomic write (``*.lenslet-tmp``) whose writer is gone —
        killed mid-write: on local disk one that no live process holds locked (every writer
        locks its temp file while it writes), elsewhere or with no lock to tell by one older
        than 15 minutes. One younger than two seconds is always left (its writer may not have
        locked it yet). Returns whether it deleted the file."""
        self.check_writable(path)
        removed: bool = await self._run("delete", path, self.backend.remove_abandoned, path)
        return removed

    @_routed_write
    async def make_folder(self, path: str) -> None:
        """Create a folder and the folders above it that are missing (an object store has no
        folders: nothing to do there). On local disk no part of it may be a symlink."""
        self.check_writable(path)
        await self._run("write", path, self.backend.make_folder, path)

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
        await self._run("write", target, self.backend.move, source, target)
        return None

    @_routed_write
    async def delete(self, path: str, *, missing_ok: bool = True) -> None:
        """Delete a file. An object store deletes a missing key without a word, so there
        ``missing_ok=False`` costs a HEAD first."""
        self.check_writable(path)
        await self._run("delete", path, self.backend.delete, path, missing_ok)

    async def read_own(self, path: str) -> bytes:
        """:meth:`read` in this storage itself, not following pointers (their configs)."""
        return await self._run("read", path, self.backend.read, path)

    async def info_own(self, path: str) -> Entry:
        """:meth:`info` in this storage itself, not following pointers."""
        return await self._run("info", path, self.backend.info, path)

    # -- the seam: threads, observation, translation ---------------------------------------------

    async def _run(self, op: str, path: str, func: Callable[..., T], *args: Any) -> T:
        self._observe(op, [path])
        with translate(path, self.backend):
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
            with translate(path, self.backend):
                return self.backend.read(path)
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


@contextlib.contextmanager
def translate(path: str, backend: Backend | None = None) -> Iterator[None]:
    """Turn a backend's exception into lenslet's tree (the only place that does): the
    backend's own table first, then the common one. Anything neither knows is a bug in
    lenslet, not a storage failure, and surfaces as it is."""
    try:
        yield
    except LensletError:
        raise
    except Exception as exc:
        mapped = backend.error(exc, path) if backend is not None else None
        mapped = mapped or os_error(exc, path)
        if mapped is None:
            raise
        raise mapped from exc
