"""What a storage backend is: the blocking primitives one kind of filesystem offers lenslet.

A backend holds one root (a local folder, an S3 prefix, a folder of any fsspec filesystem) and
answers calls on paths relative to it: listing, reading, atomic and conditional writes, moves.
Its methods block; :class:`~lenslet_core.storage.Storage` (the seam) runs them in worker
threads, counts them, refuses writes to read-only roots and turns the errors they raise into
lenslet's tree with the backend's own table (:meth:`Backend.error`) before the common one
(:func:`os_error`). Backends are picked by protocol from the registry in :mod:`storage`
(``register_backend``): :mod:`local`, :mod:`s3`, and :mod:`filesystem` for any other one.
"""

from __future__ import annotations

import errno
import operator
from collections.abc import Callable
from typing import Literal, NamedTuple, Protocol

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

__all__ = [
    "Backend",
    "Entry",
    "EntryKind",
    "check_version",
    "entry_kind",
    "entry_name",
    "os_error",
]

EntryKind = Literal["file", "dir", "other"]


class Entry(NamedTuple):
    """One child of a listed folder. ``problem`` says why an entry cannot be used (a dangling
    symlink, a symlink out of the root, a name that is not UTF-8); such entries keep the kind
    they would have, are reported, and are never followed or read. (A named tuple: a listing
    of a large tree makes a million of them, and a tuple is made three times faster than a
    frozen dataclass.) ``etag``: the version of a JSON document (a sidecar, a manifest) as the
    listing gives it, where it does (an object store's ETag, which is what
    :meth:`Backend.write_if` returns); ``None`` for other files and where a listing gives none
    (local disk)."""

    name: str
    kind: EntryKind
    size: int = 0
    mtime: float = 0.0
    problem: str | None = None
    etag: str | None = None

    @property
    def is_folder(self) -> bool:
        """A sub-folder lenslet can go into."""
        return self.kind == "dir" and self.problem is None

    @property
    def is_file(self) -> bool:
        """A regular file lenslet can read."""
        return self.kind == "file" and self.problem is None


#: An entry's name and kind, as C-level getters for the scans asked of every entry of every
#: listing (``paths.POINTER_NAME in map(entry_name, entries)``).
entry_name, entry_kind = operator.itemgetter(0), operator.itemgetter(1)


class Backend(Protocol):
    """The blocking primitives of one root. Paths are logical (see :mod:`paths`) and relative
    to the root; ``""`` is the root itself. Errors are raised as the backend meets them
    (``OSError``, a client's own exceptions) and translated by the seam."""

    @property
    def root(self) -> str:
        """The root as the backend spells it (a real path on local disk, ``bucket/prefix``
        on S3)."""

    @property
    def url(self) -> str:
        """The root as a URL (a plain path for local disk), for messages and loop checks."""

    @property
    def where(self) -> str:
        """Named in error messages: the bucket and its endpoint on S3, else the URL."""

    @property
    def local_root(self) -> str | None:
        """The root's real path when it is on local disk (watchers need it), else ``None``."""

    @property
    def io_concurrency(self) -> int:
        """Requests worth running at once by default."""

    @property
    def list_concurrency(self) -> int:
        """Folders worth listing at once by default."""

    @property
    def reads_in_place(self) -> bool:
        """Whether reads are cheap enough to run inside a CPU worker's batch (local disk),
        rather than first, concurrently, under the I/O limiter (anything over a network)."""

    def check_root(self) -> None:
        """Fail when the root cannot be used at all (missing, refused, unreachable)."""

    def list(self, path: str, names_only: Callable[[str], bool] | None = None) -> list[Entry]:
        """A folder's children in one request (kinds, sizes, mtimes). Entries ``names_only``
        picks may come with size 0 and mtime 0.0 where those cost more (a stat each on local
        disk): callers that only need their names and kinds say so."""

    def files(self, path: str) -> dict[str, tuple[int, float]]:
        """Every file below a folder, by path from the root, with size and mtime."""

    def info(self, path: str) -> Entry:
        """One file or folder, asked afresh."""

    def read(self, path: str) -> bytes:
        """A whole file, in one request."""

    def read_range(self, path: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of a file (fewer at its end)."""

    def read_versioned(self, path: str) -> tuple[bytes, str]:
        """A file and the validator :meth:`write_if` expects for it."""

    def write(self, path: str, data: bytes, parents: bool) -> None:
        """Replace a file whole, atomically (``parents``: make missing folders)."""

    def write_if(self, path: str, data: bytes, expected: str | None) -> str:
        """Write only if the stored validator is ``expected`` (``None``: only if absent),
        else raise :class:`~lenslet_core.errors.PreconditionFailed`; the new validator."""

    def create(self, path: str, data: bytes) -> None:
        """Write a new file whole; ``FileExistsError`` when there is one."""

    def remove_abandoned(self, path: str) -> bool:
        """Delete an atomic write's temp file whose writer is gone; whether it did."""

    def make_folder(self, path: str) -> None:
        """Make a folder and those above it (nothing to do where there are no folders)."""

    def move(self, source: str, target: str) -> None:
        """Move a file to a path that must be free (``FileExistsError`` otherwise)."""

    def delete(self, path: str, missing_ok: bool) -> None:
        """Delete a file (``FileNotFoundError`` when missing and not ``missing_ok``)."""

    def sign(self, path: str, seconds: int) -> str | None:
        """A URL that reads the file for ``seconds`` without lenslet (an object store's
        presigned GET); ``None`` where the backend has none (local disk)."""

    def error(self, exc: Exception, path: str) -> LensletError | None:
        """This backend's own error table: lenslet's error for ``exc``, or ``None`` to leave
        it to the common one (:func:`os_error`)."""


#: Makes a backend for an fsspec filesystem and a root on it (the registry's values).
BackendFactory = Callable[[object, str], Backend]


def check_version(path: str, read: Callable[[], bytes], expected: str | None) -> None:
    """The check of a conditional write made under a lock (the backend's): the file as
    ``read`` gives it has the validator ``expected`` (``None``: there is no file), else
    :class:`PreconditionFailed`."""
    try:
        current: str | None = content_etag(read())
    except FileNotFoundError:
        current = None
    if current != expected:
        raise PreconditionFailed(
            f"{path!r} changed since it was read (expected {expected}, found {current})",
            path=path,
        )


def os_error(exc: Exception, path: str) -> LensletError | None:
    """The common table: what an ``OSError`` of any backend means. Anything else (``None``)
    is not a storage failure and surfaces as it is — a bug, not an outage to retry."""
    shown = path or "/"
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
            return InvalidPath(f"{path!r}: {reason(exc)}", path=path)
        return StorageError(f"storage failed on {shown!r}: {exc}", path=path)
    return None


def reason(exc: OSError) -> str:
    """An OSError in a few words."""
    return exc.strerror or type(exc).__name__
