"""Which local folders changed, as the Linux kernel reports it (inotify), read without blocking.

An event is queued by the same system call that makes the change (a rename into place, a
write, a delete), whichever process makes it. So once a change has returned to its writer,
the next :meth:`FolderEvents.changed` here reports its folder: what this process keeps in
memory for a folder can be checked against every change made to it, by any process, with one
non-blocking read. That holds only where every change passes through this kernel: a network
file system (NFS, SMB) hears nothing of changes made on other machines, so
:meth:`FolderEvents.open` gives ``None`` there, and on anything but Linux.

A folder is watched with every folder above it up to the root, so renaming or deleting any
of them is seen too (as a change to everything below it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import os
import select
import struct
import sys
import threading
import weakref

from . import paths

__all__ = ["Changes", "FolderEvents", "file_system_kind"]

_IN_MODIFY = 0x2
_IN_ATTRIB = 0x4
_IN_CLOSE_WRITE = 0x8
_IN_MOVED_FROM = 0x40
_IN_MOVED_TO = 0x80
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_IN_Q_OVERFLOW = 0x4000
_IN_IGNORED = 0x8000
_IN_ISDIR = 0x40000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_WATCHED = (
    _IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE
    | _IN_DELETE | _IN_DELETE_SELF | _IN_MOVE_SELF
)  # fmt: skip
_SELF = _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_IGNORED
_EVENT = struct.Struct("iIII")

#: File systems whose every change passes through this machine's kernel.
LOCAL_KINDS = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "overlay", "zfs", "f2fs", "jfs", "bcachefs"}
)
#: Folders watched at most; past it, nothing more is watched (and nothing more kept).
MAX_WATCHES = 4096


@dataclasses.dataclass
class Changes:
    """What changed: files in ``folders``; ``trees``, folders that came, went or were renamed
    (and so everything below them); ``everything``, when the kernel dropped events (its queue
    was full) and anything may have changed."""

    folders: set[str] = dataclasses.field(default_factory=set)
    trees: set[str] = dataclasses.field(default_factory=set)
    everything: bool = False


def file_system_kind(path: str) -> str | None:
    """The kind of file system ``path`` is on (``ext4``, ``nfs4``, …), from the mount table."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as table:
            mounts = table.read().splitlines()
    except OSError:
        return None
    real = os.path.realpath(path)
    best, kind = "", None
    for line in mounts:
        fields, _, rest = line.partition(" - ")
        parts = fields.split()
        if len(parts) < 5 or not rest:
            continue
        point = parts[4].replace("\\040", " ")
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, rest.split()[0]
    return kind


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not sys.platform.startswith("linux") or name is None:
        return None
    libc = ctypes.CDLL(name, use_errno=True)
    return libc if hasattr(libc, "inotify_init1") else None


class FolderEvents:
    """The folders of one local root that are watched, and which of them changed since last
    asked. :meth:`watch` looks paths up (call it from a worker thread); :meth:`changed` only
    reads what the kernel queued, without blocking."""

    def __init__(self, root: str, fd: int, libc: ctypes.CDLL) -> None:
        self.root = root
        self._fd = fd
        self._libc = libc
        self._folders: dict[int, str] = {}  # watch descriptor -> logical folder
        self._watched: set[str] = set()
        self._lock = threading.Lock()  # watch() runs in worker threads
        self._closer = weakref.finalize(self, os.close, fd)
        # Asked first: "nothing queued" costs a poll, not a read that fails with an error.
        self._queued = select.poll()
        self._queued.register(fd, select.POLLIN)

    @classmethod
    def open(cls, root: str) -> FolderEvents | None:
        """Events of the folders of ``root``; ``None`` where the kernel cannot tell every
        change (not Linux, a network file system, inotify unavailable)."""
        libc = _libc()
        if libc is None or file_system_kind(root) not in LOCAL_KINDS:
            return None
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            return None
        return cls(root, fd, libc)

    def close(self) -> None:
        self._closer()

    def watched(self, folder: str) -> bool:
        return folder in self._watched

    def watch(self, folder: str) -> bool:
        """Watch ``folder`` (logical) and every folder above it; whether it is watched."""
        if folder in self._watched:
            return True
        with self._lock:
            if len(self._watched) >= MAX_WATCHES or not self._closer.alive:
                return False
            parts = folder.split("/") if folder else []
            for end in range(len(parts) + 1):
                above = "/".join(parts[:end])
                if above in self._watched:
                    continue
                where = os.path.join(self.root, *parts[:end]).encode("utf-8", "surrogateescape")
                wd = self._libc.inotify_add_watch(self._fd, where, _WATCHED)
                if wd < 0:
                    return False  # gone, no access, or out of watches
                self._folders[wd] = above
                self._watched.add(above)
            return True

    def pending(self) -> bool:
        """Whether the kernel has queued anything since the last :meth:`changed` (one poll:
        cheaper than a read that finds nothing)."""
        return bool(self._queued.poll(0))

    def changed(self) -> Changes:
        """What changed in the watched folders since the last call (logical paths)."""
        found = Changes()
        if not self.pending():
            return found
        while self._closer.alive:
            try:
                data = os.read(self._fd, 64 * 1024)
            except (BlockingIOError, OSError):
                return found
            offset = 0
            while offset + _EVENT.size <= len(data):
                wd, mask, _, size = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size : offset + _EVENT.size + size].rstrip(b"\0")
                offset += _EVENT.size + size
                self._note(found, wd, mask, name.decode("utf-8", "surrogateescape"))
        return found

    def _note(self, found: Changes, wd: int, mask: int, name: str) -> None:
        if mask & _IN_Q_OVERFLOW:
            found.everything = True
            return
        folder = self._folders.get(wd)
        if folder is None:
            return  # watched a moment ago (the read after the watch sees it), or forgotten
        if mask & _SELF:
            found.trees.add(folder)
            self._forget(folder)
        elif mask & _IN_ISDIR:
            child = paths.join(folder, name)
            found.trees.add(child)  # a folder in it came, went or was renamed
            if mask & (_IN_MOVED_FROM | _IN_DELETE):
                self._forget(child)
        elif not name.endswith(paths.THUMBNAIL_SUFFIX) and not _is_temp(name):
            found.folders.add(folder)

    def _forget(self, folder: str) -> None:
        """Stop watching ``folder`` and below: a folder moved keeps its watch under its new
        name, so it is watched again by name when asked."""
        with self._lock:
            for wd, watched in list(self._folders.items()):
                if watched == folder or paths.within(watched, folder):
                    del self._folders[wd]
                    self._watched.discard(watched)
                    self._libc.inotify_rm_watch(self._fd, wd)


def _is_temp(name: str) -> bool:
    """A temp file of an atomic write: its rename into place is the change that counts."""
    return name.startswith(".lenslet-") and name.endswith(paths.TEMP_SUFFIX)
