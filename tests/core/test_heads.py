"""Manifest heads: the pages without their items, read without decoding them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lenslet_core import Lenslet, Settings
from lenslet_core.heads import StoredItems, manifest_heads
from lenslet_core.manifest import DirEntry, ItemEntry, Manifest, Skipped, paginate, parse_manifest
from tests.imagegen import jpeg_bytes, write

pytestmark = pytest.mark.anyio


def item(name: str, *, thumb: bool = True) -> ItemEntry:
    return ItemEntry(name, "image/jpeg", 4, 3, 100, 1.5, thumb, False, "blake3:00")


def stored(pages: list[Manifest]) -> dict[str, bytes | Exception]:
    if len(pages) == 1:
        return {"_index.json": pages[0].encode()}
    return {f"_index_{p.page}.json": p.encode() for p in pages}


def without_items(pages: list[Manifest]) -> list[Manifest]:
    return [dataclasses.replace(p, items=()) for p in pages]


names = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=12).map(
    lambda s: s + ".jpg"
)


@given(
    st.lists(st.tuples(names, st.booleans()), max_size=30, unique_by=lambda t: t[0]),
    st.lists(names, max_size=3, unique=True),
    st.integers(1, 8),
)
def test_heads_are_the_pages_without_their_items(
    found: list[tuple[str, bool]], dirs: list[str], page_size: int
) -> None:
    # Names may hold quotes, braces and the very text the heads count by: they are escaped.
    items = sorted((item(n, thumb=t) for n, t in found), key=lambda i: i.name)
    skipped = [Skipped('odd {"name":x.jpg', "corrupt", "corrupt_image", 10, 2.0)]
    pages = paginate(
        "a", items, [DirEntry(d, "leaf-real") for d in dirs], page_size, skipped, "sig", True
    )
    contents = stored(pages)
    heads = manifest_heads("a", contents)  # type: ignore[arg-type]
    assert heads is not None
    assert heads.pages == without_items(parse_manifest("a", contents))  # type: ignore[arg-type]
    assert heads.all_thumbs == all(t for _, t in found)
    assert list(StoredItems("a", contents)) == items  # type: ignore[arg-type]


def test_a_manifest_not_laid_out_as_lenslet_writes_it_has_no_heads() -> None:
    page = paginate("a", [item("x.jpg")], [], 100, (), "sig", True)[0]
    spaced = json.dumps(page.to_json(stored=True), indent=2).encode()
    assert manifest_heads("a", {"_index.json": spaced}) is None
    reordered = json.dumps({"items": [], **page.to_json(stored=True)}).encode()
    assert manifest_heads("a", {"_index.json": reordered}) is None


def test_a_missing_or_unreadable_manifest_has_no_heads() -> None:
    assert manifest_heads("a", {}) is None
    assert manifest_heads("a", {"_index.json": b"{not json"}) is None
    pages = paginate("a", [item("x.jpg"), item("y.jpg")], [], 1, (), "sig", True)
    assert manifest_heads("a", {"_index_0.json": pages[0].encode()}) is None  # page 1 missing


def test_stored_items_that_no_longer_decode_are_none() -> None:
    assert list(StoredItems("a", {"_index.json": b"{broken"})) == []


async def test_an_unchanged_reindex_decodes_no_item(
    gallery: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(6):
        write(gallery / f"f{n % 2}" / f"img{n}.jpg", jpeg_bytes(seed=n))
    async with Lenslet(str(gallery), settings) as lens:
        await lens.index()
    decoded: list[str] = []
    real = ItemEntry.from_json

    def counted(data: object) -> ItemEntry:
        entry = real(data)  # type: ignore[arg-type]
        decoded.append(entry.name)
        return entry

    monkeypatch.setattr(ItemEntry, "from_json", staticmethod(counted))
    async with Lenslet(str(gallery), settings) as lens:
        report = await lens.index()
    assert (report.reused, report.manifests_written, decoded) == (6, 0, [])
    # A rollup that is gone is made again from those same manifests, whose items are then
    # decoded: nothing is lost for not having decoded them before.
    (gallery / "_rollup.json").unlink()
    async with Lenslet(str(gallery), settings) as lens:
        report = await lens.index()
        hits = await lens.search("img")
    assert (report.reused, report.manifests_written) == (6, 0)
    assert sorted(decoded) == [f"img{n}.jpg" for n in range(6)]
    assert sorted(h.name for h in hits) == [f"img{n}.jpg" for n in range(6)]
