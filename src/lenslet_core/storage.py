"""The one seam to storage: an async API over a backend, rooted at the gallery root.

Everything else in lenslet calls :class:`Storage` with logical paths (see :mod:`paths`). The seam
runs a backend's blocking calls in worker threads (a ``CapacityLimiter`` each for listings, reads
and, over a network, writes), tells an observer of each request, refuses writes to a read-only root
and turns the backend's errors into :mod:`errors` — its own table first, then the common one — in
one place (:func:`translate`). What each kind of storage can do lives in its backend
(:mod:`backend`): :mod:`local`, :mod:`s3`, or :mod:`filesystem` for any other fsspec protocol,
picked by protocol from :mod:`registry` (:func:`register_backend`). Storage knows nothing of pointer
folders: the router above it (:mod:`mounts`) sends each call to the storage that holds the path, and
both offer the one API the rest of lenslet types against, :class:`Store`.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import anyio
import anyio.to_thread

from . import paths
from .backend import Backend, Entry, os_error
from .errors import LensletError, PreconditionFailed, ReadOnly
from .filesystem import filesystem_of
from .hashing import content_etag
from .registry import backend_for, options_for, register_backend

__all__ = [
    "Consumers",
    "Contents",
    "Entry",
    "Observer",
    "Storage",
    "Store",
    "options_for",
    "backend_for",
    "register_backend",
    "translate",
]

T = TypeVar("T")


#: Operations whose worker thread may be abandoned when its caller is cancelled.
_ABANDONABLE = frozenset({"info", "list", "read"})

#: Called once per storage request with (operation, logical path): "list", "read", "info",
#: "write", "delete". Used for metrics and by tests that count requests; it may be called from
#: a worker thread, so it must be cheap and thread-safe.
Observer = Callable[[str, str], None]
#: What :meth:`Storage.read_each_into` hands each file's bytes to: one callable for all, or one
#: for each path (in the order of the paths).
Consumers = Callable[[bytes], T] | Sequence[Callable[[bytes], T]]
#: A folder's small files as :meth:`Storage.list_with_contents` read them with its listing, by
#: name: their bytes, or why one could not be read.
Contents = dict[str, bytes | LensletError]


class Store(Protocol):
    """The storage API the rest of lenslet calls: a :class:`Storage`, or the router that
    mounts pointer folders over one (:class:`~lenslet_core.mounts.Mounts`). Paths are logical;
    each method is documented on :class:`Storage`."""

    @property
    def url(self) -> str: ...
    @property
    def where(self) -> str: ...
    @property
    def readonly(self) -> bool: ...
    @property
    def local_root(self) -> str | None: ...
    @property
    def io_concurrency(self) -> int: ...
    async def check_root(self) -> None: ...
    async def run_local(self, func: Callable[..., T], *args: Any) -> T: ...
    async def list(self, path: str) -> builtins.list[Entry]: ...
    async def list_with_contents(
        self,
        path: str,
        wanted: Callable[[str], bool],
        then: Callable[[builtins.list[Entry], Contents], T],
        names_only: Callable[[str], bool] | None = None,
    ) -> T: ...
    async def files(self, path: str = "") -> dict[str, tuple[int, float]]: ...
    async def info(self, path: str) -> Entry: ...
    async def read(self, path: str) -> bytes: ...
    async def read_range(self, path: str, start: int, end: int) -> bytes: ...
    async def read_into(self, path: str, consume: Callable[[bytes], T]) -> T: ...
    async def read_each_into(
        self, paths: Sequence[str], consume: Consumers[T], *, limiter: anyio.CapacityLimiter
    ) -> builtins.list[T | LensletError]: ...
    async def read_versioned(self, path: str) -> tuple[bytes, str]: ...
    async def read_versioned_into(
        self, path: str, consume: Callable[[bytes], T]
    ) -> tuple[T, str]: ...
    async def write(self, path: str, data: bytes, *, parents: bool = False) -> None: ...
    async def write_if(self, path: str, data: bytes, *, expected: str | None) -> str: ...
    async def create(self, path: str, data: bytes) -> None: ...
    async def remove_abandoned(self, path: str) -> bool: ...
    async def make_folder(self, path: str) -> None: ...
    async def move(self, source: str, target: str) -> None: ...
    async def delete(self, path: str, *, missing_ok: bool = True) -> None: ...
    def check_writable(self, path: str) -> None: ...
    def writes_here(self, path: str) -> bool: ...
    def write_here(self, path: str, data: bytes) -> None: ...
    async def sign(self, path: str, seconds: int) -> str | None: ...
    async def ensure_writable(self, path: str) -> None: ...
    def writable(self, path: str) -> bool: ...


class Storage:
    """Async, root-relative access to one backend.

    Build one with :meth:`open` (``"/photos"``, ``"file:///photos"``, ``"memory://gallery"``),
    :meth:`of` (an fsspec filesystem and a root) or from a :class:`~lenslet_core.backend.Backend`.
    Blocking calls run in worker threads, ``io_concurrency`` of each kind at a time (by default
    the backend's: the usable cores on local disk, where more threads only contend for the same
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
        #: Folders listed at once (with their manifests) for an index run; an
        #: ``io_concurrency`` given is used as it is.
        self.list_concurrency = io_concurrency or backend.list_concurrency
        self._list_limiter = anyio.CapacityLimiter(self.list_concurrency)
        self.io_concurrency = io_concurrency or backend.io_concurrency
        self._limiter = anyio.CapacityLimiter(self.io_concurrency)
        # Over a network, writes (a first index's thumbnails) get a lane of their own, so reads
        # never queue behind them; on local disk they share one, as threads there cost cores.
        own = anyio.CapacityLimiter(self.io_concurrency) if not backend.reads_in_place else None
        self._write_limiter = own or self._limiter

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
        """The children of a folder, with kinds, sizes and mtimes, in one backend call."""
        return await self._run("list", path, self.backend.list, path)

    async def list_with_contents(
        self,
        path: str,
        wanted: Callable[[str], bool],
        then: Callable[[builtins.list[Entry], Contents], T],
        names_only: Callable[[str], bool] | None = None,
    ) -> T:
        """List a folder, read the small files ``wanted`` picks by name from that listing
        (e.g. its manifest pages), and return what ``then`` makes of the entries and the
        files' contents, off the event loop (over every entry of a large tree, that is CPU
        work of its own). Local disk does all three in one worker-thread hop; elsewhere it is
        one listing request, then one read per picked file, concurrently, then ``then`` in a
        thread. A file that cannot be read maps to its error. ``names_only``: see
        :meth:`Backend.list`; only where the listing has files ``wanted`` picks (a folder
        without a manifest is built from its listing, which then needs every size and
        mtime)."""

        def pick(entries: builtins.list[Entry]) -> builtins.list[str]:
            names = [e.name for e in entries if wanted(e.name) and e.is_file]
            self._observe("read", [paths.join(path, name) for name in names])
            return names

        if not self.backend.reads_in_place:
            entries = await self._run("list", path, self.backend.list, path, names_only)
            names = pick(entries)
            datas = await self._read_all([paths.join(path, name) for name in names])
            contents = dict(zip(names, datas, strict=True))
            return await anyio.to_thread.run_sync(then, entries, contents, limiter=self._limiter)

        def list_and_read() -> T:
            with translate(path, self.backend):
                entries = self.backend.list(path, names_only)
                names = pick(entries)
                if names_only is not None and not names:
                    entries = self.backend.list(path)
            return then(entries, {n: self._read_or_error(paths.join(path, n)) for n in names})

        self._observe("list", [path])
        return await anyio.to_thread.run_sync(list_and_read, limiter=self._list_limiter)

    async def files(self, path: str = "") -> dict[str, tuple[int, float]]:
        """Every file below a folder, by logical path, with its size and mtime: one recursive
        listing (on S3, pages of 1,000 keys with no delimiter), for watchers that compare."""
        return await self._run("list", path, self.backend.files, path)

    async def info(self, path: str) -> Entry:
        return await self._run("info", path, self.backend.info, path)

    async def read(self, path: str) -> bytes:
        return await self._run("read", path, self.backend.read, path)

    async def read_range(self, path: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of a file (fewer at its end): one request, for serving
        ranges and streaming large files in parts."""
        return await self._run("read", path, self.backend.read_range, path, start, end)

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
        consume: Consumers[T],
        *,
        limiter: anyio.CapacityLimiter,
    ) -> builtins.list[T | LensletError]:
        """Read whole files and hand each one's bytes to ``consume`` (CPU work such as probing
        and hashing; or one callable per path) in a worker thread bounded by ``limiter``.
        Returns, in order, each result or the :class:`LensletError` that file raised, so one bad
        file does not sink the batch.

        A batch costs one thread hop on local disk — the thread reads and works through the
        batch without a round trip to the event loop per file, as a bare thread-pool loop would.
        Elsewhere the files are read concurrently under the I/O limiter first, so slow network
        reads never hold CPU slots.
        """
        self._observe("read", paths)
        consumers = each(consume, len(paths))

        def work(index: int, data: bytes | LensletError) -> T | LensletError:
            if isinstance(data, LensletError):
                return data
            try:
                return consumers[index](data)
            except LensletError as exc:
                return exc

        if self.backend.reads_in_place:
            return await anyio.to_thread.run_sync(
                lambda: [work(i, self._read_or_error(path)) for i, path in enumerate(paths)],
                limiter=limiter,
            )
        datas = await self._read_all(paths)
        return await anyio.to_thread.run_sync(
            lambda: [work(i, data) for i, data in enumerate(datas)], limiter=limiter
        )

    async def read_versioned(self, path: str) -> tuple[bytes, str]:
        """The bytes of a small document and the validator a conditional write expects (on S3
        the object's ETag, from the same GET)."""
        return await self._run("read", path, self.backend.read_versioned, path)

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

    async def write(self, path: str, data: bytes, *, parents: bool = False) -> None:
        """Replace a file whole; readers see the old or the new bytes, never a part.
        ``parents`` creates missing folders on the way (object stores have none to create)."""
        self.check_writable(path)
        await self._run("write", path, self.backend.write, path, data, parents)

    def writes_here(self, path: str) -> bool:
        """Whether :meth:`write_here` may write ``path``: on local disk, where a write is a
        fraction of a millisecond, and when the root takes writes."""
        return self.backend.reads_in_place and self.writable(path)

    def write_here(self, path: str, data: bytes) -> None:
        """:meth:`write` in the calling thread, for a consumer of :meth:`read_each_into` that
        writes what it made from a file (a thumbnail) where it made it: no second thread hop,
        which on busy cores costs more than the write. Only where :meth:`writes_here` says."""
        self.check_writable(path)
        if not self.backend.reads_in_place:
            raise RuntimeError(f"write_here on {self.where}: writes here are for local disk")
        self._observe("write", [path])
        with translate(path, self.backend):
            self.backend.write(path, data, False)

    async def write_if(self, path: str, data: bytes, *, expected: str | None) -> str:
        """Write only if the stored version is ``expected`` (``None``: only if absent).

        Raises :class:`PreconditionFailed` when another writer got there first; returns the
        new version's validator.
        """
        self.check_writable(path)
        return await self._run("write", path, self.backend.write_if, path, data, expected)

    async def create(self, path: str, data: bytes) -> None:
        """Write a new file whole (atomically); :class:`AlreadyExists` if there is one."""
        self.check_writable(path)
        await self._run("write", path, self.backend.create, path, data)

    async def remove_abandoned(self, path: str) -> bool:
        """Delete the temp file of an atomic write (``*.lenslet-tmp``) whose writer is gone —
        killed mid-write: on local disk one that no live process holds locked (every writer
        locks its temp file while it writes), elsewhere or with no lock to tell by one older
        than 15 minutes. One younger than two seconds is always left (its writer may not have
        locked it yet). Returns whether it deleted the file."""
        self.check_writable(path)
        removed: bool = await self._run("delete", path, self.backend.remove_abandoned, path)
        return removed

    async def make_folder(self, path: str) -> None:
        """Create a folder and the folders above it that are missing (an object store has no
        folders: nothing to do there). On local disk no part of it may be a symlink."""
        self.check_writable(path)
        await self._run("write", path, self.backend.make_folder, path)

    async def move(self, source: str, target: str) -> None:
        """Move a file to a path that must not exist yet (:class:`AlreadyExists`). Between a
        pointer's target and elsewhere it is a copy, then a delete of the source."""
        self.check_writable(source)
        self.check_writable(target)
        await self._run("write", target, self.backend.move, source, target)

    async def delete(self, path: str, *, missing_ok: bool = True) -> None:
        """Delete a file. An object store deletes a missing key without a word, so there
        ``missing_ok=False`` costs a HEAD first."""
        self.check_writable(path)
        await self._run("delete", path, self.backend.delete, path, missing_ok)

    async def run_local(self, func: Callable[..., T], *args: Any) -> T:
        """A blocking call about the local root's folders that is no file request (a kernel
        watch on them: :mod:`lenslet_core.kept`), in this seam's threads and under its limit;
        not observed, and its errors are the caller's."""
        return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)

    # -- the seam: threads, observation, translation ---------------------------------------------

    async def _run(self, op: str, path: str, func: Callable[..., T], *args: Any) -> T:
        self._observe(op, [path])
        with translate(path, self.backend):
            # A read that is cancelled (a caller's deadline: /health answers in 2 s whatever the
            # storage does) is left to finish in its thread; a write is always waited for.
            limiter = self._write_limiter if op in ("write", "delete") else self._limiter
            return await anyio.to_thread.run_sync(
                func, *args, limiter=limiter, abandon_on_cancel=op in _ABANDONABLE
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

    async def sign(self, path: str, seconds: int) -> str | None:
        """A URL that reads the file for ``seconds`` without lenslet (S3: a presigned GET),
        or ``None`` where the backend has none."""
        return await self._run("info", path, self.backend.sign, path, seconds)

    def check_writable(self, path: str) -> None:
        """Raise :class:`ReadOnly` when this root refuses writes."""
        if self.readonly:
            raise ReadOnly(f"the gallery root is read-only; cannot write {path!r}", path=path)

    async def ensure_writable(self, path: str) -> None:
        """:meth:`check_writable` (the router learns pointers first)."""
        self.check_writable(path)

    def writable(self, path: str) -> bool:
        """Whether writes to ``path`` are allowed (without asking storage)."""
        return not self.readonly


def each(consume: Consumers[T], count: int) -> Sequence[Callable[[bytes], T]]:
    """The consumer of each of ``count`` paths."""
    if callable(consume):
        return [consume] * count
    if len(consume) != count:
        raise ValueError(f"{len(consume)} consumers for {count} paths")
    return consume


async def retry_on_conflict(
    what: str,
    attempts: int,
    attempt: Callable[[], Awaitable[T]],
    conflict: Callable[[int], Awaitable[None]],
) -> T:
    """Run ``attempt`` (read, decide, conditional write) until no other writer got there
    first: after each :class:`PreconditionFailed`, ``conflict`` (told the attempt's number:
    back off, read again) and once more, at most ``attempts`` times; then give up with
    :class:`PreconditionFailed` naming ``what``."""
    for number in range(attempts):
        try:
            return await attempt()
        except PreconditionFailed:
            await conflict(number)
    raise PreconditionFailed(f"{what!r} kept changing; gave up after {attempts} tries", path=what)


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
