"""Folder manifests: ``_index.json`` (or ``_index_0.json`` … when a folder is large) — the
document (:class:`Manifest` pages of :class:`ItemEntry` images, :class:`DirEntry` sub-folders
and :class:`Skipped` files) and its files: reading a page, splitting a folder into pages of one
build, writing them so that a reader never sees a mix of two builds. How a manifest is built
from a listing is :mod:`build`.

Written camelCase with ``"v": 1``; read back accepting the snake_case spellings existing
clients send (``has_thumb``).
"""

from __future__ import annotations

import dataclasses
import math
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

from . import paths
from .codec import VERSION, dumps, format_epoch, format_time, loads, utcnow
from .errors import LensletError, MalformedDocument, NotFound
from .hashing import content_etag
from .storage import Entry, Store

__all__ = [
    "DirEntry",
    "DirKind",
    "ItemEntry",
    "Manifest",
    "Skipped",
    "manifest_names",
    "paginate",
    "parse_manifest",
    "read_page",
    "same_content",
    "star_of",
    "write_manifest",
]

DirKind = Literal["branch", "leaf-real", "leaf-pointer"]
_DIR_KINDS = ("branch", "leaf-real", "leaf-pointer")


class ItemEntry(NamedTuple):
    """One image of a folder manifest. (A named tuple: an index run reads 500,000 of them
    from the manifests, and a tuple is made twice as fast as a frozen dataclass.)

    ``createdAt`` is the EXIF capture time (``None``: none, or not known for an entry from a
    manifest older than the field); ``star`` is the sidecar's, and ``metaStamp`` the size and
    mtime of the sidecar it was read from (stored, never shown to clients), so an unchanged
    sidecar is not read again. ``addedAt`` is not stored: it is the file's mtime."""

    name: str
    type: str
    w: int
    h: int
    size: int
    mtime: float
    hasThumb: bool  # the contract's camelCase spelling
    hasMeta: bool
    hash: str
    createdAt: str | None = None
    star: Any = None
    metaStamp: tuple[int, float] | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry as clients see it."""
        # Spelled out rather than dataclasses.asdict: a 5,000-item page encodes 10x faster.
        return {
            "name": self.name,
            "type": self.type,
            "w": self.w,
            "h": self.h,
            "size": self.size,
            "mtime": self.mtime,
            "addedAt": format_epoch(self.mtime),
            "createdAt": self.createdAt,
            "star": self.star,
            "hasThumb": self.hasThumb,
            "hasMeta": self.hasMeta,
            "hash": self.hash,
        }

    def to_stored_json(self) -> dict[str, Any]:
        """The entry as a manifest file keeps it."""
        document = self.to_json()
        if self.metaStamp is not None:
            document["metaStamp"] = list(self.metaStamp)
        return document

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ItemEntry:
        has_thumb = data.get("hasThumb", data.get("has_thumb", False))
        has_meta = data.get("hasMeta", data.get("has_meta", False))
        if not isinstance(has_thumb, bool) or not isinstance(has_meta, bool):
            raise TypeError("hasThumb and hasMeta must be booleans")
        created = data.get("createdAt")
        stamp = data.get("metaStamp")
        return cls(
            str(data["name"]),
            str(data["type"]),
            int(data["w"]),
            int(data["h"]),
            int(data["size"]),
            float(data["mtime"]),
            has_thumb,
            has_meta,
            str(data.get("hash", "")),
            created if isinstance(created, str) else None,
            star_of(data),
            (int(stamp[0]), float(stamp[1]))
            if isinstance(stamp, list) and len(stamp) == 2
            else None,
        )


def star_of(document: Mapping[str, Any]) -> int | float | None:
    """A document's ``star`` rating when it is a number (clients write 0-5), else ``None``."""
    star = document.get("star")
    if isinstance(star, bool) or not isinstance(star, (int, float)):
        return None
    return star if math.isfinite(star) else None


@dataclasses.dataclass(frozen=True)
class DirEntry:
    """One sub-folder of a folder manifest."""

    name: str
    kind: DirKind

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DirEntry:
        kind = data["kind"]
        if kind not in _DIR_KINDS:
            raise ValueError(f"unknown folder kind {kind!r}")
        return cls(name=str(data["name"]), kind=kind)


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A file (or folder) lenslet could not use, and why: ``reason`` in words, ``code`` an
    error code. In a folder's manifest ``path`` is the image-named file's name there, with its
    ``size`` and ``mtime`` (so an unchanged bad file is not read again by every index run) and,
    for an image refused for its pixel count, the header's ``w`` and ``h`` (so the verdict can
    be judged again, without a read, when ``max_pixels`` changes). In an index report ``path``
    is logical, and ``error`` the error itself where a whole folder failed (its listing, its
    manifest)."""

    path: str
    reason: str
    code: str
    size: int = 0
    mtime: float = 0.0
    w: int = 0
    h: int = 0
    #: What an image lenslet cannot show is instead, when its content tells (``image/heic``).
    type: str = ""
    error: LensletError | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def to_json(self) -> dict[str, str]:
        """As a report lists it."""
        return {"path": self.path, "reason": self.reason, "code": self.code}

    def to_stored_json(self) -> dict[str, Any]:
        """As a manifest keeps it (and clients see it there)."""
        document: dict[str, Any] = {
            "name": self.path,
            "reason": self.reason,
            "code": self.code,
            "size": self.size,
            "mtime": self.mtime,
            "w": self.w,
            "h": self.h,
        }
        if self.type:
            document["type"] = self.type
        return document

    @classmethod
    def from_stored_json(cls, data: Mapping[str, Any]) -> Skipped:
        return cls(
            str(data["name"]),
            str(data.get("reason", "")),
            str(data.get("code", "")),
            int(data.get("size", 0)),
            float(data.get("mtime", 0.0)),
            int(data.get("w", 0)),
            int(data.get("h", 0)),
            str(data.get("type") or ""),
        )


@dataclasses.dataclass(frozen=True)
class Manifest:
    """One page of a folder's ``_index.json``. Every page carries the folder's sub-folders, its
    skipped files and the same ``build`` id, so a reader can tell pages of one build from a mix
    of two."""

    path: str
    items: tuple[ItemEntry, ...]
    dirs: tuple[DirEntry, ...]
    generated_at: str
    build: str
    page: int = 0
    page_count: int = 1
    item_count: int = 0
    skipped: tuple[Skipped, ...] = ()
    #: The signature of the folder listing the build was made from (``""``: unknown).
    listing: str = ""
    #: Whether the build made the thumbnails that were missing or older than their image.
    thumbs_checked: bool = False

    def to_json(self, *, stored: bool = False) -> dict[str, Any]:
        """The page as clients see it, each item with its logical ``path`` (``stored``: as its
        manifest file keeps it)."""
        document = {
            "v": VERSION,
            "path": self.path,
            "generatedAt": self.generated_at,
            "build": self.build,
            "page": self.page,
            "pageCount": self.page_count,
            "itemCount": self.item_count,
            "items": [i.to_stored_json() for i in self.items] if stored else self._client_items(),
            "dirs": [d.to_json() for d in self.dirs],
            "skipped": [s.to_stored_json() for s in self.skipped],
        }
        if self.listing:
            document["listing"] = self.listing
            document["thumbsChecked"] = self.thumbs_checked
        return document

    def _client_items(self) -> list[dict[str, Any]]:
        """The items as clients see them: each with its logical ``path`` too."""
        prefix = self.path + "/" if self.path else ""
        items = []
        for item in self.items:
            document = item.to_json()
            document["path"] = prefix + item.name
            items.append(document)
        return items

    def encode(self) -> bytes:
        """The page as its manifest file keeps it."""
        return dumps(self.to_json(stored=True))

    @classmethod
    def join(cls, pages: Iterable[Manifest]) -> Manifest:
        """The pages of one build as one page: the whole folder (``pageCount`` 1)."""
        pages = list(pages)
        first = pages[0]
        if len(pages) == 1 and first.page == 0 and first.page_count == 1:
            return first  # already the whole folder
        if any(page.build != first.build for page in pages):
            raise ValueError("pages of different builds cannot be joined")
        items = tuple(item for page in pages for item in page.items)
        return dataclasses.replace(first, items=items, page=0, page_count=1, item_count=len(items))

    @classmethod
    def decode(cls, data: bytes, *, what: str = "manifest") -> Manifest:
        document = loads(data, what=what)
        try:
            items = tuple(ItemEntry.from_json(item) for item in document.get("items", ()))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise MalformedDocument(f"{what} does not have the manifest shape: {exc}") from exc
        return cls.of_document(document, items, what=what)

    @classmethod
    def of_document(
        cls, document: Mapping[str, Any], items: tuple[ItemEntry, ...], *, what: str = "manifest"
    ) -> Manifest:
        """A page from its decoded document, with ``items`` (decoded from its ``items``, or
        left out: see :mod:`heads`)."""
        try:
            return cls(
                path=str(document.get("path", "")),
                items=items,
                dirs=tuple(DirEntry.from_json(d) for d in document.get("dirs", ())),
                generated_at=str(document.get("generatedAt", "")),
                build=str(document.get("build", "")),
                page=int(document.get("page", 0)),
                page_count=int(document.get("pageCount", 1)),
                item_count=int(document.get("itemCount", len(items))),
                skipped=tuple(Skipped.from_stored_json(s) for s in document.get("skipped", ())),
                listing=str(document.get("listing") or ""),
                thumbs_checked=document.get("thumbsChecked") is True,
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise MalformedDocument(f"{what} does not have the manifest shape: {exc}") from exc


def manifest_names(entries: Sequence[Entry]) -> list[str]:
    """The manifest files present in a listing."""
    return [e.name for e in entries if e.is_file and paths.is_manifest_name(e.name)]


async def read_page(
    storage: Store,
    folder: str,
    page: int,
    page_count: int | None,
    known: tuple[Manifest, str] | None = None,
) -> tuple[Manifest, str]:
    """Read one page, with a digest of its bytes; ``page_count`` ``None`` means unknown (try
    ``_index.json`` first). ``known``, a page read before with its digest, is given back as
    it is when the bytes are the same (not decoded again)."""
    if (page_count is None or page_count <= 1) and page == 0:
        try:
            return await _read(storage, folder, paths.index_name(), known)
        except NotFound:
            if page_count == 1:
                raise
    return await _read(storage, folder, paths.index_name(page), known)


async def _read(
    storage: Store, folder: str, name: str, known: tuple[Manifest, str] | None
) -> tuple[Manifest, str]:
    target = paths.join(folder, name)

    # Decoded in the reading worker thread: a 5,000-item page takes ~16 ms to decode, too long
    # to hold the event loop of a server. Hashing it first takes well under a tenth of that.
    def decode(data: bytes) -> tuple[Manifest, str]:
        digest = content_etag(data)
        if known is not None and known[1] == digest and known[0].path == folder:
            return known
        return _decode_at(folder, target, data), digest

    return await storage.read_into(target, decode)


def _decode_at(folder: str, what: str, data: bytes) -> Manifest:
    """A manifest page as a page of ``folder``: the logical path it was reached by, whoever
    built it (a pointer's target indexed as a root of its own has other paths)."""
    manifest = Manifest.decode(data, what=f"manifest {what!r}")
    return manifest if manifest.path == folder else dataclasses.replace(manifest, path=folder)


def parse_manifest(
    folder: str,
    contents: Mapping[str, bytes | LensletError],
    decode: Callable[[str, str, bytes], Manifest] | None = None,
) -> list[Manifest]:
    """All pages of a folder's current manifest from the manifest files' contents (keyed by
    name, as :meth:`Storage.list_with_contents` gives them). Returns ``[]`` when there is none
    or its pages are incomplete or from different builds (a rebuild is due either way); raises
    what decoding raises (``MalformedDocument``, ``UnsupportedVersion``) or a read error.
    ``decode(folder, what, data)`` decodes a page (default: whole)."""
    decode = decode or _decode_at

    def page(name: str) -> Manifest:
        data = contents[name]
        if isinstance(data, LensletError):
            raise data
        return decode(folder, paths.join(folder, name), data)

    if paths.index_name() in contents:
        return [page(paths.index_name())]
    if paths.index_name(0) not in contents:
        return []
    first = page(paths.index_name(0))
    pages = [first]
    for number in range(1, first.page_count):
        if paths.index_name(number) not in contents:
            return []
        pages.append(page(paths.index_name(number)))
    if any(p.build != first.build for p in pages):
        return []
    return pages


def paginate(
    folder: str,
    items: Sequence[ItemEntry],
    dirs: Sequence[DirEntry],
    page_size: int,
    skipped: Sequence[Skipped] = (),
    listing: str = "",
    thumbs_checked: bool = False,
) -> list[Manifest]:
    """Split a folder into manifest pages that share one build id (and ``listing``: the
    signature of the listing they were built from; ``thumbs_checked``: whether the build made
    the thumbnails due)."""
    build = secrets.token_hex(8)
    generated = format_time(utcnow())
    page_count = max(1, -(-len(items) // page_size))
    return [
        Manifest(
            path=folder,
            items=tuple(items[page * page_size : (page + 1) * page_size]),
            dirs=tuple(dirs),
            generated_at=generated,
            build=build,
            page=page,
            page_count=page_count,
            item_count=len(items),
            skipped=tuple(skipped),
            listing=listing,
            thumbs_checked=thumbs_checked,
        )
        for page in range(page_count)
    ]


def same_content(old: Sequence[Manifest], new: Sequence[Manifest]) -> bool:
    """Whether two manifests list the same items and folders (build ids and times aside)."""
    if len(old) != len(new):
        return False
    return all(
        a.items == b.items and a.dirs == b.dirs and a.skipped == b.skipped
        for a, b in zip(old, new, strict=False)
    )


async def write_manifest(
    storage: Store, folder: str, pages: Sequence[Manifest], existing: Sequence[str]
) -> None:
    """Write a folder's pages (each atomically), then remove pages of an older, larger build.

    A single-page folder is ``_index.json``; a paged one is ``_index_0.json`` … and no
    ``_index.json``. Page 0 is written last so that a reader that sees it sees its pages.
    """
    if len(pages) == 1:
        wanted = {paths.index_name(): pages[0]}
    else:
        wanted = {paths.index_name(p.page): p for p in pages}
    for name in sorted(wanted, key=lambda n: n == paths.index_name(0)):
        await storage.write(paths.join(folder, name), wanted[name].encode())
    for name in existing:
        if name not in wanted:
            await storage.delete(paths.join(folder, name))
