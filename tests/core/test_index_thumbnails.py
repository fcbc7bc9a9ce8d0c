from __future__ import annotations

import collections
import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import pyvips
from fsspec.implementations.memory import MemoryFileSystem
from typer.testing import CliRunner

from lenslet_cli import app
from lenslet_core import Lenslet, Settings, Storage
from tests.conftest import Requests
from tests.imagegen import (
    animated_webp_bytes,
    cmyk_jpeg_bytes,
    grey_alpha_png_bytes,
    jpeg_bytes,
    make_tree,
    png16_bytes,
    png_bytes,
    webp_bytes,
    write,
)

pytestmark = pytest.mark.anyio

IMAGES = (".jpg", ".png", ".webp")
#: What an index run writes per folder and image (root-level summaries aside).
OWN_FILES = (".thumbnail", "_index.json")


def items_of(index: Path) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in orjson.loads(index.read_bytes())["items"]}


def thumbnails(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.thumbnail") if p.is_file())


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".lenslet-tmp")]


def image_reads(requests: Requests) -> collections.Counter[str]:
    return collections.Counter(p for op, p in requests.log if op == "read" and p.endswith(IMAGES))


def check_thumbnail(data: bytes, width: int, height: int) -> None:
    """A valid WebP thumbnail of a ``width`` x ``height`` image (256 long edge at most)."""
    assert (data[:4], data[8:12]) == (b"RIFF", b"WEBP")
    thumb = pyvips.Image.new_from_buffer(data, "")
    scale = min(1.0, 256 / max(width, height))
    assert thumb.width == pytest.approx(width * scale, abs=1)
    assert thumb.height == pytest.approx(height * scale, abs=1)
    assert (thumb.interpretation, thumb.format) == ("srgb", "uchar")


@pytest.fixture
def mixed(gallery: Path) -> dict[str, tuple[int, int]]:
    """A tree of every kind of image the thumbnailer handles; logical path -> displayed size."""
    made = make_tree(gallery, folders=3, per_folder=3)
    sizes = {path: (48 + int(Path(path).stem[-1]), 48) for path in made}
    extra: dict[str, tuple[Callable[..., bytes], tuple[int, int]]] = {
        "kinds/big.jpg": (jpeg_bytes, (600, 300)),
        "kinds/rotated.jpg": (lambda w, h: jpeg_bytes(w, h, orientation=6), (400, 300)),
        "kinds/cmyk.jpg": (cmyk_jpeg_bytes, (300, 200)),
        "kinds/deep.png": (png16_bytes, (300, 200)),
        "kinds/grey-alpha.png": (grey_alpha_png_bytes, (100, 80)),
        "kinds/animated.webp": (animated_webp_bytes, (120, 90)),
    }
    for path, (make, (w, h)) in extra.items():
        write(gallery / path, make(w, h))
        sizes[path] = (h, w) if path == "kinds/rotated.jpg" else (w, h)
    return sizes


async def test_index_makes_a_valid_thumbnail_beside_every_image(
    gallery: Path, mixed: dict[str, tuple[int, int]], settings: Settings
) -> None:
    async with Lenslet(str(gallery), settings) as lens:
        report = await lens.index()
    assert report.ok, report.skipped
    assert report.thumbnails == "on"
    assert report.thumbnails_made == len(mixed)
    assert thumbnails(gallery) == sorted(gallery / f"{p}.thumbnail" for p in mixed)
    for path, (w, h) in mixed.items():
        check_thumbnail((gallery / f"{path}.thumbnail").read_bytes(), w, h)
        folder, name = path.rsplit("/", 1)
        item = items_of(gallery / folder / "_index.json")[name]
        assert item["hasThumb"] is True, path
        assert (item["w"], item["h"]) == (w, h)
    assert not temp_files(gallery)
    grey_alpha = pyvips.Image.new_from_buffer(
        (gallery / "kinds" / "grey-alpha.png.thumbnail").read_bytes(), ""
    )
    assert grey_alpha.bands == 4


async def test_each_image_is_read_once_and_an_unchanged_tree_not_at_all(
    gallery: Path, mixed: dict[str, tuple[int, int]], settings: Settings, requests: Requests
) -> None:
    async with Lenslet(str(gallery), settings, observer=requests) as lens:
        first = await lens.index()
        assert image_reads(requests) == collections.Counter(dict.fromkeys(mixed, 1))
        requests.clear()
        second = await lens.index()
    assert image_reads(requests) == {}
    assert requests.count("write", OWN_FILES) == 0
    assert (first.thumbnails_made, second.thumbnails_made) == (len(mixed), 0)
    assert (second.analyzed, second.reused) == (0, len(mixed))
    requests.clear()
    # A new process, too: all it needs is in the manifests and the listings.
    async with Lenslet(str(gallery), settings, observer=requests) as lens:
        third = await lens.index()
    assert image_reads(requests) == {}
    assert third.thumbnails_made == 0


async def test_no_thumbnails_when_asked_for_none(
    gallery: Path, mixed: dict[str, tuple[int, int]], settings: Settings, requests: Requests
) -> None:
    async with Lenslet(str(gallery), settings, observer=requests) as lens:
        report = await lens.index(thumbnails=False)
    assert report.thumbnails.startswith("off")
    assert report.thumbnails_made == 0
    assert thumbnails(gallery) == []
    for folder in {p.rsplit("/", 1)[0] for p in mixed}:
        assert all(not i["hasThumb"] for i in items_of(gallery / folder / "_index.json").values())
    # Made later in one read of each image (the headers and hashes are reused).
    requests.clear()
    async with Lenslet(str(gallery), settings, observer=requests) as lens:
        later = await lens.index()
    assert later.thumbnails_made == len(mixed)
    assert image_reads(requests) == collections.Counter(dict.fromkeys(mixed, 1))
    for folder in {p.rsplit("/", 1)[0] for p in mixed}:
        assert all(i["hasThumb"] for i in items_of(gallery / folder / "_index.json").values())


async def test_the_thumbnails_setting_turns_them_off(gallery: Path, settings: Settings) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    async with Lenslet(str(gallery), settings.replace(thumbnails=False)) as lens:
        assert (await lens.index()).thumbnails_made == 0
        assert thumbnails(gallery) == []
        assert (await lens.index(thumbnails=True)).thumbnails_made == 1
    assert thumbnails(gallery) == [gallery / "x.jpg.thumbnail"]


async def test_thumbnail_size_and_quality_come_from_the_settings(
    gallery: Path, settings: Settings
) -> None:
    write(gallery / "x.png", png_bytes(400, 200))
    async with Lenslet(str(gallery), settings.replace(thumb_size=64, thumb_quality=30)) as lens:
        await lens.index()
    thumb = pyvips.Image.new_from_buffer((gallery / "x.png.thumbnail").read_bytes(), "")
    assert (thumb.width, thumb.height) == (64, 32)


async def test_a_changed_image_gets_a_new_thumbnail(
    gallery: Path, settings: Settings, requests: Requests
) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes(300, 200, seed=1))
    write(gallery / "a" / "y.png", png_bytes(seed=2))
    async with Lenslet(str(gallery), settings, observer=requests) as lens:
        await lens.index()
        thumb = gallery / "a" / "x.jpg.thumbnail"
        before = thumb.read_bytes()
        other = (gallery / "a" / "y.png.thumbnail").read_bytes()
        write(gallery / "a" / "x.jpg", jpeg_bytes(200, 300, seed=7))
        later = thumb.stat().st_mtime + 10
        os.utime(gallery / "a" / "x.jpg", (later, later))
        requests.clear()
        report = await lens.index()
    assert report.thumbnails_made == 1
    assert image_reads(requests) == {"a/x.jpg": 1}
    after = thumb.read_bytes()
    assert after != before
    check_thumbnail(after, 200, 300)
    assert (gallery / "a" / "y.png.thumbnail").read_bytes() == other
    item = items_of(gallery / "a" / "_index.json")["x.jpg"]
    assert (item["w"], item["h"], item["hasThumb"]) == (200, 300, True)


async def test_an_image_replaced_by_an_older_file_gets_a_new_thumbnail(
    gallery: Path, settings: Settings
) -> None:
    # `mv old.jpg x.jpg` (or a restore from backup) keeps the older file's mtime: the image
    # changed, yet its mtime is before the thumbnail's.
    write(gallery / "x.jpg", jpeg_bytes(300, 200, seed=1))
    async with Lenslet(str(gallery), settings) as lens:
        await lens.index()
        thumb = gallery / "x.jpg.thumbnail"
        before = thumb.read_bytes()
        write(gallery / "old.jpg", jpeg_bytes(200, 300, seed=9))
        earlier = (gallery / "x.jpg").stat().st_mtime - 3600
        os.utime(gallery / "old.jpg", (earlier, earlier))
        os.replace(gallery / "old.jpg", gallery / "x.jpg")
        report = await lens.index()
    item = items_of(gallery / "_index.json")["x.jpg"]
    assert (item["w"], item["h"]) == (200, 300)  # the manifest saw the change...
    assert report.thumbnails_made == 1  # ...and the thumbnail must follow it
    assert thumb.read_bytes() != before
    check_thumbnail(thumb.read_bytes(), 200, 300)


async def test_a_read_only_root_keeps_thumbnails_in_the_cache(
    gallery: Path, tmp_path: Path, mixed: dict[str, tuple[int, int]], requests: Requests
) -> None:
    cache = tmp_path / "cache"
    ro = Settings(cpu_concurrency=2, readonly=True, thumb_cache=str(cache))
    async with Lenslet(str(gallery), ro, observer=requests) as lens:
        report = await lens.index()
    assert report.thumbnails == "on (with a thumbnail cache)"
    assert report.thumbnails_made == len(mixed)
    assert report.ok, report.skipped
    assert image_reads(requests) == collections.Counter(dict.fromkeys(mixed, 1))
    assert requests.count("write", OWN_FILES) == 0
    assert thumbnails(gallery) == []
    assert not list(gallery.rglob("_index*.json"))
    kept = thumbnails(cache)
    assert len(kept) == len(mixed)
    for path, (w, h) in mixed.items():
        (found,) = [k for k in kept if k.as_posix().endswith(f"/{path}.thumbnail")]
        check_thumbnail(found.read_bytes(), w, h)
    stamps = {k: k.stat().st_mtime_ns for k in kept}
    requests.clear()
    # A new process: no manifest on a read-only root, so each image is read once for its header
    # and hash; the thumbnails are found in the cache's listing and not made again.
    async with Lenslet(str(gallery), ro, observer=requests) as lens:
        again = await lens.index()
    assert again.thumbnails_made == 0
    assert image_reads(requests) == collections.Counter(dict.fromkeys(mixed, 1))
    assert {k: k.stat().st_mtime_ns for k in kept} == stamps


async def test_a_read_only_root_serves_manifests_that_count_cached_thumbnails(
    gallery: Path, tmp_path: Path
) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes(300, 200))
    write(gallery / "a" / "y.png", png_bytes(300, 200))
    ro = Settings(cpu_concurrency=2, readonly=True, thumb_cache=str(tmp_path / "cache"))
    async with Lenslet(str(gallery), ro) as lens:
        report = await lens.index()
        assert report.thumbnails_made == 2
        assert len(thumbnails(tmp_path / "cache")) == 2
        # Storage has no manifest: it is built and served from memory, and must say that both
        # thumbnails are to be had (from the cache).
        page = await lens.folder("a")
        assert {i.name: i.hasThumb for i in page.items} == {"x.jpg": True, "y.png": True}
    async with Lenslet(str(gallery), ro) as fresh:
        page = await fresh.folder("a")
    assert {i.name: i.hasThumb for i in page.items} == {"x.jpg": True, "y.png": True}


async def test_a_read_only_root_without_a_cache_makes_no_thumbnails(
    gallery: Path, requests: Requests
) -> None:
    made = make_tree(gallery, folders=2, per_folder=3)
    ro = Settings(cpu_concurrency=2, readonly=True)
    async with Lenslet(str(gallery), ro, observer=requests) as lens:
        report = await lens.index()
        # Each image is read once, for its header and hash; none for a thumbnail.
        assert image_reads(requests) == collections.Counter(dict.fromkeys(made, 1))
        page = await lens.folder("album0")
    assert report.thumbnails.startswith("off: ")
    assert "thumb_cache" in report.thumbnails
    assert report.thumbnails_made == 0
    assert report.ok
    assert requests.count("write", OWN_FILES) == 0
    assert thumbnails(gallery) == []
    assert page.items
    assert not any(i.hasThumb for i in page.items)


class RefusingWrites(MemoryFileSystem):  # type: ignore[misc]
    """fsspec's memory filesystem where every write fails as on a bucket without write rights."""

    def pipe_file(self, path: str, value: bytes, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(errno.EACCES, "Access Denied", path)


async def test_a_root_that_refuses_writes_keeps_thumbnails_in_the_cache(
    memory_fs: MemoryFileSystem, tmp_path: Path, requests: Requests
) -> None:
    for n, make in enumerate((jpeg_bytes, png_bytes, webp_bytes)):
        memory_fs.pipe_file(f"/gallery/a/img{n}{IMAGES[n]}", make(300, 200))
    settings = Settings(cpu_concurrency=2, thumb_cache=str(tmp_path / "cache"))
    storage = Storage.of(RefusingWrites(), "/gallery", observer=requests)
    async with Lenslet(storage, settings) as lens:
        report = await lens.index()
    assert report.thumbnails_made == 3
    assert len(thumbnails(tmp_path / "cache")) == 3
    assert not [p for p in MemoryFileSystem.store if p.endswith(".thumbnail")]
    # The manifests could not be written and are reported; the thumbnails were kept.
    problems = {s.path: s for s in report.skipped}
    for folder in ("/", "a"):
        assert problems[folder].code == "permission_denied"
        assert problems[folder].reason.startswith("manifest not written")
    assert not [s for s in report.skipped if s.reason.startswith("thumbnail")]
    assert image_reads(requests) == {f"a/img{n}{IMAGES[n]}": 1 for n in range(3)}


async def test_a_thumbnail_that_cannot_be_kept_is_reported(memory_fs: MemoryFileSystem) -> None:
    memory_fs.pipe_file("/gallery/a/x.jpg", jpeg_bytes())
    storage = Storage.of(RefusingWrites(), "/gallery")
    async with Lenslet(storage, Settings(cpu_concurrency=2)) as lens:
        report = await lens.index()
        page = await lens.folder("a")
    assert report.thumbnails_made == 0
    problems = {s.path: s for s in report.skipped}
    thumb = problems["a/x.jpg.thumbnail"]
    assert thumb.code == "permission_denied"
    assert thumb.reason.startswith("thumbnail not kept")
    assert [i.hasThumb for i in page.items] == [False]


async def test_a_thumbnail_whose_place_is_taken_is_reported_and_not_claimed(
    gallery: Path, settings: Settings
) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    write(gallery / "y.jpg", jpeg_bytes(seed=2))
    (gallery / "x.jpg.thumbnail").mkdir()  # a folder where the thumbnail would go
    async with Lenslet(str(gallery), settings) as lens:
        report = await lens.index()
    assert report.thumbnails_made == 1
    (problem,) = report.skipped
    assert problem.path == "x.jpg.thumbnail"
    assert problem.reason.startswith("thumbnail not kept")
    assert problem.code
    assert not temp_files(gallery)
    items = items_of(gallery / "_index.json")
    assert items["y.jpg"]["hasThumb"] is True
    assert items["x.jpg"]["hasThumb"] is False


def damaged_png() -> bytes:
    """A PNG complete in structure (every chunk, IEND last) whose compressed pixels are junk."""
    data = bytearray(png_bytes(200, 150))
    start = data.index(b"IDAT") + 4
    data[start + 10 : start + 400] = bytes(range(256)) + bytes(range(134))
    return bytes(data)


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


BAD_INPUTS = [
    pytest.param("truncated.jpg", truncated(jpeg_bytes(200, 150)), "corrupt_image", id="trunc-jpg"),
    pytest.param("truncated.png", truncated(png_bytes(200, 150)), "corrupt_image", id="trunc-png"),
    pytest.param(
        "truncated.webp", truncated(webp_bytes(200, 150)), "corrupt_image", id="trunc-webp"
    ),
    pytest.param(
        "header.png",
        png_bytes(200, 150)[:16] + b"\x00" * 13 + png_bytes(200, 150)[29:],
        "corrupt_image",
        id="bad-png-header",
    ),
    pytest.param("pixels.png", damaged_png(), "corrupt_image", id="bad-png-pixels"),
    pytest.param("text.jpg", b"just some text\n", "unsupported_image", id="text"),
    pytest.param("bomb.png", png_bytes(400, 300), "image_too_large", id="pixel-bomb"),
]


@pytest.mark.parametrize(("name", "data", "code"), BAD_INPUTS)
async def test_bad_inputs_get_no_thumbnail_and_are_reported(
    gallery: Path, settings: Settings, requests: Requests, name: str, data: bytes, code: str
) -> None:
    write(gallery / "good.jpg", jpeg_bytes(60, 40))
    write(gallery / "bad" / name, data)
    small = settings.replace(max_pixels=100_000)
    async with Lenslet(str(gallery), small, observer=requests) as lens:
        report = await lens.index()
        assert [(s.path, s.code) for s in report.skipped] == [(f"bad/{name}", code)]
        assert thumbnails(gallery) == [gallery / "good.jpg.thumbnail"]
        assert not temp_files(gallery)
        assert (gallery / "bad" / name).read_bytes() == data
        assert items_of(gallery / "bad" / "_index.json") == {}
        requests.clear()
        again = await lens.index()
    # Refused once, remembered: not read again, still reported, still no thumbnail.
    assert image_reads(requests) == {}
    assert [s.path for s in again.skipped] == [f"bad/{name}"]
    assert thumbnails(gallery) == [gallery / "good.jpg.thumbnail"]


# -- the command line ------------------------------------------------------------------------

runner = CliRunner()


def test_cli_index_makes_thumbnails(gallery: Path) -> None:
    made = make_tree(gallery, folders=2, per_folder=3)
    result = runner.invoke(app, ["index", str(gallery), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"{len(made)} thumbnails made" in result.stdout
    assert thumbnails(gallery) == sorted(gallery / f"{p}.thumbnail" for p in made)
    again = runner.invoke(app, ["index", str(gallery), "--json"])
    assert orjson.loads(again.stdout)["thumbnailsMade"] == 0


def test_cli_index_no_thumbs_makes_none(gallery: Path) -> None:
    make_tree(gallery, folders=2, per_folder=3)
    result = runner.invoke(app, ["index", str(gallery), "--no-thumbs", "--json"])
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout)
    assert summary["thumbnailsMade"] == 0
    assert summary["thumbnails"].startswith("off")
    assert thumbnails(gallery) == []
    assert not any(i["hasThumb"] for i in items_of(gallery / "album0" / "_index.json").values())


def test_cli_thumb_cache_is_used_only_where_folders_refuse_writes(
    gallery: Path, tmp_path: Path
) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    cache = tmp_path / "cache"
    result = runner.invoke(app, ["index", str(gallery), "--thumb-cache", str(cache), "--json"])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["thumbnails"] == "on (with a thumbnail cache)"
    assert thumbnails(gallery) == [gallery / "x.jpg.thumbnail"]
    assert thumbnails(cache) == []


def _observed_in(threads: dict[tuple[str, str], int]) -> Callable[[str, str], None]:
    def observe(op: str, path: str) -> None:
        threads[op, path] = threading.get_ident()

    return observe


async def test_on_local_disk_a_thumbnail_is_written_by_the_thread_that_made_it(
    tmp_path: Path,
) -> None:
    # Storage observes a request where it is made: a write from the event loop there (before
    # its thread hop), a write here in the worker thread that read the image and made it.
    for n in range(6):
        write(tmp_path / "f" / f"img{n}.jpg", jpeg_bytes(120, 80, seed=n))
    threads: dict[tuple[str, str], int] = {}
    async with Lenslet(str(tmp_path), Settings(), observer=_observed_in(threads)) as lens:
        report = await lens.index()
    assert report.thumbnails_made == 6
    loop = threading.get_ident()
    for n in range(6):
        image = f"f/img{n}.jpg"
        assert threads["read", image] == loop  # observed before the hop
        assert threads["write", f"{image}.thumbnail"] != loop
        assert (tmp_path / f"{image}.thumbnail").is_file()


async def test_elsewhere_thumbnails_are_written_from_the_event_loop(memory_fs: Any) -> None:
    storage = Storage.open("memory://gallery")
    for n in range(4):
        await storage.write(f"f/img{n}.jpg", jpeg_bytes(120, 80, seed=n))
    threads: dict[tuple[str, str], int] = {}
    async with Lenslet("memory://gallery", Settings(), observer=_observed_in(threads)) as lens:
        report = await lens.index()
    assert report.thumbnails_made == 4
    loop = threading.get_ident()
    for n in range(4):
        assert threads["write", f"f/img{n}.jpg.thumbnail"] == loop
        assert await storage.read(f"f/img{n}.jpg.thumbnail")
