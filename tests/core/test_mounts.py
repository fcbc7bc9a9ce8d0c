"""The router above storage (``mounts.Mounts``): each call sent to the storage that holds the
path, pointers learnt from listings, once per folder however many look at once."""

from __future__ import annotations

from pathlib import Path

import anyio
import orjson
import pytest

from lenslet_core import Storage
from lenslet_core.mounts import Mounts
from lenslet_core.pointers import Pointer
from tests.imagegen import jpeg_bytes, write

pytestmark = pytest.mark.anyio


def opener(pointer: Pointer, url: str, readonly: bool) -> Storage:
    return Storage.open(url, readonly=readonly)


def pointing(folder: Path, target: Path) -> None:
    config = {"version": 1, "kind": "pointer", "target": {"type": "local", "path": str(target)}}
    write(folder / ".lenscat.folder.json", orjson.dumps(config))


async def test_concurrent_first_looks_at_a_pointer_all_follow_it(
    gallery: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    write(target / "x.jpg", jpeg_bytes())
    (target / "sub").mkdir()
    pointing(gallery / "p", target)
    mounts = Mounts(Storage.open(str(gallery)), opener, allowed=[str(target)])
    listed: list[list[str]] = []

    async def look(delay: float) -> None:
        await anyio.sleep(delay)
        listed.append(sorted(e.name for e in await mounts.list("p")))

    async with anyio.create_task_group() as tg:
        for n in range(8):
            tg.start_soon(look, n * 0.001)
    assert listed == [[".lenscat.folder.json", "sub", "x.jpg"]] * 8
    assert [folder for folder, _ in mounts.mounted()] == ["p"]


async def test_calls_below_a_pointer_go_to_its_target_and_writes_respect_read_only(
    gallery: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    write(target / "x.jpg", jpeg_bytes())
    pointing(gallery / "p", target)
    root = Storage.open(str(gallery))
    mounts = Mounts(root, opener, allowed=[str(target)])
    await mounts.write("p/notes.txt", b"hello")  # an unseen pointer is learnt first
    assert (target / "notes.txt").read_bytes() == b"hello"
    assert not (gallery / "p" / "notes.txt").exists()
    assert await mounts.read("p/x.jpg") == (target / "x.jpg").read_bytes()
    await mounts.move("p/notes.txt", "here.txt")  # across storages: a copy, then a delete
    assert (gallery / "here.txt").read_bytes() == b"hello"
    assert not (target / "notes.txt").exists()
    readonly = Mounts(Storage.open(str(gallery), readonly=True), opener, allowed=[str(target)])
    assert not readonly.writable("p/y.txt")
    with pytest.raises(PermissionError):
        await readonly.write("p/y.txt", b"no")  # read-only all the way down


async def test_a_batch_across_pointers_gives_each_path_its_consumer_and_writes_here_route(
    gallery: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    write(target / "x.jpg", b"in the target")
    write(gallery / "y.jpg", b"in the root")
    pointing(gallery / "p", target)
    mounts = Mounts(Storage.open(str(gallery)), opener, allowed=[str(target)])
    await mounts.list("p")  # as an index run lists before it reads
    names = ["p/x.jpg", "y.jpg"]
    consumers = [lambda data, name=name: (name, data) for name in names]
    results = await mounts.read_each_into(names, consumers, limiter=anyio.CapacityLimiter(1))
    assert results == [("p/x.jpg", b"in the target"), ("y.jpg", b"in the root")]
    assert mounts.writes_here("p/x.jpg.thumbnail")
    await anyio.to_thread.run_sync(mounts.write_here, "p/x.jpg.thumbnail", b"webp")
    assert (target / "x.jpg.thumbnail").read_bytes() == b"webp"
    assert not (gallery / "p" / "x.jpg.thumbnail").exists()
    readonly = Mounts(Storage.open(str(gallery), readonly=True), opener, allowed=[str(target)])
    await readonly.list("p")
    assert not readonly.writes_here("p/x.jpg.thumbnail")
