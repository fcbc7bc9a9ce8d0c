from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
import pyvips
from hypothesis import given
from hypothesis import strategies as st

from lenslet_core import Lenslet, Manifest, Settings
from lenslet_core.build import _batches, folder_kind
from lenslet_core.storage import Entry
from tests.conftest import Requests
from tests.imagegen import jpeg_bytes, png_bytes, webp_bytes, write

pytestmark = pytest.mark.anyio


def manifest(folder: Path, name: str = "_index.json") -> dict[str, object]:
    return orjson.loads((folder / name).read_bytes())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("names", "kind"),
    [
        ([Entry("a.jpg", "file")], "leaf-real"),
        ([Entry("a.jpg", "file"), Entry("sub", "dir")], "branch"),
        ([Entry(".lenscat.folder.json", "file"), Entry("sub", "dir")], "leaf-pointer"),
        ([Entry(".hidden", "dir")], "leaf-real"),
    ],
)
def test_folder_kind(names: list[Entry], kind: str) -> None:
    assert folder_kind(names) == kind


async def test_manifest_lists_items_and_dirs_from_one_listing(
    gallery: Path, requests: Requests
) -> None:
    write(gallery / "b.png", png_bytes(30, 20))
    write(gallery / "a.jpg", jpeg_bytes(40, 30))
    write(gallery / "c.webp", webp_bytes(50, 10))
    write(gallery / "a.jpg.thumbnail", b"RIFF....WEBP")
    write(gallery / "c.webp.json", b'{"v":1,"tags":["x"]}')
    write(gallery / "notes.txt", b"not an image")
    write(gallery / "leaf" / "x.jpg", jpeg_bytes())
    write(gallery / "tree" / "deeper" / "y.jpg", jpeg_bytes())
    pointer = gallery / "linked"
    pointer.mkdir()
    (pointer / ".lenscat.folder.json").write_bytes(b'{"version":1,"kind":"pointer"}')
    async with Lenslet(str(gallery), observer=requests) as lens:
        await lens.index(recursive=False, thumbnails=False)
    doc = manifest(gallery)
    assert doc["v"] == 1
    assert doc["path"] == ""
    assert (doc["page"], doc["pageCount"], doc["itemCount"]) == (0, 1, 3)
    items = {i["name"]: i for i in doc["items"]}  # type: ignore[attr-defined]
    assert list(items) == ["a.jpg", "b.png", "c.webp"]
    assert items["a.jpg"]["type"] == "image/jpeg"
    assert (items["c.webp"]["w"], items["c.webp"]["h"]) == (50, 10)
    assert items["a.jpg"]["size"] == (gallery / "a.jpg").stat().st_size
    assert items["a.jpg"]["mtime"] == (gallery / "a.jpg").stat().st_mtime
    assert str(items["b.png"]["hash"]).startswith("blake3:")
    assert (items["a.jpg"]["hasThumb"], items["a.jpg"]["hasMeta"]) == (True, False)
    assert (items["c.webp"]["hasThumb"], items["c.webp"]["hasMeta"]) == (False, True)
    assert doc["dirs"] == [
        {"name": "leaf", "kind": "leaf-real"},
        {"name": "linked", "kind": "leaf-pointer"},
        {"name": "tree", "kind": "branch"},
    ]
    # One listing of the folder and one per sub-folder (for its kind), and one more of the
    # folder after its writes (the stamp of the sidecar the run refreshed, so the next run does
    # not read it again, and no thumbnail of an image gone meanwhile); no per-file info calls.
    assert requests.count("list") == 5
    # The facade's reachability check on entry, the rollup's size and mtime when read and
    # when written (how a newer rollup of another process is told apart).
    infos = sorted(p for op, p in requests.log if op == "info")
    assert infos == ["", "_rollup.json", "_rollup.json"]
    assert requests.count("read", (".jpg", ".png", ".webp")) == 3
    # The one existing sidecar gave the manifest its star and got its EXIF basics and hash
    # from that same read, and its tags went to the rollup (one read more); the rollup and
    # health files were looked for once.
    assert requests.count("read", "c.webp.json") == 2
    assert requests.count("read", ("_rollup.json", "_health.json")) == 2
    sidecar = orjson.loads((gallery / "c.webp.json").read_bytes())
    assert sidecar["exif"] == {"width": 50, "height": 10, "createdAt": None}
    assert sidecar["hash"] == items["c.webp"]["hash"]
    assert sidecar["tags"] == ["x"]
    assert not (gallery / "a.jpg.json").exists()


async def test_rebuild_reuses_unchanged_entries_without_reading(
    gallery: Path, requests: Requests
) -> None:
    for n in range(5):
        write(gallery / f"p{n}.jpg", jpeg_bytes(seed=n))
    async with Lenslet(str(gallery), observer=requests) as lens:
        await lens.index()
        requests.clear()
        write(gallery / "p2.jpg", jpeg_bytes(80, 60, seed=99))  # changed
        write(gallery / "p9.png", png_bytes())  # new
        (gallery / "p0.jpg").unlink()  # gone
        report = await lens.index()
    assert (report.analyzed, report.reused) == (2, 3)
    assert sorted(p for op, p in requests.log if op == "read" and not p.endswith(".json")) == [
        "p2.jpg",
        "p9.png",
    ]
    names = [i["name"] for i in manifest(gallery)["items"]]  # type: ignore[attr-defined]
    assert names == ["p1.jpg", "p2.jpg", "p3.jpg", "p4.jpg", "p9.png"]
    p2 = next(i for i in manifest(gallery)["items"] if i["name"] == "p2.jpg")  # type: ignore[attr-defined]
    assert (p2["w"], p2["h"]) == (80, 60)


async def test_flags_follow_the_listing_even_for_reused_entries(gallery: Path) -> None:
    write(gallery / "a.jpg", jpeg_bytes())
    async with Lenslet(str(gallery)) as lens:
        await lens.index()
        write(gallery / "a.jpg.json", b'{"v":1,"tags":[]}')
        write(gallery / "a.jpg.thumbnail", b"RIFF")
        report = await lens.index()
    assert report.analyzed == 0
    item = manifest(gallery)["items"][0]  # type: ignore[index]
    assert (item["hasThumb"], item["hasMeta"]) == (True, True)


async def test_large_folders_are_paged(gallery: Path) -> None:
    for n in range(7):
        write(gallery / f"img{n}.png", png_bytes(8, 8, seed=n))
    write(gallery / "sub" / "x.jpg", jpeg_bytes())
    async with Lenslet(str(gallery), Settings(page_size=3)) as lens:
        await lens.index()
        pages = [manifest(gallery, f"_index_{p}.json") for p in range(3)]
        assert not (gallery / "_index.json").exists()
        assert [len(p["items"]) for p in pages] == [3, 3, 1]  # type: ignore[arg-type]
        assert {p["pageCount"] for p in pages} == {3}
        assert {p["itemCount"] for p in pages} == {7}
        assert len({p["build"] for p in pages}) == 1
        assert all(p["dirs"] == [{"name": "sub", "kind": "leaf-real"}] for p in pages)
        second = await lens.folder("/", page=1)
        assert [i.name for i in second.items] == ["img3.png", "img4.png", "img5.png"]
    # The folder shrinks below one page: the pages give way to a single _index.json.
    for n in range(2, 7):
        (gallery / f"img{n}.png").unlink()
    async with Lenslet(str(gallery), Settings(page_size=3)) as lens:
        await lens.index()
    assert sorted(p.name for p in gallery.glob("_index*.json")) == ["_index.json"]
    assert manifest(gallery)["itemCount"] == 2


async def test_unchanged_folders_are_not_rewritten(gallery: Path, requests: Requests) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    async with Lenslet(str(gallery), observer=requests) as lens:
        await lens.index()
        before = (gallery / "a" / "_index.json").stat().st_mtime_ns
        requests.clear()
        report = await lens.index()
    assert report.manifests_written == 0
    assert [p for op, p in requests.log if op == "write"] == ["_health.json"]
    assert (gallery / "a" / "_index.json").stat().st_mtime_ns == before


async def test_manifest_writes_are_atomic_and_leave_no_temp_files(gallery: Path) -> None:
    for n in range(4):
        write(gallery / f"f{n}" / "x.jpg", jpeg_bytes(seed=n))
    async with Lenslet(str(gallery)) as lens:
        await lens.index()
    leftovers = [p for p in gallery.rglob("*") if p.name.endswith(".lenslet-tmp")]
    assert leftovers == []
    for index in gallery.rglob("_index.json"):
        Manifest.decode(index.read_bytes())


@pytest.mark.parametrize(
    "stored",
    # Cut short; and as a power cut leaves a file that was never flushed: empty, or zeros.
    [b'{"v":1,"items":[{"name":', b"", b"\x00" * 300],
    ids=["cut-short", "empty", "zeros"],
)
async def test_a_malformed_manifest_is_rebuilt(gallery: Path, stored: bytes) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    async with Lenslet(str(gallery)) as lens:
        await lens.index()
    (gallery / "_index.json").write_bytes(stored)
    async with Lenslet(str(gallery)) as lens:
        report = await lens.index()
    assert report.manifests_written == 1
    assert manifest(gallery)["itemCount"] == 1


async def test_a_newer_manifest_is_reported_and_not_overwritten(gallery: Path) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    future = b'{"v":2,"items":[],"dirs":[]}'
    (gallery / "_index.json").write_bytes(future)
    async with Lenslet(str(gallery)) as lens:
        report = await lens.index()
    assert (gallery / "_index.json").read_bytes() == future
    assert [s.code for s in report.skipped] == ["unsupported_version"]


async def test_mtime_change_alone_triggers_a_reread(gallery: Path) -> None:
    image = write(gallery / "x.jpg", jpeg_bytes())
    async with Lenslet(str(gallery)) as lens:
        await lens.index()
        st = image.stat()
        os.utime(image, (st.st_atime, st.st_mtime + 10))
        report = await lens.index()
    assert report.analyzed == 1


async def test_a_nested_unchanged_tree_keeps_its_manifests_in_a_new_process(
    gallery: Path,
) -> None:
    for folder in ("", "a", "a/b", "a/b/c"):
        write(gallery / folder / "x.jpg", jpeg_bytes())
        write(gallery / folder / "x.jpg.json", b'{"v": 1, "tags": ["t"]}')
    async with Lenslet(str(gallery)) as lens:
        first = await lens.index()
    async with Lenslet(str(gallery)) as lens:
        again = await lens.index()
    assert (first.manifests_written, again.manifests_written) == (4, 0)
    assert (again.items, again.reused, again.analyzed) == (4, 4, 0)
    signatures = {manifest(gallery / f)["listing"] for f in ("", "a", "a/b", "a/b/c")}
    assert len(signatures) == 4  # one per folder, each from its own listing


async def test_a_file_skipped_for_a_passing_reason_is_tried_again(gallery: Path) -> None:
    """A manifest whose listing has not changed is still rebuilt when it gave up on a file
    for a reason that may pass (here: a read error), or lacks a thumbnail it should have."""
    write(gallery / "x.jpg", jpeg_bytes())
    write(gallery / "y.jpg", jpeg_bytes(seed=2))
    async with Lenslet(str(gallery)) as lens:
        await lens.index()
    document = manifest(gallery)
    items = document["items"]
    assert isinstance(items, list)
    x, y = items
    document["items"] = [{**y, "hasThumb": False}]
    document["itemCount"] = 1
    document["skipped"] = [
        {"name": "x.jpg", "reason": "read failed", "code": "storage_error", "size": x["size"]}
    ]
    (gallery / "_index.json").write_bytes(orjson.dumps(document))  # the same "listing"
    async with Lenslet(str(gallery)) as lens:
        report = await lens.index()
    assert (report.analyzed, report.manifests_written, report.skipped) == (1, 1, [])
    rebuilt = manifest(gallery)["items"]
    assert isinstance(rebuilt, list)
    assert [(i["name"], i["hasThumb"]) for i in rebuilt] == [("x.jpg", True), ("y.jpg", True)]


async def test_a_settled_verdict_is_reported_again_without_a_read(
    gallery: Path, requests: Requests
) -> None:
    write(gallery / "bad.jpg", b"not an image at all")
    write(gallery / "x.jpg", jpeg_bytes())
    async with Lenslet(str(gallery)) as lens:
        first = await lens.index()
    async with Lenslet(str(gallery), observer=requests) as lens:
        again = await lens.index()
    assert (
        [s.code for s in first.skipped] == [s.code for s in again.skipped] == ["unsupported_image"]
    )
    assert [p for op, p in requests.log if op == "read" and p.endswith(".jpg")] == []
    assert (again.reused, again.manifests_written) == (2, 0)


async def test_a_new_page_size_pages_an_unchanged_folder_again(gallery: Path) -> None:
    for n in range(5):
        write(gallery / f"img{n}.jpg", jpeg_bytes(seed=n))
    async with Lenslet(str(gallery), Settings(page_size=3, thumbnails=False)) as lens:
        await lens.index()
    assert sorted(p.name for p in gallery.glob("_index*.json")) == [
        "_index_0.json",
        "_index_1.json",
    ]
    async with Lenslet(str(gallery), Settings(page_size=100, thumbnails=False)) as lens:
        report = await lens.index()
    assert (report.manifests_written, report.analyzed) == (1, 0)
    assert sorted(p.name for p in gallery.glob("_index*.json")) == ["_index.json"]


async def test_an_image_replaced_before_a_build_without_thumbnails_gets_a_new_one(
    gallery: Path,
) -> None:
    """A build that does not make thumbnails takes the old one for the new image; the next
    build that makes them sees it is older than its image and makes it again."""
    image = write(gallery / "x.jpg", jpeg_bytes(200, 100))
    async with Lenslet(str(gallery)) as lens:
        await lens.index()
        write(image, jpeg_bytes(100, 200, seed=5))  # replaced, portrait now
        await lens.index(thumbnails=False)
        assert manifest(gallery)["thumbsChecked"] is False
        report = await lens.index()
    assert report.thumbnails_made == 1
    assert manifest(gallery)["thumbsChecked"] is True
    thumb = pyvips.Image.new_from_buffer((gallery / "x.jpg.thumbnail").read_bytes(), "")
    assert thumb.height > thumb.width


async def test_a_manifest_deleted_under_a_server_is_written_again(gallery: Path) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    async with Lenslet(str(gallery), Settings(manifest_ttl=0, thumbnails=False)) as lens:
        assert [i.name for i in (await lens.folder("a")).items] == ["x.jpg"]
        (gallery / "a" / "_index.json").unlink()
        assert [i.name for i in (await lens.folder("a")).items] == ["x.jpg"]
    assert manifest(gallery / "a")["itemCount"] == 1


@given(st.lists(st.integers(0, 3 << 20), max_size=40), st.integers(1, 8))
def test_batches_hold_every_image_once_and_large_ones_alone(sizes: list[int], size: int) -> None:
    entries = [Entry(f"i{n}.png", "file", bytes_) for n, bytes_ in enumerate(sizes)]
    batches = _batches(entries, size, alone=1 << 20)
    assert sorted(e.name for b in batches for e in b) == sorted(e.name for e in entries)
    assert all(0 < len(b) <= size for b in batches)
    assert all(len(b) == 1 for b in batches if any(e.size >= 1 << 20 for e in b))
    order = [e.size for b in batches for e in b]
    assert order == sorted(order, reverse=True)  # the long ones first, the short ones last
