"""The backend for any fsspec filesystem lenslet has no module of its own for (``memory://``,
and whatever else fsspec opens): its file API, used as fsspec spells it. The only module that
imports fsspec: it also opens a URL as a filesystem and a root (:func:`filesystem_of`).

:class:`FilesystemBackend` is also the base of the S3 backend (:mod:`s3`), which overrides what
S3 does better than the generic calls (one-GET reads, conditional PUTs, a bucket check).
"""

from __future__ import annotations

import datetime
import errno
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import fsspec
from fsspec.implementations.memory import MemoryFileSystem

from .backend import Entry, check_version
from .errors import LensletError, StorageError
from .hashing import content_etag
from .local import TEMP_ABANDONED
from .paths import SIDECAR_SUFFIX

__all__ = ["FilesystemBackend", "entry_of", "filesystem_of", "protocol_of"]

#: Concurrent requests to a backend reached over the network (object stores, memory).
REMOTE_IO_CONCURRENCY = 16


def filesystem_of(url: str, options: Mapping[str, Any]) -> tuple[Any, str]:
    """The fsspec filesystem and the root on it a URL or local path names; an unknown
    protocol or a missing client library fails here, at startup."""
    try:
        fs, root = fsspec.core.url_to_fs(url, **dict(options))
    except ImportError as exc:
        extra = " (pip install 'lenslet-core[s3]')" if url.startswith(("s3://", "s3a://")) else ""
        raise StorageError(f"cannot open storage {url!r}: {exc}{extra}") from exc
    except ValueError as exc:
        raise StorageError(f"cannot open storage {url!r}: {exc}") from exc
    return fs, str(root)


def protocol_of(url: str) -> str:
    """The fsspec protocol a URL or path names (``"file"`` for a plain path)."""
    protocol, _ = fsspec.core.split_protocol(url)
    return protocol or "file"


class FilesystemBackend:
    """A root on an fsspec filesystem, through its generic file API. Conditional writes need a
    lock this process holds: only the memory filesystem (one process by nature) has one."""

    reads_in_place = False
    io_concurrency = list_concurrency = REMOTE_IO_CONCURRENCY
    local_root: str | None = None

    def __init__(self, fs: Any, root: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/") or "/"
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        self.url = f"{protocol}://{self.root.lstrip('/')}"
        self._lock = threading.Lock() if isinstance(fs, MemoryFileSystem) else None

    @property
    def where(self) -> str:
        return self.url

    def error(self, exc: Exception, path: str) -> LensletError | None:
        return None

    def sign(self, path: str, seconds: int) -> str | None:
        return None

    def full(self, path: str) -> str:
        """The filesystem's path of a logical one."""
        return f"{self.root}/{path}" if path else self.root

    # -- reading ---------------------------------------------------------------------------------

    def check_root(self) -> None:
        self.info("")

    def list(self, path: str, names_only: Callable[[str], bool] | None = None) -> list[Entry]:
        full = self.full(path)
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
                entries.append(entry_of(name, detail))
        return entries

    def files(self, path: str) -> dict[str, tuple[int, float]]:
        found: dict[str, tuple[int, float]] = {}
        base = self.root.strip("/") + "/"
        for name, detail in self.fs.find(self.full(path), detail=True).items():
            entry = entry_of(name, detail)
            if entry.kind == "file" and name.strip("/").startswith(base):
                found[name.strip("/")[len(base) :]] = (entry.size, entry.mtime)
        return found

    def info(self, path: str) -> Entry:
        try:
            found = self._info(self.full(path))
        except FileNotFoundError:
            if path:
                raise
            return Entry("", "dir")  # the root of an object store is there, empty or not
        return entry_of(path.rsplit("/", 1)[-1], found)

    def _info(self, full: str) -> Mapping[str, Any]:
        found: Mapping[str, Any] = self.fs.info(full)
        return found

    def read(self, path: str) -> bytes:
        data: bytes = self.fs.cat_file(self.full(path))
        return data

    def read_range(self, path: str, start: int, end: int) -> bytes:
        data: bytes = self.fs.cat_file(self.full(path), start=start, end=end)
        return data

    def read_versioned(self, path: str) -> tuple[bytes, str]:
        data = self.read(path)
        return data, content_etag(data)

    # -- writing ---------------------------------------------------------------------------------

    def write(self, path: str, data: bytes, parents: bool) -> None:
        self.fs.pipe_file(self.full(path), data)

    def write_if(self, path: str, data: bytes, expected: str | None) -> str:
        with self._exclusive(path):
            check_version(path, lambda: self.read(path), expected)
            self.write(path, data, False)
        return content_etag(data)

    @contextmanager
    def _exclusive(self, path: str) -> Iterator[None]:
        if self._lock is None:
            raise StorageError(
                f"conditional writes are not supported on {self.url!r} yet", path=path
            )
        with self._lock:
            yield

    def create(self, path: str, data: bytes) -> None:
        full = self.full(path)
        if self.fs.exists(full):
            raise FileExistsError(errno.EEXIST, "exists", full)
        self.fs.pipe_file(full, data)

    def remove_abandoned(self, path: str) -> bool:
        full = self.full(path)
        if time.time() - entry_of(path, self.fs.info(full)).mtime < TEMP_ABANDONED:
            return False
        self.fs.rm_file(full)
        return True

    def make_folder(self, path: str) -> None:
        if path:
            self.fs.makedirs(self.full(path), exist_ok=True)

    def move(self, source: str, target: str) -> None:
        try:
            self.info(target)  # asked afresh, not from a cached listing
        except FileNotFoundError:
            self.fs.mv(self.full(source), self.full(target))
            return
        raise FileExistsError(errno.EEXIST, "exists", self.full(target))

    def delete(self, path: str, missing_ok: bool) -> None:
        if not missing_ok:
            self.info(path)  # an object store deletes a missing key without a word
        try:
            self.fs.rm_file(self.full(path))
        except FileNotFoundError:
            if not missing_ok:
                raise


def entry_of(name: str, detail: Mapping[str, Any]) -> Entry:
    """An :class:`Entry` from an fsspec detail record."""
    kind = detail.get("type")
    mtime = detail.get("mtime") or detail.get("LastModified") or detail.get("created") or 0.0
    if isinstance(mtime, datetime.datetime):
        mtime = mtime.timestamp()
    quoted = detail.get("ETag")
    quoted = quoted if isinstance(quoted, str) and quoted else None
    if quoted is not None and float(mtime).is_integer():
        # S3 keeps mtimes to the second: two versions of one size written within a second
        # (a star set twice) would look the same. Their ETags differ: one fills the
        # sub-second part, so a size-and-mtime stamp tells them apart. (Of the ETag as
        # listed, quotes and all: manifests and the rollup on storage keep these stamps.)
        mtime = float(mtime) + (zlib.crc32(quoted.encode()) % 1000) / 1000
    # The version only of JSON documents (sidecars, manifests), which lenslet writes
    # conditionally: a large tree's listings hold a million entries, most of them images and
    # thumbnails.
    etag = quoted.strip('"') if quoted is not None and name.endswith(SIDECAR_SUFFIX) else None
    return Entry(
        name,
        "dir" if kind == "directory" else "file" if kind == "file" else "other",
        int(detail.get("size") or 0),
        float(mtime),
        etag=etag,
    )
