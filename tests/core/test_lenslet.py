from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from lenslet_core import (
    InvalidPath,
    Lenslet,
    NotFound,
    Settings,
)
from tests.conftest import Requests
from tests.imagegen import jpeg_bytes, png_bytes, write

pytestmark = pytest.mark.anyio


async def test_folder_builds_a_missing_manifest_on_demand(
    gallery: Path, requests: Requests
) -> None:
    write(gallery / "trips" / "2025" / "a.jpg", jpeg_bytes())
    async with Lenslet(str(gallery), observer=requests) as lens:
        page = await lens.folder("/trips/2025")
        assert [i.name for i in page.items] == ["a.jpg"]
        assert (gallery / "trips" / "2025" / "_index.json").exists()
        assert not (gallery / "_index.json").exists()  # only the folder asked for
        requests.clear()
        again = await lens.folder("trips/2025/")  # the same folder, cached
    assert again == page
    assert requests.log == []


async def test_folder_serves_an_existing_manifest_with_one_read(
    gallery: Path, requests: Requests
) -> None:
    write(gallery / "a" / "x.png", png_bytes())
    async with Lenslet(str(gallery)) as lens:
        await lens.index()
    async with Lenslet(str(gallery), observer=requests) as lens:
        requests.clear()
        page = await lens.folder("a")
    assert [i.name for i in page.items] == ["x.png"]
    assert requests.log == [("read", "a/_index.json")]


async def test_cached_manifests_are_revalidated_after_their_ttl(
    gallery: Path, requests: Requests
) -> None:
    write(gallery / "x.png", png_bytes())
    async with Lenslet(str(gallery), Settings(manifest_ttl=0), observer=requests) as lens:
        await lens.folder("")
        requests.clear()
        await lens.folder("")
    assert requests.log == [("read", "_index.json")]


async def test_refresh_rebuilds(gallery: Path) -> None:
    write(gallery / "x.png", png_bytes())
    async with Lenslet(str(gallery)) as lens:
        assert len((await lens.folder("")).items) == 1
        write(gallery / "y.png", png_bytes(seed=2))
        assert len((await lens.folder("")).items) == 1  # served from the manifest
        assert len((await lens.folder("", refresh=True)).items) == 2


async def test_pages_past_the_end_are_not_found(gallery: Path) -> None:
    for n in range(3):
        write(gallery / f"{n}.png", png_bytes(seed=n))
    async with Lenslet(str(gallery), Settings(page_size=2)) as lens:
        assert [i.name for i in (await lens.folder("", page=1)).items] == ["2.png"]
        with pytest.raises(NotFound, match="2 page"):
            await lens.folder("", page=2)
        with pytest.raises(NotFound):
            await lens.folder("", page=-1)


async def test_missing_folder_is_not_found(gallery: Path) -> None:
    async with Lenslet(str(gallery)) as lens:
        with pytest.raises(NotFound):
            await lens.folder("nope")


@pytest.mark.parametrize(
    "path", ["../etc", "a/../../b", "a\\b", "C:/Windows", "x\x00y", "_index.json", "a.jpg.json"]
)
async def test_paths_outside_the_contract_are_refused(gallery: Path, path: str) -> None:
    async with Lenslet(str(gallery)) as lens:
        with pytest.raises((InvalidPath, NotFound)):
            await lens.item(path)
        with pytest.raises((InvalidPath, NotFound)):
            await lens.update_item(path, {"tags": ["x"]})
    assert sorted(p.name for p in gallery.iterdir()) == []


async def test_symlinked_escape_is_refused(gallery: Path, tmp_path: Path) -> None:
    outside = write(tmp_path / "outside" / "secret.jpg", jpeg_bytes())
    (gallery / "door").symlink_to(outside.parent)
    async with Lenslet(str(gallery)) as lens:
        with pytest.raises(InvalidPath):
            await lens.item("door/secret.jpg")
        with pytest.raises(InvalidPath):
            await lens.update_item("door/secret.jpg", {"tags": ["x"]})
    assert not (outside.parent / "secret.jpg.json").exists()


async def test_a_missing_root_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="not a folder"):
        async with Lenslet(str(tmp_path / "missing")):
            pass


async def test_read_only_root_serves_folders_without_writing(gallery: Path) -> None:
    write(gallery / "a" / "x.png", png_bytes())
    async with Lenslet(str(gallery), Settings(readonly=True)) as lens:
        page = await lens.folder("a")
    assert [i.name for i in page.items] == ["x.png"]
    assert not (gallery / "a" / "_index.json").exists()


async def test_concurrent_requests_for_a_missing_manifest_build_it_once(
    gallery: Path, requests: Requests
) -> None:
    import anyio

    for n in range(3):
        write(gallery / "a" / f"{n}.png", png_bytes(seed=n))
    async with Lenslet(str(gallery), observer=requests) as lens:
        results = []

        async def ask() -> None:
            results.append(await lens.folder("a"))

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(ask)
    assert len(results) == 10
    assert all(r == results[0] for r in results)
    assert requests.count("read", ".png") == 3  # every image read once, not once per request
    assert requests.count("write", "_index.json") == 1


async def test_a_folder_the_storage_refuses_is_permission_denied(memory_fs: object) -> None:
    from typing import Any

    from fsspec.implementations.memory import MemoryFileSystem

    from lenslet_core import PermissionDenied, Storage

    class Refusing(MemoryFileSystem):  # type: ignore[misc]
        def ls(self, path: str, detail: bool = True, **kwargs: Any) -> Any:
            if path.rstrip("/").endswith("private"):
                raise PermissionError(13, "Access Denied", path)
            return super().ls(path, detail=detail, **kwargs)

    fs = Refusing()
    fs.pipe_file("/g/private/x.png", png_bytes())
    async with Lenslet(Storage.of(fs, "/g")) as lens:
        with pytest.raises(PermissionDenied):
            await lens.folder("private")


async def test_read_only_folders_are_rebuilt_without_reading_images_again(
    gallery: Path, requests: Requests
) -> None:
    for n in range(6):
        write(gallery / f"{n}.png", png_bytes(seed=n))
    settings = Settings(readonly=True, manifest_ttl=0)
    async with Lenslet(str(gallery), settings, observer=requests) as lens:
        for _ in range(3):
            assert len((await lens.folder("")).items) == 6
        write(gallery / "new.png", png_bytes(seed=9))
        assert len((await lens.folder("")).items) == 7
    assert requests.count("read", ".png") == 7  # each image once, over four views
    assert requests.count("write") == 0


async def test_pages_of_one_folder_always_come_from_one_build(gallery: Path) -> None:
    for name in "bcdef":
        write(gallery / f"{name}.png", png_bytes(seed=ord(name)))
    settings = Settings(page_size=2, manifest_ttl=60)
    async with Lenslet(str(gallery), settings) as server, Lenslet(str(gallery), settings) as other:
        await server.index()
        first = await server.folder("", 0)  # cached by the server
        write(gallery / "a.png", png_bytes(seed=1))
        await other.index()  # another process rewrites every page
        second = await server.folder("", 1)
        third = await server.folder("", 2)
    assert first.build != second.build  # the server noticed and moved to the new build
    assert second.build == third.build
    assert [i.name for i in second.items] == ["c.png", "d.png"]
    assert [i.name for i in third.items] == ["e.png", "f.png"]


async def test_tags_are_served_even_when_the_image_gives_no_basics(gallery: Path) -> None:
    write(gallery / "big.jpg", jpeg_bytes(64, 48))
    write(gallery / "big.jpg.json", b'{"v":1,"tags":["keep"],"notes":"hello"}')
    async with Lenslet(str(gallery), Settings(max_file_bytes=100)) as lens:
        item = await lens.item("big.jpg")
    assert item.sidecar.tags == ("keep",)
    assert item.sidecar.notes == "hello"
    assert item.sidecar.exif is None


async def test_a_broken_pointer_folder_is_refused_not_indexed(gallery: Path) -> None:
    from lenslet_core import PointerBroken

    write(gallery / "ptr" / ".lenscat.folder.json", b'{"version":1,"kind":"pointer"}')
    write(gallery / "ptr" / "inside" / "x.jpg", jpeg_bytes())
    async with Lenslet(str(gallery)) as lens:
        for call in (
            lambda: lens.index("ptr"),
            lambda: lens.index("ptr/inside"),
            lambda: lens.folder("ptr"),
            lambda: lens.folder("ptr/inside"),
        ):
            with pytest.raises(PointerBroken):
                await call()
        assert [d.kind for d in (await lens.folder("")).dirs] == ["leaf-pointer"]
    assert sorted(p.relative_to(gallery).as_posix() for p in gallery.rglob("_index*")) == [
        "_index.json"
    ]


async def test_a_symlink_in_place_of_a_manifest_is_replaced(gallery: Path, tmp_path: Path) -> None:
    write(gallery / "trip" / "a.jpg", jpeg_bytes())
    target = write(tmp_path / "elsewhere.json", b'{"not": "a manifest"}')
    (gallery / "trip" / "_index.json").symlink_to(target)
    async with Lenslet(str(gallery)) as lens:
        page = await lens.folder("trip")
        report = await lens.index()
    assert [i.name for i in page.items] == ["a.jpg"]
    assert report.ok
    assert not (gallery / "trip" / "_index.json").is_symlink()
    assert target.read_bytes() == b'{"not": "a manifest"}'


async def test_an_unreadable_manifest_is_rebuilt(gallery: Path) -> None:
    import os

    write(gallery / "trip" / "a.jpg", jpeg_bytes())
    os.mkfifo(gallery / "trip" / "_index.json")
    async with Lenslet(str(gallery)) as lens:
        page = await lens.folder("trip")
    assert [i.name for i in page.items] == ["a.jpg"]
    assert (gallery / "trip" / "_index.json").is_file()


def test_read_only_settings_need_a_read_only_storage(gallery: Path) -> None:
    from lenslet_core import SettingsError, Storage

    with pytest.raises(SettingsError, match="read-only"):
        Lenslet(Storage.open(str(gallery)), Settings(readonly=True))
    Lenslet(Storage.open(str(gallery), readonly=True), Settings(readonly=True))


async def test_a_first_sidecar_reaches_the_manifests_has_meta(gallery: Path) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    async with Lenslet(str(gallery), Settings(thumbnails=False)) as lens:
        page = await lens.folder("a")
        assert [i.hasMeta for i in page.items] == [False]
        await lens.update_item("a/x.jpg", {"tags": ["t"]})
    # Leaving the Lenslet finishes the queued index job.
    items = orjson.loads((gallery / "a" / "_index.json").read_bytes())["items"]
    assert [i["hasMeta"] for i in items] == [True]


async def test_upload_then_move_at_once_leaves_no_orphan_thumbnail(gallery: Path) -> None:
    """The thumbnail a background job makes for an upload must not land after the image was
    moved on: a thumbnail is never kept for an image that is no longer there."""
    (gallery / "inbox").mkdir()
    (gallery / "done").mkdir()
    async with Lenslet(str(gallery), Settings(cpu_concurrency=2)) as lens:
        for n in range(12):
            image = await lens.upload("inbox", f"new{n}.jpg", jpeg_bytes(640, 480, seed=n))
            await lens.move(image, "done")
            await lens.upload("inbox", f"kept{n}.jpg", jpeg_bytes(64, 48, seed=n))
        await lens.index()
    left = sorted(p.name for p in (gallery / "inbox").iterdir() if p.name.endswith(".thumbnail"))
    assert left == sorted(f"kept{n}.jpg.thumbnail" for n in range(12))
    done = {p.name for p in (gallery / "done").iterdir()}
    assert {f"new{n}.jpg" for n in range(12)} <= done
