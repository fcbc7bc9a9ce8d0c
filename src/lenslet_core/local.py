"""The local disk backend: a folder, read and written with plain ``os`` calls.

What a local disk can do and lenslet relies on: one ``scandir`` per listing with the stat
facts it needs; writes by temp file + ``fsync`` + rename, so readers see old or new bytes;
conditional writes serialised across processes by ``flock`` on a lock file in the folder; and a
symlink policy that keeps every path inside the root (folder links are never followed, file
links only when they resolve inside; lenslet's own files are never used through one).
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator

from . import paths
from .backend import Entry, EntryKind, check_version, reason
from .errors import AlreadyExists, InvalidPath, LensletError, NotFound
from .hashing import content_etag

__all__ = ["LocalBackend"]

#: A temp file younger than this is never taken for abandoned (its writer may not have locked
#: it yet; after the last write, the rename follows within this).
TEMP_GRACE = 2.0
#: Where no lock can tell, a temp file this old is taken for abandoned.
TEMP_ABANDONED = 15 * 60.0


def usable_cores() -> int:
    """The cores this process may run on (its affinity, where the system tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class LocalBackend:
    """A folder on local disk (its real path: a root given through a symlink is resolved once)."""

    #: Listing a local folder is mostly Python work per entry (the stat calls are quick), so a
    #: second thread mainly adds hand-offs of the GIL: 500,000 images listed in 4.9 s with one
    #: thread, 6.8 s with two. (A NAS mount, where each stat waits on the network, wants more:
    #: an ``io_concurrency`` setting is used for both.)
    list_concurrency = 1
    reads_in_place = True

    def __init__(self, root: str) -> None:
        real = os.path.realpath(root)
        if not os.path.isdir(real):
            raise NotFound(f"gallery root {root!r} is not a folder", path=root)
        self.root = self.url = self.where = real
        self.local_root: str | None = real
        # More threads than cores only contend for the same page cache.
        self.io_concurrency = usable_cores()

    @classmethod
    def for_filesystem(cls, fs: object, root: str) -> LocalBackend:
        return cls(root)

    def error(self, exc: Exception, path: str) -> LensletError | None:
        return None  # the common OSError table says it all

    def sign(self, path: str, seconds: int) -> str | None:
        return None  # files on local disk are served by lenslet itself

    # -- reading ---------------------------------------------------------------------------------

    def check_root(self) -> None:
        self.info("")

    def list(self, path: str, names_only: Callable[[str], bool] | None = None) -> list[Entry]:
        # os.scandir is what fsspec's LocalFileSystem.ls uses too; reading it directly gives
        # the symlink facts needed to keep every entry inside the root.
        full = self._folder(path)
        # Listed through the folder's descriptor, each stat is one lookup in the folder
        # (fstatat), not a walk down the whole path again: 15% less time in the stat calls.
        # Not through a symlink (one put in the folder's place since it was resolved).
        fd = os.open(full, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            return self._scan(full, fd, names_only)
        finally:
            os.close(fd)

    def _scan(
        self, full: str, fd: int, names_only: Callable[[str], bool] | None
    ) -> builtins.list[Entry]:
        entries = []
        # The plain cases' entries made as the tuples they are, without the named tuple's
        # Python-level constructor: this loop runs for every entry of every index run.
        new = tuple.__new__
        with os.scandir(fd) as it:
            for dirent in it:
                if not dirent.name.isascii() and not paths.is_utf8(dirent.name):
                    # Shown with U+FFFD for the bad bytes: JSON (and clients) cannot carry them.
                    shown = paths.printable(dirent.name)
                    problem = "the name is not valid UTF-8 (rename it to include it)"
                    kind: EntryKind = "dir" if dirent.is_dir(follow_symlinks=False) else "file"
                    entries.append(Entry(shown, kind, problem=problem))
                    continue
                try:
                    if dirent.is_symlink():
                        entries.append(self._link(os.path.join(full, dirent.name), dirent))
                        continue
                    if names_only is not None and names_only(dirent.name):
                        # The kind from the directory entry itself: no stat.
                        kind = "dir" if dirent.is_dir(follow_symlinks=False) else "file"
                        entries.append(new(Entry, (dirent.name, kind, 0, 0.0, None, None)))
                        continue
                    st = dirent.stat(follow_symlinks=False)
                except OSError as exc:
                    entries.append(Entry(dirent.name, "other", problem=reason(exc)))
                    continue
                kind = "dir" if dirent.is_dir() else "file" if dirent.is_file() else "other"
                entries.append(new(Entry, (dirent.name, kind, st.st_size, st.st_mtime, None, None)))
        return entries

    def _link(self, link: str, dirent: os.DirEntry[str]) -> Entry:
        try:
            st = os.stat(link)
        except OSError as exc:
            return Entry(dirent.name, "other", problem=f"broken symlink ({reason(exc)})")
        kind: EntryKind = (
            "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
        )
        try:
            paths.resolve_within(self.root, os.path.relpath(link, self.root))
        except InvalidPath:
            return Entry(dirent.name, kind, problem="symlink resolves outside the root")
        if kind == "dir":
            problem = "folder symlinks are not followed (a pointer folder links folders)"
            return Entry(dirent.name, kind, problem=problem)
        return Entry(dirent.name, kind, st.st_size, st.st_mtime)

    def files(self, path: str) -> dict[str, tuple[int, float]]:
        found: dict[str, tuple[int, float]] = {}
        for folder, _, names in os.walk(self._folder(path)):
            for name in names:
                with contextlib.suppress(OSError):
                    st = os.stat(os.path.join(folder, name), follow_symlinks=False)
                    relative = os.path.relpath(os.path.join(folder, name), self.root)
                    found[relative.replace(os.sep, "/")] = (st.st_size, st.st_mtime)
        return found

    def info(self, path: str) -> Entry:
        st = os.stat(self._full(path))
        mode = st.st_mode
        kind: EntryKind = "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"
        return Entry(paths.split(path)[1], kind, st.st_size, st.st_mtime)

    def read(self, path: str) -> bytes:
        with os.fdopen(_open_regular(self._full(path), path), "rb") as f:
            return f.read()

    def read_range(self, path: str, start: int, end: int) -> bytes:
        fd = _open_regular(self._full(path), path)
        try:
            return os.pread(fd, max(0, end - start), start)
        finally:
            os.close(fd)

    def read_versioned(self, path: str) -> tuple[bytes, str]:
        data = self.read(path)
        return data, content_etag(data)

    # -- writing ---------------------------------------------------------------------------------

    def write(self, path: str, data: bytes, parents: bool) -> None:
        full = self._full(path, write=True)
        if parents:
            os.makedirs(os.path.dirname(full), exist_ok=True)
        _atomic_write(full, data, sync=_worth_a_flush(full))

    def write_if(self, path: str, data: bytes, expected: str | None) -> str:
        full = self._full(path, write=True)
        with _exclusive(full):
            check_version(path, lambda: self.read(path), expected)
            _atomic_write(full, data)
        return content_etag(data)

    def create(self, path: str, data: bytes) -> None:
        _atomic_write(self._full(path, write=True), data, replace=False)

    def remove_abandoned(self, path: str) -> bool:
        full = self._full(path, write=True)
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            age = time.time() - os.fstat(fd).st_mtime
            if age < TEMP_GRACE:
                return False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a live writer holds it
            except OSError:  # no locks here (some network file systems): go by age alone
                if age < TEMP_ABANDONED:
                    return False
            os.unlink(full)
            return True
        finally:
            os.close(fd)

    def make_folder(self, path: str) -> None:
        current = self.root
        for segment in path.split("/") if path else []:
            current = os.path.join(current, segment)
            if os.path.islink(current):
                raise InvalidPath(f"{path!r} passes through a symlink", path=path)
            with contextlib.suppress(FileExistsError):
                os.mkdir(current)
            if not os.path.isdir(current):
                raise AlreadyExists(f"{path!r}: a file is in the way of the folder", path=path)

    def move(self, source: str, target: str) -> None:
        src, dst = self._full(source, write=True), self._full(target, write=True)
        os.link(src, dst)  # never replaces a file at the target
        os.unlink(src)

    def delete(self, path: str, missing_ok: bool) -> None:
        try:
            os.unlink(self._full(path, write=True))
        except FileNotFoundError:
            if not missing_ok:
                raise

    # -- the symlink policy ----------------------------------------------------------------------

    def _full(self, path: str, *, write: bool = False) -> str:
        """The real path of a logical one, refused outside the root. lenslet's own files are
        never used through a symlink: a sidecar linked to anything is refused (serving or
        overwriting the target could leak or destroy it); a manifest link is derived data, so
        it reads as absent and a write replaces the link itself."""
        if not path:
            return self.root
        folder, name = paths.split(path)
        own = os.path.join(self._folder(folder), name)
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


@contextlib.contextmanager
def _exclusive(full: str) -> Iterator[None]:
    """Hold the lock that serialises conditional writes to ``full`` across threads and
    processes: a lock file in the folder, locked with flock."""
    lock_path = os.path.join(os.path.dirname(full), paths.LOCK_NAME)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


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


def _worth_a_flush(full: str) -> bool:
    """Whether a file is flushed to the disk before it replaces the old one: not thumbnails
    and manifests, which an index run makes again from the images when a power cut has left
    one empty or cut short (readers take it for missing, or for a manifest to rebuild); a
    flush each was a tenth of the time of indexing a folder of 1080p PNGs. Sidecars (what
    users wrote), the rollup and health (which later runs trust by their size and mtime)
    are flushed."""
    name = os.path.basename(full)
    return not (name.endswith(paths.THUMBNAIL_SUFFIX) or paths.is_manifest_name(name))


def _atomic_write(full: str, data: bytes, *, replace: bool = True, sync: bool = True) -> None:
    """Write a whole file by way of a temp file beside it: renamed over the target, or (not
    ``replace``) hard-linked to it, which fails and writes nothing when the target exists.
    ``sync``: flushed to the disk before it replaces the target."""
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
            if sync:
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
