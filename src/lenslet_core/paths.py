"""Logical paths and the names of lenslet's flat files.

A logical path is POSIX, relative to the gallery root, with no leading or trailing slash; the root
itself is ``""``. Web clients send ``/trips/2025``: a leading ``/`` means the root, so that is the
same folder as ``trips/2025``. Anything that could step outside the root or reach a file lenslet
owns is refused with :class:`~lenslet_core.errors.InvalidPath`.
"""

from __future__ import annotations

import functools
import os
import re

from .errors import InvalidPath

__all__ = [
    "HEALTH_NAME",
    "IMAGE_EXTENSIONS",
    "LOCK_NAME",
    "POINTER_NAME",
    "ROLLUP_NAME",
    "TEMP_SUFFIX",
    "image_of",
    "index_name",
    "is_flat_file",
    "is_hidden",
    "is_image_name",
    "is_manifest_name",
    "is_utf8",
    "has_control",
    "item_path",
    "join",
    "new_folder_path",
    "new_item_path",
    "normalize",
    "parent",
    "printable",
    "resolve_within",
    "sidecar_name",
    "split",
    "thumbnail_name",
]

#: Extensions the indexer looks at; the content decides whether a file really is an image.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp"})
_IMAGE_ENDINGS = tuple(sorted(IMAGE_EXTENSIONS))
ROLLUP_NAME = "_rollup.json"
HEALTH_NAME = "_health.json"
POINTER_NAME = ".lenscat.folder.json"
#: The per-folder lock file that serialises conditional writes on local disk.
LOCK_NAME = ".lenslet.lock"
#: Suffix of the temporary files of atomic writes (hidden, so listings skip them).
TEMP_SUFFIX = ".lenslet-tmp"
THUMBNAIL_SUFFIX = ".thumbnail"
SIDECAR_SUFFIX = ".json"
MAX_PATH_LENGTH = 4096

_INDEX_RE = re.compile(r"^_index(?:_\d+)?\.json$")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")


def normalize(path: str) -> str:
    """Return the canonical logical form of ``path`` or raise :class:`InvalidPath`.

    ``""`` and ``"/"`` are the root; repeated and trailing slashes are dropped. Refused: ``.`` and
    ``..`` segments, NUL, backslashes, drive letters and paths longer than 4096 characters.
    """
    if not isinstance(path, str):
        raise InvalidPath(f"path must be a string, not {type(path).__name__}")
    return _normalized(path)


@functools.lru_cache(maxsize=4096)
def _normalized(path: str) -> str:
    # Kept for the paths asked lately, as :func:`_item_path` (a refusal is not kept): each
    # folder page and search normalizes the path it is asked for.
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidPath("path is too long", path=path[:64])
    if "\x00" in path:
        raise InvalidPath("path contains a NUL character", path=path)
    if "\\" in path:
        raise InvalidPath("path contains a backslash", path=path)
    if not is_utf8(path):
        raise InvalidPath("path is not valid UTF-8", path=printable(path))
    segments = [s for s in path.split("/") if s]
    if segments and _DRIVE_RE.match(segments[0]):
        raise InvalidPath(f"path {path!r} names a drive", path=path)
    for segment in segments:
        if segment in (".", ".."):
            raise InvalidPath(f"path {path!r} contains a {segment!r} segment", path=path)
    return "/".join(segments)


def is_utf8(text: str) -> bool:
    """False for names read from disk with undecodable bytes (kept by Python as surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str) -> str:
    """``text`` with undecodable bytes shown as U+FFFD, safe for JSON and terminals."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def item_path(path: str) -> str:
    """Normalize the path of an image: not the root, not one of lenslet's own files, and named
    like a JPEG, PNG or WebP (so a sidecar write can never land on a user's ``notes.json``)."""
    if not isinstance(path, str):
        raise InvalidPath(f"path must be a string, not {type(path).__name__}")
    return _item_path(path)


@functools.lru_cache(maxsize=4096)
def _item_path(path: str) -> str:
    # Kept for the paths asked lately (a pure function of the text; a refusal is not kept):
    # a server answers the same images' requests again and again.
    logical = normalize(path)
    if not logical:
        raise InvalidPath("an item path is required, not the root", path=path)
    name = logical.rsplit("/", 1)[-1]
    if is_flat_file(name) or is_hidden(name) or not is_image_name(name):
        raise InvalidPath(f"{name!r} is not an image of the gallery", path=path)
    return logical


def new_item_path(path: str) -> str:
    """:func:`item_path` for an image lenslet is asked to create (an upload, a move's target):
    no part of it may hold control characters either."""
    logical = item_path(path)
    if has_control(logical):
        raise InvalidPath(f"{logical!r}: a new name may not hold control characters", path=path)
    return logical


def new_folder_path(path: str) -> str:
    """Normalize the path of a folder lenslet is asked to create (a move into ``/_trash_``):
    no segment hidden, named like one of lenslet's own files, or holding control characters."""
    logical = normalize(path)
    for segment in logical.split("/") if logical else ():
        if is_hidden(segment) or is_flat_file(segment) or has_control(segment):
            raise InvalidPath(f"{segment!r} cannot be the name of a new folder", path=path)
    return logical


def has_control(name: str) -> bool:
    """Whether a name holds control characters (C0, DEL, C1): refused in new names."""
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in name)


def within(path: str, folder: str) -> bool:
    """Whether a logical ``path`` is ``folder`` itself or lies below it (everything lies
    within the root, ``""``)."""
    return not folder or path == folder or path.startswith(folder + "/")


def join(folder: str, name: str) -> str:
    """Join a normalized folder path and a single name."""
    return f"{folder}/{name}" if folder else name


def split(path: str) -> tuple[str, str]:
    """Split a normalized path into (folder, name); the root's folder is ``""``."""
    folder, _, name = path.rpartition("/")
    return folder, name


def parent(path: str) -> str:
    return split(path)[0]


def is_hidden(name: str) -> bool:
    """Dot files: lenslet's temp, lock and pointer files, and the OS's own (``.DS_Store``)."""
    return name.startswith(".")


def is_image_name(name: str) -> bool:
    """Whether the indexer should look at this file (its content still has to agree)."""
    # One C call for the common case: this runs on every entry of every listing.
    return name.lower().endswith(_IMAGE_ENDINGS) and name[0] != "."


def sidecar_name(image_name: str) -> str:
    return image_name + SIDECAR_SUFFIX


def thumbnail_name(image_name: str) -> str:
    return image_name + THUMBNAIL_SUFFIX


def is_thumbnail_name(name: str) -> bool:
    """Whether ``name`` is named as a thumbnail (``x.jpg.thumbnail``)."""
    return name.endswith(THUMBNAIL_SUFFIX)


def image_of(name: str) -> str | None:
    """The image a sidecar or thumbnail name belongs to (``x.jpg`` for ``x.jpg.json`` and
    ``x.jpg.thumbnail``), or ``None`` for any other name."""
    for suffix in (SIDECAR_SUFFIX, THUMBNAIL_SUFFIX):
        if name.endswith(suffix) and is_image_name(name[: -len(suffix)]):
            return name[: -len(suffix)]
    return None


def index_name(page: int | None = None) -> str:
    """``_index.json`` for a single-page folder, ``_index_{page}.json`` for a paged one."""
    return "_index.json" if page is None else f"_index_{page}.json"


def is_manifest_name(name: str) -> bool:
    """``_index.json`` or one of its pages, ``_index_{n}.json``."""
    # The prefix test first: this runs on every entry of every listing.
    return name.startswith("_index") and _INDEX_RE.match(name) is not None


def is_flat_file(name: str) -> bool:
    """Whether ``name`` is one of the files lenslet keeps beside the images."""
    if name in (ROLLUP_NAME, HEALTH_NAME, POINTER_NAME, LOCK_NAME):
        return True
    if is_manifest_name(name) or name.endswith(THUMBNAIL_SUFFIX) or name.endswith(TEMP_SUFFIX):
        return True
    return name.endswith(SIDECAR_SUFFIX) and image_of(name) is not None


def resolve_within(root: str, relative: str) -> str:
    """Resolve ``relative`` under the local directory ``root``, following symlinks, and refuse
    a result outside the root. ``root`` must already be a real (resolved) path."""
    candidate = os.path.realpath(os.path.join(root, relative))
    if candidate != root and not candidate.startswith(root.rstrip(os.sep) + os.sep):
        raise InvalidPath(f"{relative!r} resolves outside the root", path=relative)
    return candidate
