"""Adding, moving and deleting images with their sidecars and thumbnails, on disk and in memory."""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from lenslet_core import AlreadyExists, CorruptImage, Lenslet, NotFound, ReadOnly, Settings, Storage
from lenslet_core.companions import (
    INTENT_PREFIX,
    create_image,
    delete_image,
    finish_moves,
    move_image,
)
from lenslet_core.imaging import Imaging
from lenslet_core.thumbnails import ThumbnailStore
from tests.imagegen import jpeg_bytes, write

pytestmark = pytest.mark.anyio

IMAGING = Imaging(max_pixels=10**8, cpu_concurrency=2)


@pytest.fixture(params=["local", "memory"])
def storage(request: pytest.FixtureRequest, gallery: Path, memory_fs: MemoryFileSystem) -> Storage:
    if request.param == "local":
        return Storage.open(str(gallery))
    memory_fs.mkdir("/files")
    return Storage.open("memory://files")


async def test_create_refuses_an_existing_image_and_bad_content(storage: Storage) -> None:
    data = jpeg_bytes()
    await create_image(storage, IMAGING, "x.jpg", data)
    assert await storage.read("x.jpg") == data
    with pytest.raises(AlreadyExists):
        await create_image(storage, IMAGING, "x.jpg", jpeg_bytes(seed=9))
    assert await storage.read("x.jpg") == data
    replacement = jpeg_bytes(seed=9)
    await create_image(storage, IMAGING, "x.jpg", replacement, overwrite=True)
    assert await storage.read("x.jpg") == replacement
    with pytest.raises(CorruptImage):
        await create_image(storage, IMAGING, "y.jpg", data[:200])
    with pytest.raises(NotFound):
        await storage.info("y.jpg")


async def test_move_takes_companions_and_refuses_any_collision(storage: Storage) -> None:
    thumbs = ThumbnailStore(storage)
    await storage.write("x.jpg", jpeg_bytes())
    await storage.write("x.jpg.json", b'{"tags": ["t"]}')
    await storage.write("y.jpg.thumbnail", b"webp")  # an orphan in the way of the target
    with pytest.raises(AlreadyExists):
        await move_image(storage, thumbs, "x.jpg", "y.jpg")
    assert (await storage.info("x.jpg")).is_file  # nothing moved
    await move_image(storage, thumbs, "x.jpg", "z.jpg")
    assert await storage.read("z.jpg.json") == b'{"tags": ["t"]}'
    for gone in ("x.jpg", "x.jpg.json"):
        with pytest.raises(NotFound):
            await storage.info(gone)
    with pytest.raises(NotFound):
        await move_image(storage, thumbs, "x.jpg", "w.jpg")


async def test_delete_takes_the_sidecar_and_thumbnail(storage: Storage) -> None:
    thumbs = ThumbnailStore(storage)
    await storage.write("x.jpg", jpeg_bytes())
    await storage.write("x.jpg.json", b"{}")
    await storage.write("x.jpg.thumbnail", b"webp")
    await delete_image(storage, thumbs, "x.jpg")
    for gone in ("x.jpg", "x.jpg.json", "x.jpg.thumbnail"):
        with pytest.raises(NotFound):
            await storage.info(gone)
    with pytest.raises(NotFound):
        await delete_image(storage, thumbs, "x.jpg")


async def test_the_facade_refuses_changes_on_a_read_only_root(gallery: Path) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    async with Lenslet(str(gallery), Settings(readonly=True)) as lens:
        with pytest.raises(ReadOnly):
            await lens.upload("", "new.jpg", jpeg_bytes())
        with pytest.raises(ReadOnly):
            await lens.move("x.jpg", "y.jpg")
        with pytest.raises(ReadOnly):
            await lens.delete(["x.jpg"])
    assert sorted(p.name for p in gallery.iterdir()) == ["x.jpg"]


async def test_of_the_intents_left_for_one_image_only_the_last_is_acted_on(gallery: Path) -> None:
    """x went b → a (done, but killed before its intent was deleted), then a → b, killed once
    the image was linked at b and before it left a. Settled in the worst order (b's folder
    first), the old intent must not undo the last move: the image ends in b, once, with its
    tags."""
    data = jpeg_bytes()
    write(gallery / "a" / "x.jpg", data)
    (gallery / "b").mkdir()
    os.link(gallery / "a" / "x.jpg", gallery / "b" / "x.jpg")
    write(gallery / "a" / "x.jpg.json", b'{"tags": ["mine"]}')
    old = time.time() - 60
    for folder, src, dest, at in (("b", "b/x.jpg", "a/x.jpg", 1), ("a", "a/x.jpg", "b/x.jpg", 2)):
        intent = gallery / folder / f"{INTENT_PREFIX}{at}.json"
        intent.write_bytes(orjson.dumps({"v": 1, "src": src, "dest": dest, "at": at}))
        os.utime(intent, (old, old))
    storage = Storage.open(str(gallery))
    for folder in ("b", "a"):
        assert await finish_moves(storage, folder, await storage.list(folder)) == 1
    assert not (gallery / "a" / "x.jpg").exists()
    assert (gallery / "b" / "x.jpg").read_bytes() == data
    assert orjson.loads((gallery / "b" / "x.jpg.json").read_bytes())["tags"] == ["mine"]
    assert not list(gallery.rglob(f"{INTENT_PREFIX}*"))
    assert not (gallery / "a" / "x.jpg.json").exists()
