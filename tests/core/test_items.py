from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
import pyvips

from lenslet_core import (
    CorruptImage,
    InvalidPath,
    Job,
    Lenslet,
    LocalEngine,
    NotFound,
    Pending,
    Settings,
    Thumbnail,
)
from tests.conftest import Requests
from tests.imagegen import jpeg_bytes, png_bytes, webp_bytes, write

pytestmark = pytest.mark.anyio


def is_webp(data: bytes) -> bool:
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def has_thumb(manifest: Path, name: str) -> bool:
    items = json.loads(manifest.read_text())["items"]
    return bool(next(i for i in items if i["name"] == name)["hasThumb"])


async def made(lens: Lenslet, path: str, *, wait: float = 5) -> Thumbnail:
    result = await lens.thumbnail(path, wait=wait)
    assert isinstance(result, Thumbnail), result
    return result


@pytest.mark.parametrize(
    ("name", "maker"),
    [("x.jpg", jpeg_bytes), ("x.png", png_bytes), ("x.webp", webp_bytes)],
)
async def test_a_missing_thumbnail_is_made_and_kept_beside_the_image(
    gallery: Path, settings: Settings, name: str, maker: Callable[..., bytes]
) -> None:
    write(gallery / "a" / name, maker(640, 480))
    async with Lenslet(str(gallery), settings) as lens:
        thumb = await made(lens, f"/a/{name}")
        # Kept by the thumbnail job itself, before it answered.
        assert (gallery / "a" / f"{name}.thumbnail").read_bytes() == thumb.data
    assert thumb.path == f"a/{name}"
    assert thumb.media_type == "image/webp"
    assert is_webp(thumb.data)
    image = pyvips.Image.new_from_buffer(thumb.data, "")
    assert (image.width, image.height) == (256, 192)  # long edge at thumb_size
    # Exit finished the index job the thumbnail queued: the manifest knows about it.
    assert has_thumb(gallery / "a" / "_index.json", name)


@pytest.mark.parametrize("kept", [b"", b"RIFF\x00\x10\x00\x00WEBPVP8 ", b"\x00" * 64])
async def test_a_thumbnail_cut_short_is_made_again(
    gallery: Path, settings: Settings, kept: bytes
) -> None:
    # Thumbnails are not flushed to the disk one by one: after a power cut one may be empty,
    # or hold less than its header says. It is made again, not served.
    write(gallery / "x.jpg", jpeg_bytes(640, 480))
    write(gallery / "x.jpg.thumbnail", kept)
    async with Lenslet(str(gallery), settings) as lens:
        thumb = await made(lens, "x.jpg")
    assert is_webp(thumb.data)
    assert pyvips.Image.new_from_buffer(thumb.data, "").width == 256
    assert (gallery / "x.jpg.thumbnail").read_bytes() == thumb.data


async def test_an_existing_thumbnail_is_served_without_reading_the_image(
    gallery: Path, settings: Settings, requests: Requests
) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    kept = write(gallery / "x.jpg.thumbnail", webp_bytes(32, 24)).read_bytes()
    write(gallery / "y.jpg", jpeg_bytes(seed=1))
    write(gallery / "y.jpg.thumbnail", webp_bytes(32, 24, seed=1))
    async with Lenslet(str(gallery), settings, observer=requests) as lens:
        requests.clear()
        first = await lens.thumbnail("x.jpg")
        # Is the image there (a thumbnail alone is an orphan), then the thumbnail itself.
        assert requests.log == [("info", "x.jpg"), ("read", "x.jpg.thumbnail")]
        again = await lens.thumbnail("x.jpg")
        other = await lens.thumbnail("y.jpg")
        stats = lens.stats().jobs
    assert isinstance(first, Thumbnail)
    assert first.data == kept
    assert requests.count("read", (".jpg",)) == 0
    assert (stats.done, stats.failed, stats.depth) == (0, 0, 0)  # no job for it
    # A strong validator of the bytes: equal for equal bytes, different for different ones.
    assert isinstance(again, Thumbnail)
    assert isinstance(other, Thumbnail)
    assert first.etag == again.etag
    assert first.etag != other.etag
    assert not first.etag.startswith("W/")


async def test_a_made_thumbnail_has_the_etag_it_is_later_served_with(
    gallery: Path, settings: Settings
) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    async with Lenslet(str(gallery), settings) as lens:
        fresh = await made(lens, "x.jpg")
    async with Lenslet(str(gallery), settings) as lens:
        served = await made(lens, "x.jpg")
    assert served == fresh


async def test_the_thumbnail_of_a_missing_image_is_not_found(
    gallery: Path, settings: Settings
) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    async with Lenslet(str(gallery), settings) as lens:
        with pytest.raises(NotFound):
            await lens.thumbnail("a/missing.jpg")
        with pytest.raises(NotFound):
            await lens.thumbnail("nope/x.jpg")
        stats = lens.stats().jobs
    assert (stats.done, stats.failed) == (0, 0)  # a 404, not a job
    assert sorted(p.name for p in (gallery / "a").iterdir()) == ["x.jpg"]


@pytest.mark.parametrize(
    ("path", "refusal"),
    [
        ("../x.jpg", InvalidPath),
        ("a/../../x.jpg", InvalidPath),
        ("/a.jpg.thumbnail", (InvalidPath, NotFound)),  # a thumbnail has no thumbnail
    ],
)
async def test_paths_outside_the_contract_are_refused(
    gallery: Path,
    tmp_path: Path,
    settings: Settings,
    path: str,
    refusal: type[Exception] | tuple[type[Exception], ...],
) -> None:
    write(tmp_path / "x.jpg", jpeg_bytes())  # what an escape would reach
    write(gallery / "a.jpg", jpeg_bytes())
    write(gallery / "a.jpg.thumbnail", webp_bytes())
    async with Lenslet(str(gallery), settings) as lens:
        with pytest.raises(refusal):
            await lens.thumbnail(path)
        stats = lens.stats().jobs
    assert (stats.done, stats.failed) == (0, 0)
    assert sorted(p.name for p in gallery.iterdir()) == ["a.jpg", "a.jpg.thumbnail"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gallery", "x.jpg"]


async def test_a_corrupt_image_raises_and_is_kept_for_health(
    gallery: Path, settings: Settings
) -> None:
    write(gallery / "bad.jpg", jpeg_bytes(640, 480)[:300])  # cut off inside its headers
    async with Lenslet(str(gallery), settings) as lens:
        with pytest.raises(CorruptImage):
            await lens.thumbnail("bad.jpg")
        stats = lens.stats().jobs
    assert stats.failed == 1
    [failure] = stats.recent_failures
    assert (failure["kind"], failure["path"]) == ("thumbnail", "bad.jpg")
    assert failure["error"]["code"] == "corrupt_image"
    assert sorted(p.name for p in gallery.iterdir()) == ["bad.jpg"]


async def test_concurrent_requests_for_a_missing_thumbnail_read_the_image_once(
    gallery: Path, settings: Settings, requests: Requests
) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes(640, 480))
    results: list[Thumbnail | Pending] = []
    async with Lenslet(str(gallery), settings, observer=requests) as lens:
        # A manifest without thumbnails first, so the index job the thumbnail queues has
        # no reason to read the image again.
        await lens.index(thumbnails=False)
        assert not has_thumb(gallery / "a" / "_index.json", "x.jpg")
        requests.clear()

        async def ask() -> None:
            results.append(await lens.thumbnail("a/x.jpg", wait=5))

        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(ask)
    assert len(results) == 50
    assert isinstance(results[0], Thumbnail)
    assert all(r == results[0] for r in results)
    assert requests.count("read", (".jpg",)) == 1
    assert requests.count("write", (".thumbnail",)) == 1
    assert has_thumb(gallery / "a" / "_index.json", "x.jpg")


async def test_no_wait_answers_pending_and_the_job_goes_on(
    gallery: Path, settings: Settings
) -> None:
    write(gallery / "x.jpg", jpeg_bytes(640, 480))
    engine = LocalEngine(workers=4)
    async with Lenslet(str(gallery), settings, engine=engine) as lens:
        pending = await lens.thumbnail("x.jpg", wait=0)
        assert isinstance(pending, Pending)
        assert pending.path == "x.jpg"
        assert pending.retry_after >= 1
        handle = engine.status(Job("thumbnail", lens.url, "x.jpg"))
        assert handle is not None
        assert await handle.wait(5)
        done = await lens.thumbnail("x.jpg", wait=0)
    assert isinstance(done, Thumbnail)
    assert done.data == handle.result()
    assert (gallery / "x.jpg.thumbnail").read_bytes() == done.data


async def test_a_read_only_root_without_a_cache_makes_thumbnails_but_keeps_none(
    gallery: Path, settings: Settings, requests: Requests
) -> None:
    write(gallery / "x.jpg", jpeg_bytes(640, 480))
    readonly = settings.replace(readonly=True)
    async with Lenslet(str(gallery), readonly, observer=requests) as lens:
        thumb = await made(lens, "x.jpg")
        again = await made(lens, "x.jpg")
        stats = lens.stats().jobs
    assert is_webp(thumb.data)
    assert again == thumb
    # Nowhere to keep it on storage: kept in memory a while (manifest_ttl), so made once here.
    assert requests.count("read", (".jpg",)) == 1
    assert requests.count("write") == 0
    assert stats.failed == 0
    assert sorted(p.name for p in gallery.iterdir()) == ["x.jpg"]


async def test_a_read_only_root_keeps_thumbnails_in_the_cache(
    gallery: Path, tmp_path: Path, settings: Settings, requests: Requests
) -> None:
    write(gallery / "x.jpg", jpeg_bytes(640, 480))
    cached = settings.replace(readonly=True, thumb_cache=str(tmp_path / "cache"))
    engine = LocalEngine(workers=4)
    async with Lenslet(str(gallery), cached, observer=requests, engine=engine) as lens:
        thumb = await made(lens, "x.jpg")
        # The thumbnail's follow-up index of its folder reads the image (a read-only root
        # has no manifest to reuse): let it finish before counting.
        follow_up = engine.status(Job("index", lens.url, ""))
        if follow_up is not None:
            await follow_up.wait(30)
        requests.clear()
        again = await made(lens, "x.jpg")
        assert requests.count("read", (".jpg",)) == 0
    async with Lenslet(str(gallery), cached, observer=requests) as lens:
        requests.clear()
        later = await made(lens, "x.jpg")  # another process's lenslet, the same cache
    assert requests.count("read", (".jpg",)) == 0
    assert again == thumb
    assert later == thumb
    assert sorted(p.name for p in gallery.iterdir()) == ["x.jpg"]
    [kept] = (tmp_path / "cache").rglob("*.thumbnail")
    assert kept.name == "x.jpg.thumbnail"
    assert kept.read_bytes() == thumb.data


async def test_an_orphan_thumbnail_is_not_served(gallery: Path, settings: Settings) -> None:
    write(gallery / "gone.jpg.thumbnail", webp_bytes(32, 24))
    async with Lenslet(str(gallery), settings) as lens:
        with pytest.raises(NotFound):
            await lens.thumbnail("gone.jpg")
        assert lens.stats().jobs.done == 0


async def test_an_items_exif_basics_are_read_once_until_the_image_changes(
    gallery: Path, settings: Settings, requests: Requests
) -> None:
    write(gallery / "x.jpg", jpeg_bytes(640, 480))
    write(gallery / "x.jpg.json", b'{"tags": ["sea"]}')  # a sidecar without EXIF basics
    async with Lenslet(str(gallery), settings, observer=requests) as lens:
        first = await lens.item("x.jpg")
        again = await lens.item("x.jpg")
        assert requests.count("read", (".jpg",)) == 1  # the image, once: not per request
        write(gallery / "x.jpg", jpeg_bytes(320, 200, seed=3))  # replaced: read again
        changed = await lens.item("x.jpg")
    assert first.sidecar.exif == again.sidecar.exif
    assert first.sidecar.exif is not None
    assert (first.sidecar.exif.width, first.sidecar.exif.height) == (640, 480)
    assert changed.sidecar.exif is not None
    assert (changed.sidecar.exif.width, changed.sidecar.exif.height) == (320, 200)
    assert requests.count("read", (".jpg",)) == 2


async def test_a_search_asked_again_is_the_same_answer_until_something_changes(
    gallery: Path, requests: Requests
) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    write(gallery / "a" / "y.jpg", jpeg_bytes())
    write(gallery / "a" / "x.jpg.json", b'{"tags": ["sea"]}')
    settings = Settings(manifest_ttl=0.3)
    async with Lenslet(str(gallery), settings) as other:
        await other.index(thumbnails=False)
    async with Lenslet(str(gallery), settings, observer=requests) as lens:
        first = await lens.find("sea")
        assert [hit.path for hit in first] == ["a/x.jpg"]
        assert first[0].entry is not None
        assert not first[0].entry.hasThumb
        requests.clear()
        assert await lens.find("sea") is first  # nothing read, nothing built again
        assert requests.log == []
        assert await lens.find("sea", limit=5) is not first  # another question

        await lens.update_item("a/y.jpg", {"tags": ["sea"]})  # this process's edit: at once
        edited = await lens.find("sea")
        assert [hit.path for hit in edited] == ["a/x.jpg", "a/y.jpg"]

        # Another process makes the thumbnails and writes the manifest again: seen once the
        # answer is older than manifest_ttl, as folder pages are.
        async with Lenslet(str(gallery), settings) as other:
            await other.index(thumbnails=True)
        await anyio.sleep(0.4)
        later = await lens.find("sea")
        assert later is not edited
        assert all(hit.entry is not None and hit.entry.hasThumb for hit in later)


async def test_requests_for_a_thumbnail_no_longer_fresh_wait_for_one_read(
    gallery: Path, requests: Requests
) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    settings = Settings(manifest_ttl=0.05)
    async with Lenslet(str(gallery), settings) as lens:
        await lens.index("a")  # thumbnails made
    async with Lenslet(str(gallery), settings, observer=requests) as lens:
        await lens.folder("a")
        first = await made(lens, "a/x.jpg")
        await anyio.sleep(0.1)  # no longer fresh
        requests.clear()
        answers: list[Thumbnail | Pending] = []

        async def ask() -> None:
            answers.append(await lens.thumbnail("a/x.jpg"))

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(ask)
    assert requests.log == [("read", "a/x.jpg.thumbnail")]
    assert all(isinstance(a, Thumbnail) and a.etag == first.etag for a in answers)
