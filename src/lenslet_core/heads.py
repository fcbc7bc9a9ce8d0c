"""A manifest's pages without their items: all an index run needs of a folder that did not
change.

A folder whose listing has the signature its manifest was built from is reused whole, so its
items are not needed: only the page headers (build, listing signature, counts, sub-folders,
skipped files) and whether every image has its thumbnail. Decoding the items is most of the
cost of reading a manifest (500,000 of them in an unchanged re-index of a large gallery), so
:func:`manifest_heads` decodes each file without them: the document around its ``items``
array, and a count of the items and of those with ``"hasThumb":true`` (``bytes.count``, at
memory speed). Both rely on the file being as lenslet writes it (orjson, no spaces, ``name``
first in each item); for any other file ``None`` says to decode it whole.

:class:`StoredItems` are the items, decoded when something first asks for them (the rollup or
health of a folder they have not counted yet).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import overload

from .codec import loads
from .errors import DocumentError, LensletError
from .manifest import ItemEntry, Manifest, parse_manifest

__all__ = ["Heads", "StoredItems", "manifest_heads"]

_ITEMS = b',"items":['
_AFTER_ITEMS = b'],"dirs":['
_ITEM = b'{"name":'
_WITH_THUMB = b'"hasThumb":true'


@dataclasses.dataclass(frozen=True)
class Heads:
    """A folder manifest's pages with no items (``items`` empty, ``item_count`` as stored),
    and whether every item has its thumbnail."""

    pages: list[Manifest]
    all_thumbs: bool


class _NotAsWritten(Exception):
    """A manifest file not laid out as lenslet writes it."""


def manifest_heads(folder: str, contents: Mapping[str, bytes | LensletError]) -> Heads | None:
    """The heads of a folder's manifest from its files' contents (see :func:`parse_manifest`),
    or ``None`` when there is no complete manifest, a file cannot be read or decoded, or one
    is not as lenslet writes it: decode the files whole then."""
    items = thumbs = 0

    def head(folder: str, what: str, data: bytes) -> Manifest:
        nonlocal items, thumbs
        start = data.find(_ITEMS)
        end = data.rfind(_AFTER_ITEMS)
        if start < 0 or end < start:
            raise _NotAsWritten
        # The document with an empty items array: "...,"items":[" + "],"dirs":[...}".
        document = loads(data[: start + len(_ITEMS)] + data[end:], what=what)
        if not isinstance(document, dict):
            raise _NotAsWritten
        items += data.count(_ITEM, start, end)
        thumbs += data.count(_WITH_THUMB, start, end)
        page = Manifest.of_document(document, (), what=what)
        return page if page.path == folder else dataclasses.replace(page, path=folder)

    try:
        pages = parse_manifest(folder, contents, head)
    except (_NotAsWritten, LensletError):
        return None
    if not pages or items != pages[0].item_count or thumbs > items:
        return None
    return Heads(pages, all_thumbs=thumbs == items)


class StoredItems(Sequence[ItemEntry]):
    """A folder's items as its manifest files hold them, decoded on first use. Files that no
    longer decode give no items (the folder's next build writes them again)."""

    def __init__(self, folder: str, contents: Mapping[str, bytes | LensletError]) -> None:
        self._folder = folder
        self._contents: Mapping[str, bytes | LensletError] | None = contents
        self._items: list[ItemEntry] = []

    def _decoded(self) -> list[ItemEntry]:
        if self._contents is not None:
            contents, self._contents = self._contents, None
            try:
                pages = parse_manifest(self._folder, contents)
            except (DocumentError, LensletError):
                pages = []
            self._items = [item for page in pages for item in page.items]
        return self._items

    def __len__(self) -> int:
        return len(self._decoded())

    @overload
    def __getitem__(self, index: int) -> ItemEntry: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[ItemEntry]: ...
    def __getitem__(self, index: int | slice) -> ItemEntry | Sequence[ItemEntry]:
        return self._decoded()[index]

    def __iter__(self) -> Iterator[ItemEntry]:
        return iter(self._decoded())
