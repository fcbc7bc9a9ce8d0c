from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from lenslet_core import CorruptImage, Entry, Lenslet, Settings, Storage
from lenslet_core.codec import parse_time
from lenslet_core.health import Health, folder_health, read_health
from lenslet_core.manifest import ItemEntry
from tests.imagegen import jpeg_bytes, make_tree, png_bytes, write

pytestmark = pytest.mark.anyio

SETTINGS = Settings(cpu_concurrency=2)
DERIVED = ("_index.json", "_rollup.json", "_health.json", ".lenslet.lock")


def stored(root: Path) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads((root / "_health.json").read_bytes())
    return document


def broken_tree(root: Path) -> list[str]:
    """A tree with one of each problem; returns the paths of its good images."""
    made = make_tree(root, folders=2, per_folder=2)  # album0, album0/nested1
    write(root / "a" / "good.jpg", jpeg_bytes())
    write(root / "a" / "good.jpg.json", b'{"v": 1, "tags": ["fine"]}')
    write(root / "a" / "bad.jpg", jpeg_bytes(64, 48)[:400])  # ends inside its headers
    write(root / "a" / "gone.jpg.json", b'{"v": 1, "tags": ["orphan"]}')
    write(root / "a" / "gone.png.thumbnail", png_bytes(8, 8))
    write(root / "a" / "readme.txt", b"just text")
    write(root / "a" / "settings.json", b'{"not": "a sidecar"}')
    return [*made, "a/good.jpg"]


async def test_problems_are_counted_and_listed(gallery: Path) -> None:
    good = broken_tree(gallery)
    async with Lenslet(str(gallery), SETTINGS) as lens:
        assert await lens.stored_health() is None
        await lens.index()
        kept = await lens.stored_health()
        assert kept is not None
        assert kept["counts"] == (await lens.health_report())["counts"]
    document = stored(gallery)
    assert document["v"] == 1
    assert document["ok"] is False
    assert document["counts"] == {
        "items": len(good),
        "folders": 4,  # "", a, album0, album0/nested1
        "missingThumbnails": 0,
        "orphanSidecars": 1,
        "orphanThumbnails": 1,
        "skipped": 1,
        "brokenPointers": 0,
        "failedJobs": 0,
        "unsupported": 0,
    }
    assert document["orphanSidecars"] == ["a/gone.jpg.json"]
    assert document["orphanThumbnails"] == ["a/gone.png.thumbnail"]
    assert [(s["path"], s["code"]) for s in document["skipped"]] == [("a/bad.jpg", "corrupt_image")]
    assert document["skipped"][0]["reason"]
    assert document["pointers"] == {"broken": []}
    assert set(document["folders"]) == {"", "a", "album0", "album0/nested1"}
    counted = document["folders"]["a"]
    assert (counted["items"], counted["missingThumbnails"]) == (1, 0)
    # The manifest build it was counted from: its listing signature and build id.
    built = orjson.loads((gallery / "a" / "_index.json").read_bytes())
    assert counted["manifest"] == f"{built['listing']}:{built['build']}"

    listed = document["orphanSidecars"] + document["orphanThumbnails"]
    assert not [p for p in listed if p.endswith(DERIVED) or "readme" in p or "settings" in p]


async def test_lenslets_own_files_are_never_orphans(gallery: Path) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    async with Lenslet(str(gallery), SETTINGS) as lens:
        await lens.index()
        await lens.update_item("x.jpg", {"tags": ["t"]})  # takes the folder's lock file
    assert {p.name for p in gallery.iterdir()} >= {"_index.json", "_rollup.json", "_health.json"}
    async with Lenslet(str(gallery), SETTINGS) as lens:
        await lens.index()  # now _rollup.json and _health.json are in the listing
        report = await lens.health_report()
    assert report["ok"] is True
    assert report["orphanSidecars"] == report["orphanThumbnails"] == []
    assert report["counts"]["items"] == 1


async def test_a_clean_tree_is_ok(gallery: Path) -> None:
    made = make_tree(gallery, folders=3, per_folder=2)
    async with Lenslet(str(gallery), SETTINGS) as lens:
        await lens.index()
        report = await lens.health_report()
    document = stored(gallery)
    for health in (document, report):
        assert health["ok"] is True
        assert health["counts"]["items"] == len(made)
        assert health["counts"]["folders"] == 4  # "", album0, album0/nested1, album2
        assert health["counts"]["missingThumbnails"] == 0
        assert health["orphanSidecars"] == health["orphanThumbnails"] == health["skipped"] == []


async def test_without_thumbnails_every_image_misses_one_but_nothing_is_broken(
    gallery: Path,
) -> None:
    made = make_tree(gallery, folders=2, per_folder=3)
    async with Lenslet(str(gallery), SETTINGS) as lens:
        await lens.index(thumbnails=False)
    document = stored(gallery)
    assert document["counts"]["missingThumbnails"] == len(made) == document["counts"]["items"]
    assert document["ok"] is True
    assert sum(f["missingThumbnails"] for f in document["folders"].values()) == len(made)


async def test_last_index_run(gallery: Path) -> None:
    made = make_tree(gallery, folders=2, per_folder=2)
    async with Lenslet(str(gallery), SETTINGS) as lens:
        await lens.index()
    last = stored(gallery)["lastIndex"]
    started, finished = parse_time(last["startedAt"]), parse_time(last["finishedAt"])
    assert started is not None
    assert finished is not None
    assert started <= finished
    assert last["items"] == len(made)
    assert last["itemsPerSecond"] > 0
    assert last["path"] == ""
    assert last["skipped"] == 0


async def test_the_document_round_trips(gallery: Path) -> None:
    broken_tree(gallery)
    async with Lenslet(str(gallery), SETTINGS) as lens:
        await lens.index()
    document = stored(gallery)
    again = Health.from_json(document).to_json(document["jobs"])
    for key in ("ok", "counts", "orphanSidecars", "orphanThumbnails", "skipped", "folders"):
        assert again[key] == document[key], key
    assert again["lastIndex"] == document["lastIndex"]
    assert Health.from_json({}).to_json()["counts"]["items"] == 0


async def test_read_health(gallery: Path) -> None:
    storage = Storage.open(str(gallery))
    assert await read_health(storage) is None
    health = Health()
    await health.save(storage, {"failed": 2})
    document = await read_health(storage)
    assert document is not None
    assert document["counts"]["failedJobs"] == 2
    assert document["ok"] is False


async def test_indexing_one_folder_keeps_the_other_folders_counts(gallery: Path) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    write(gallery / "a" / "bad.jpg", b"\xff\xd8\xff garbage")
    write(gallery / "b" / "y.png", png_bytes())
    write(gallery / "b" / "z.png", png_bytes(seed=1))
    write(gallery / "b" / "gone.webp.json", b'{"v": 1}')
    write(gallery / "b" / "c" / "w.jpg", jpeg_bytes(seed=2))
    async with Lenslet(str(gallery), SETTINGS) as lens:
        await lens.index()
    before = stored(gallery)
    assert before["counts"]["items"] == 4
    assert before["counts"]["skipped"] == 1

    (gallery / "a" / "bad.jpg").unlink()
    write(gallery / "a" / "new.jpg", jpeg_bytes(seed=3))
    async with Lenslet(str(gallery), SETTINGS) as lens:  # another process, later
        await lens.index("a", recursive=False)
        report = await lens.health_report()
    after = stored(gallery)
    for health in (after, report):
        assert health["counts"]["items"] == 5
        assert health["counts"]["folders"] == before["counts"]["folders"] == 4
        assert health["folders"]["a"]["items"] == 2
        assert health["folders"]["b"] == before["folders"]["b"]
        assert health["folders"]["b/c"] == before["folders"]["b/c"]
        assert health["orphanSidecars"] == ["b/gone.webp.json"]  # carried over
        assert health["skipped"] == []
        assert health["lastIndex"]["path"] == "a"
        assert health["ok"] is False


async def test_a_failed_job_shows_in_health(gallery: Path) -> None:
    write(gallery / "a" / "ok.jpg", jpeg_bytes())
    write(gallery / "a" / "bad.jpg", jpeg_bytes(64, 48)[:400])
    async with Lenslet(str(gallery), SETTINGS) as lens:
        await lens.index()
    async with Lenslet(str(gallery), SETTINGS) as lens:
        with pytest.raises(CorruptImage):
            await lens.thumbnail("a/bad.jpg")
        report = await lens.health_report()
    assert report["counts"]["failedJobs"] >= 1
    assert report["ok"] is False
    assert report["jobs"]["failed"] >= 1
    failure = report["jobs"]["recentFailures"][0]
    assert (failure["kind"], failure["path"]) == ("thumbnail", "a/bad.jpg")
    assert failure["error"]["code"] == "corrupt_image"


def item(name: str, *, thumb: bool = True) -> ItemEntry:
    return ItemEntry(name, "image/jpeg", 4, 3, 10, 0.0, thumb, False, "")


def test_folder_health_from_a_listing() -> None:
    names = [
        "x.jpg",
        "x.jpg.json",
        "x.jpg.thumbnail",
        "Y.JPG",
        "Y.JPG.json",  # the same name, any case of extension
        "gone.jpeg.json",
        "gone.webp.thumbnail",
        "notes.txt.json",  # not an image's sidecar
        "_index.json",
        "_rollup.json",
        "_health.json",
    ]
    entries = [Entry(n, "file", 10, 0.0) for n in names]
    entries.append(Entry("old.png", "dir"))  # a folder named like an image is no image
    entries.append(Entry("old.png.json", "file", 10, 0.0))
    counts = folder_health("f", entries, [item("x.jpg"), item("Y.JPG", thumb=False)])
    assert counts.items == 2
    assert counts.missing_thumbnails == 1
    assert counts.orphan_sidecars == ("f/gone.jpeg.json", "f/old.png.json")
    assert counts.orphan_thumbnails == ("f/gone.webp.thumbnail",)


async def test_a_jpeg_with_damaged_pixels_is_listed_and_a_quirky_one_indexes(gallery: Path) -> None:
    """A JPEG whose scan is cut short (libjpeg would paint the rest grey) is refused and listed;
    one with a camera's harmless quirk (bytes before a marker) is an ordinary item."""
    data = jpeg_bytes(800, 600, seed=1)
    sos = data.index(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
    write(gallery / "cam" / "damaged.jpg", data[: (start + len(data)) // 2] + b"\xff\xd9")
    table = data.index(b"\xff\xdb")
    write(gallery / "cam" / "quirky.jpg", data[:table] + b"\x00\x00" + data[table:])
    async with Lenslet(str(gallery), SETTINGS) as lens:
        report = await lens.index()
        page = await lens.folder("cam")
    assert [i.name for i in page.items] == ["quirky.jpg"]
    assert [(s.path, s.code) for s in report.skipped] == [("cam/damaged.jpg", "corrupt_image")]
    assert (gallery / "cam" / "quirky.jpg.thumbnail").exists()
    assert not (gallery / "cam" / "damaged.jpg.thumbnail").exists()
    document = stored(gallery)
    assert document["ok"] is False
    assert [(s["path"], s["code"]) for s in document["skipped"]] == [
        ("cam/damaged.jpg", "corrupt_image")
    ]


async def test_files_lenslet_cannot_show_are_counted_by_type(gallery: Path) -> None:
    write(gallery / "phone" / "IMG_0001.jpg", jpeg_bytes())
    for n in range(3):
        write(gallery / "phone" / f"IMG_{n + 2:04d}.HEIC", b"\x00\x00\x00\x18ftypheic" + b"x" * 64)
    write(gallery / "phone" / "anim.gif", b"GIF89a" + b"\x00" * 32)
    write(gallery / "phone" / "raw" / "DSC_1.NEF", b"MM\x00*" + b"\x00" * 32)
    # named like a JPEG, a HEIC by content: refused, and said what it is
    write(gallery / "phone" / "renamed.jpg", b"\x00\x00\x00\x18ftypheic" + b"x" * 64)
    write(gallery / "phone" / "notes.txt", b"not an image at all")
    async with Lenslet(str(gallery)) as lens:
        report = await lens.index()
    assert report.unsupported == {"image/heic": 4, "image/gif": 1, "image/x-nikon-nef": 1}
    assert report.summary()["unsupported"] == 6
    assert report.to_json()["unsupported"] == {
        "image/gif": 1, "image/heic": 4, "image/x-nikon-nef": 1,
    }  # fmt: skip
    [refused] = [s for s in report.skipped if s.path == "phone/renamed.jpg"]
    assert "image/heic" in refused.reason
    health = orjson.loads((gallery / "_health.json").read_bytes())
    assert health["unsupported"] == {"image/gif": 1, "image/heic": 4, "image/x-nikon-nef": 1}
    assert health["counts"]["unsupported"] == 6
    async with Lenslet(str(gallery)) as lens:  # an unchanged run says so again
        again = await lens.index()
        kept = await lens.health_report()
    assert again.unsupported == report.unsupported
    assert kept["unsupported"] == health["unsupported"]


async def test_a_run_that_found_nothing_to_do_keeps_the_last_runs_figures(gallery: Path) -> None:
    write(gallery / "a.jpg", jpeg_bytes())
    async with Lenslet(str(gallery)) as lens:
        await lens.index()
        first = stored(gallery)["lastIndex"]
        await lens.index()  # unchanged: reads and writes nothing
        assert stored(gallery)["lastIndex"] == first  # no meaningless rate over nothing
        write(gallery / "b.jpg", jpeg_bytes(seed=2))
        await lens.index()
    changed = stored(gallery)["lastIndex"]
    assert changed["startedAt"] > first["startedAt"]
    assert changed["items"] == 2
