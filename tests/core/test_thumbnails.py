from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from lenslet_core import NotFound, PermissionDenied, ReadOnly, Storage
from lenslet_core.thumbnails import ThumbnailStore, recent_thumbnails, thumbnails_in
from tests.imagegen import jpeg_bytes, write

pytestmark = pytest.mark.anyio

THUMB = b"RIFF\x04\x00\x00\x00WEBP"  # the store keeps bytes; what they are is imaging's business


class RefusingWrites(MemoryFileSystem):  # type: ignore[misc]
    """fsspec's memory filesystem, except that writing a file fails with ``error`` (as on a
    bucket without write rights, or a read-only mount)."""

    error = errno.EACCES

    def pipe_file(self, path: str, value: bytes, *args: Any, **kwargs: Any) -> None:
        raise OSError(self.error, os.strerror(self.error), path)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "thumb-cache"


def only_file(folder: Path) -> Path:
    (found,) = [p for p in folder.rglob("*") if p.is_file()]
    return found


def temp_files(*folders: Path) -> list[Path]:
    return [p for f in folders if f.exists() for p in f.rglob("*") if p.name.endswith("-tmp")]


async def test_a_thumbnail_goes_beside_its_image(gallery: Path, cache: Path) -> None:
    write(gallery / "trips" / "x.jpg", jpeg_bytes())
    store = ThumbnailStore.open(Storage.open(str(gallery)), str(cache))
    await store.write("trips/x.jpg", THUMB)
    assert (gallery / "trips" / "x.jpg.thumbnail").read_bytes() == THUMB
    assert await store.read("trips/x.jpg") == THUMB
    assert not [p for p in cache.rglob("*") if p.is_file()]
    assert await store.cached("trips") == {}
    assert store.keeps_all
    assert not temp_files(gallery)


async def test_writing_again_replaces_the_thumbnail(gallery: Path) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    store = ThumbnailStore.open(Storage.open(str(gallery)), None)
    await store.write("x.jpg", THUMB)
    await store.write("x.jpg", THUMB + b"v2")
    assert await store.read("x.jpg") == THUMB + b"v2"
    assert sorted(p.name for p in gallery.iterdir()) == ["x.jpg", "x.jpg.thumbnail"]


async def test_a_read_only_root_keeps_thumbnails_in_the_cache(gallery: Path, cache: Path) -> None:
    write(gallery / "trips" / "2025" / "x.jpg", jpeg_bytes())
    store = ThumbnailStore.open(Storage.open(str(gallery), readonly=True), str(cache))
    assert store.keeps_all
    await store.write("trips/2025/x.jpg", THUMB)
    assert not (gallery / "trips" / "2025" / "x.jpg.thumbnail").exists()
    kept = only_file(cache)
    assert kept.read_bytes() == THUMB
    # Under the same logical path, in a folder of the root's own.
    assert kept.relative_to(cache).parts[1:] == ("trips", "2025", "x.jpg.thumbnail")
    assert await store.read("trips/2025/x.jpg") == THUMB
    cached = await store.cached("trips/2025")
    assert list(cached) == ["x.jpg.thumbnail"]
    assert cached["x.jpg.thumbnail"] == pytest.approx(kept.stat().st_mtime)
    assert not temp_files(gallery, cache)


async def test_the_cache_lists_only_thumbnails_of_that_folder(gallery: Path, cache: Path) -> None:
    store = ThumbnailStore.open(Storage.open(str(gallery), readonly=True), str(cache))
    await store.write("a/x.jpg", THUMB)
    await store.write("a/b/y.jpg", THUMB)
    assert store.cache is not None
    await store.cache.write("a/notes.txt", b"not a thumbnail")
    assert list(await store.cached("a")) == ["x.jpg.thumbnail"]
    assert list(await store.cached("a/b")) == ["y.jpg.thumbnail"]
    assert await store.cached("elsewhere") == {}
    assert await store.cached("") == {}


async def test_a_read_only_root_without_a_cache_keeps_nothing(gallery: Path) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    store = ThumbnailStore.open(Storage.open(str(gallery), readonly=True), None)
    assert not store.keeps_all
    with pytest.raises(ReadOnly, match="no thumb_cache"):
        await store.write("x.jpg", THUMB)
    assert sorted(p.name for p in gallery.iterdir()) == ["x.jpg"]
    with pytest.raises(NotFound):
        await store.read("x.jpg")
    assert await store.cached("") == {}


async def test_a_missing_thumbnail_is_not_found_beside_or_in_the_cache(
    gallery: Path, cache: Path
) -> None:
    store = ThumbnailStore.open(Storage.open(str(gallery), readonly=True), str(cache))
    with pytest.raises(NotFound):
        await store.read("nothing/here.jpg")


async def test_a_thumbnail_beside_wins_over_one_in_the_cache(gallery: Path, cache: Path) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    store = ThumbnailStore.open(Storage.open(str(gallery)), str(cache))
    assert store.cache is not None
    await store.cache.write("x.jpg.thumbnail", b"old, from the cache")
    await store.write("x.jpg", THUMB)
    assert await store.read("x.jpg") == THUMB


async def test_roots_sharing_a_cache_do_not_share_thumbnails(tmp_path: Path, cache: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    write(one / "x.jpg", jpeg_bytes(seed=1))
    write(two / "x.jpg", jpeg_bytes(seed=2))
    first = ThumbnailStore.open(Storage.open(str(one), readonly=True), str(cache))
    second = ThumbnailStore.open(Storage.open(str(two), readonly=True), str(cache))
    await first.write("x.jpg", THUMB + b"one")
    await second.write("x.jpg", THUMB + b"two")
    assert (await first.read("x.jpg"), await second.read("x.jpg")) == (
        THUMB + b"one",
        THUMB + b"two",
    )
    assert len(list(cache.iterdir())) == 2
    # The same root opened again finds its own folder.
    again = ThumbnailStore.open(Storage.open(str(one), readonly=True), str(cache))
    assert await again.read("x.jpg") == THUMB + b"one"


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes whatever the mode"
)
async def test_a_folder_that_refuses_writes_sends_thumbnails_to_the_cache(
    gallery: Path, cache: Path
) -> None:
    write(gallery / "locked" / "x.jpg", jpeg_bytes())
    (gallery / "locked").chmod(0o555)
    try:
        store = ThumbnailStore.open(Storage.open(str(gallery)), str(cache))
        await store.write("locked/x.jpg", THUMB)
        assert await store.read("locked/x.jpg") == THUMB
        assert sorted(p.name for p in (gallery / "locked").iterdir()) == ["x.jpg"]
        without = ThumbnailStore.open(Storage.open(str(gallery)), None)
        with pytest.raises(PermissionDenied):
            await without.write("locked/x.jpg", THUMB)
    finally:
        (gallery / "locked").chmod(0o755)


@pytest.fixture
def refusing(memory_fs: MemoryFileSystem) -> Iterator[type[RefusingWrites]]:
    memory_fs.pipe_file("/gallery/a/x.jpg", jpeg_bytes())
    yield RefusingWrites
    RefusingWrites.error = errno.EACCES


@pytest.mark.parametrize(
    ("error", "raised"),
    [(errno.EACCES, PermissionDenied), (errno.EROFS, ReadOnly)],
    ids=["permission-denied", "read-only-file-system"],
)
async def test_storage_that_refuses_writes_sends_thumbnails_to_the_cache(
    refusing: type[RefusingWrites], cache: Path, error: int, raised: type[Exception]
) -> None:
    refusing.error = error
    storage = Storage.of(refusing(), "/gallery")
    assert not storage.readonly  # nothing says so until a write is refused
    store = ThumbnailStore.open(storage, str(cache))
    await store.write("a/x.jpg", THUMB)
    assert await store.read("a/x.jpg") == THUMB
    assert list(await store.cached("a")) == ["x.jpg.thumbnail"]
    assert "/gallery/a/x.jpg.thumbnail" not in MemoryFileSystem.store
    with pytest.raises(raised):
        await ThumbnailStore.open(storage, None).write("a/x.jpg", THUMB)


async def test_a_read_only_memory_root_with_a_memory_cache(memory_fs: MemoryFileSystem) -> None:
    memory_fs.pipe_file("/gallery/a/x.jpg", jpeg_bytes())
    storage = Storage.open("memory://gallery", readonly=True)
    store = ThumbnailStore.open(storage, "memory://thumbs")
    await store.write("a/x.jpg", THUMB)
    assert await store.read("a/x.jpg") == THUMB
    assert list(await store.cached("a")) == ["x.jpg.thumbnail"]
    kept = [p for p in MemoryFileSystem.store if p.endswith(".thumbnail")]
    assert len(kept) == 1
    assert kept[0].startswith("/thumbs/")
    assert kept[0].endswith("/a/x.jpg.thumbnail")
    assert not memory_fs.exists("/gallery/a/x.jpg.thumbnail")


@pytest.mark.parametrize("kept", [b"", b"RIFF", THUMB[:-1], b"RIFF\xff\x00\x00\x00WEBP" + b"x" * 8])
async def test_a_thumbnail_that_is_not_a_whole_webp_is_missing(gallery: Path, kept: bytes) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    write(gallery / "x.jpg.thumbnail", kept)
    store = ThumbnailStore.open(Storage.open(str(gallery)), None)
    with pytest.raises(NotFound, match="not a whole WebP"):
        await store.read("x.jpg")


async def test_thumbnails_and_manifests_are_written_without_a_flush_and_sidecars_with_one(
    gallery: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushed: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        flushed.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write(gallery / "x.jpg", jpeg_bytes())
    storage = Storage.open(str(gallery))
    await ThumbnailStore.open(storage, None).write("x.jpg", THUMB)
    await storage.write("_index.json", b"{}")
    assert flushed == []  # made again if a power cut loses them
    await storage.write("x.jpg.json", b"{}")
    await storage.write("_rollup.json", b"{}")
    assert len(flushed) == 2


async def test_thumbnails_in_a_listing(gallery: Path) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    write(gallery / "x.jpg.thumbnail", THUMB)
    write(gallery / "x.jpg.json", b"{}")
    (gallery / "y.jpg.thumbnail").mkdir()  # a folder by that name is not a thumbnail
    found = thumbnails_in(await Storage.open(str(gallery)).list(""))
    assert list(found) == ["x.jpg.thumbnail"]
    assert found["x.jpg.thumbnail"] == pytest.approx((gallery / "x.jpg.thumbnail").stat().st_mtime)


# -- thumbnails kept in memory ---------------------------------------------------------------------


def test_recent_thumbnails_are_kept_fresh_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("lenslet_core.fresh.time.monotonic", lambda: now[0])
    recent = recent_thumbnails(2.0, max_bytes=800)
    for n in range(10):
        recent.put(f"a/{n}.jpg", (bytes(100), f"e{n}"))
    assert recent.weight == 800  # the two least recently used went
    assert recent.get("a/0.jpg") is None
    assert recent.get("a/1.jpg") is None
    assert recent.get("a/2.jpg") == (bytes(100), "e2")
    recent.put("a/big.jpg", (bytes(200), "big"))  # above an eighth of the bound: not kept
    assert recent.get("a/big.jpg") is None
    now[0] += 2.5
    assert recent.get("a/3.jpg") is None  # read from storage again: another process may differ
    recent.forget("a/4.jpg")
    assert recent.get("a/4.jpg") is None
    assert recent.weight == 600  # what is expired goes when asked for


async def test_a_hot_thumbnail_follows_this_process_writes_at_once_and_others_after_the_ttl(
    gallery: Path,
) -> None:
    from lenslet_core import Lenslet, Settings, Thumbnail

    write(gallery / "a.jpg", jpeg_bytes(300, 200, seed=1))
    write(gallery / "b.jpg", jpeg_bytes(300, 200, seed=2))
    async with Lenslet(str(gallery), Settings(manifest_ttl=0.3)) as lens:
        first = await lens.thumbnail("a.jpg", wait=10)
        assert isinstance(first, Thumbnail)
        again = await lens.thumbnail("a.jpg")
        assert isinstance(again, Thumbnail)
        assert again.etag == first.etag
        # Another process replaces it: served from memory until the entry is older than the ttl.
        (gallery / "a.jpg.thumbnail").write_bytes(b"RIFF\x00\x00\x00\x00WEBPother")
        import anyio

        await anyio.sleep(0.35)
        changed = await lens.thumbnail("a.jpg")
        assert isinstance(changed, Thumbnail)
        assert changed.data.endswith(b"WEBPother")
        # This process's move and delete: at once.
        await lens.thumbnail("b.jpg", wait=10)
        moved = await lens.move("b.jpg", "c.jpg")
        with pytest.raises(NotFound):
            await lens.thumbnail("b.jpg")
        await lens.delete([moved])
        with pytest.raises(NotFound):
            await lens.thumbnail(moved)
