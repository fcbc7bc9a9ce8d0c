"""The storage seam: one contract suite over every backend, then what only local disk does.

The ``store`` fixture runs each contract test against local disk, fsspec's memory filesystem
and S3 (a real S3 API server on loopback, see ``tests/s3server.py``).
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from lenslet_core import (
    Entry,
    InvalidPath,
    LensletError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    ReadOnly,
    Storage,
    StorageError,
)
from lenslet_core.filesystem import FilesystemBackend
from lenslet_core.hashing import content_etag
from lenslet_core.local import LocalBackend
from lenslet_core.paths import TEMP_SUFFIX
from lenslet_core.s3 import storage_options
from lenslet_core.storage import Contents, translate
from tests.conftest import S3, Requests


class Backend:
    """One gallery root on one backend. ``storage()`` opens it (every call opens the same
    root, so a read-only or observed Storage sees what a plain one wrote); ``folders()``
    makes folders, which local disk needs before a write and object stores do not."""

    def __init__(
        self, open_storage: Callable[..., Storage], root: Path | None, lists_versions: bool = False
    ) -> None:
        self._open = open_storage
        self._root = root
        self.lists_versions = lists_versions

    def storage(self, **options: Any) -> Storage:
        return self._open(**options)

    def folders(self, *paths: str) -> None:
        if self._root is not None:
            for path in paths:
                (self._root / path).mkdir(parents=True, exist_ok=True)

    async def put(self, files: dict[str, bytes]) -> Storage:
        storage = self.storage()
        self.folders(*{path.rpartition("/")[0] for path in files})
        for path, data in files.items():
            await storage.write(path, data)
        return storage


@pytest.fixture(params=["local", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        root = tmp_path / "gallery"
        root.mkdir()
        return Backend(lambda **options: Storage.of(LocalFileSystem(), str(root), **options), root)
    if request.param == "s3":
        s3: S3 = request.getfixturevalue("s3")
        options = storage_options(endpoint_url=s3.endpoint)
        url = s3.url()
        return Backend(lambda **kw: Storage.open(url, storage_options=options, **kw), None, True)
    request.getfixturevalue("memory_fs")  # empties the process-global memory store
    return Backend(lambda **options: Storage.open("memory://gallery", **options), None)


# -- listing -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_list_files_and_folders_in_one_call(store: Backend, requests: Requests) -> None:
    before = time.time()
    await store.put(
        {"a.jpg": b"12345", "b ü #?%.png": b"", "sub/c.jpg": b"xy", "sub/deeper/d.jpg": b"z"},
    )
    storage = store.storage(observer=requests)

    entries = {e.name: e for e in await storage.list("")}

    assert requests.log == [("list", "")]
    assert set(entries) == {"a.jpg", "b ü #?%.png", "sub"}
    a = entries["a.jpg"]
    assert a == Entry("a.jpg", "file", 5, a.mtime, etag=a.etag)
    assert entries["b ü #?%.png"].kind == "file"
    assert entries["b ü #?%.png"].size == 0
    assert entries["sub"].kind == "dir"
    for entry in entries.values():
        assert entry.problem is None
        if entry.kind == "file":
            assert before - 5 <= entry.mtime <= time.time() + 5

    nested = await storage.list("sub")
    assert {(e.name, e.kind) for e in nested} == {("c.jpg", "file"), ("deeper", "dir")}
    assert [e.size for e in nested if e.name == "c.jpg"] == [2]


@pytest.mark.anyio
async def test_a_listing_gives_the_version_a_conditional_write_returns(store: Backend) -> None:
    # Where a listing shows versions (an object store's ETags), a file's is the one its last
    # write returned and a read gives; a local listing shows none (it would cost a read).
    storage = await store.put({"a.jpg.json": b"{}"})
    _, version = await storage.read_versioned("a.jpg.json")
    written = await storage.write_if("a.jpg.json", b'{"tags": ["x"]}', expected=version)
    (entry,) = [e for e in await storage.list("") if e.name == "a.jpg.json"]
    if store.lists_versions:
        assert entry.etag == written == (await storage.read_versioned("a.jpg.json"))[1]
        assert written != version
    else:
        assert entry.etag is None


def test_a_listed_objects_stamp_stays_the_one_stored_manifests_hold() -> None:
    # Manifests and the rollup on storage keep each file's (size, mtime) stamp, its sub-second
    # part made from the ETag as listed (quotes and all): made another way, every image of a
    # gallery would read as changed, and be read and thumbnailed again.
    import datetime
    import zlib

    from lenslet_core.filesystem import entry_of

    when = datetime.datetime(2026, 12, 4, 10, 0, 0, tzinfo=datetime.timezone.utc)
    quoted = '"9b2cf535f27731c974343645a3985328"'
    detail = {"type": "file", "size": 12, "LastModified": when, "ETag": quoted}
    image, sidecar = entry_of("a.jpg", detail), entry_of("a.jpg.json", detail)
    assert (
        image.mtime == sidecar.mtime == when.timestamp() + zlib.crc32(quoted.encode()) % 1000 / 1000
    )
    assert (image.size, image.kind) == (12, "file")
    assert image.etag is None  # kept for the documents only
    assert sidecar.etag == quoted.strip('"')


@pytest.mark.anyio
async def test_list_accepts_unicode_names(store: Backend) -> None:
    storage = await store.put({"日本/写真 1.jpg": b"x"})
    assert [e.name for e in await storage.list("日本")] == ["写真 1.jpg"]


@pytest.mark.anyio
async def test_list_missing_folder_is_not_found(store: Backend) -> None:
    storage = await store.put({"a.jpg": b"x"})
    with pytest.raises(NotFound) as info:
        await storage.list("missing")
    assert info.value.path == "missing"
    with pytest.raises(NotFound):
        await storage.list("missing/deeper")


@pytest.mark.anyio
async def test_list_a_file_is_not_found(store: Backend) -> None:
    storage = await store.put({"a.jpg": b"x"})
    with pytest.raises(NotFound):
        await storage.list("a.jpg")


@pytest.mark.anyio
async def test_info(store: Backend) -> None:
    storage = await store.put({"sub/a.jpg": b"abc"})
    entry = await storage.info("sub/a.jpg")
    assert (entry.name, entry.kind, entry.size) == ("a.jpg", "file", 3)
    assert (await storage.info("sub")).kind == "dir"
    with pytest.raises(NotFound):
        await storage.info("sub/missing.jpg")


# -- read and write ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_write_then_read(store: Backend) -> None:
    storage = store.storage()
    store.folders("trips/2025")
    data = bytes(range(256)) * 100
    await storage.write("trips/2025/a.jpg.json", data)
    assert await storage.read("trips/2025/a.jpg.json") == data


@pytest.mark.anyio
async def test_write_replaces_whole(store: Backend) -> None:
    storage = store.storage()
    await storage.write("a.json", b"a long first version of the document")
    await storage.write("a.json", b"short")
    assert await storage.read("a.json") == b"short"
    await storage.write("a.json", b"")
    assert await storage.read("a.json") == b""


@pytest.mark.anyio
async def test_read_missing_is_not_found(store: Backend) -> None:
    storage = await store.put({"a.jpg": b"x"})
    with pytest.raises(NotFound) as info:
        await storage.read("b.jpg")
    assert info.value.path == "b.jpg"
    assert isinstance(info.value.__cause__, FileNotFoundError)
    with pytest.raises(NotFound):
        await storage.read("missing/b.jpg")


@pytest.mark.anyio
async def test_read_a_folder_is_not_found(store: Backend) -> None:
    storage = await store.put({"sub/a.jpg": b"x"})
    with pytest.raises(NotFound):
        await storage.read("sub")


@pytest.mark.anyio
async def test_read_versioned(store: Backend) -> None:
    storage = store.storage()
    await storage.write("a.json", b'{"v":1}')
    data, etag = await storage.read_versioned("a.json")
    assert data == b'{"v":1}'
    assert (await storage.read_versioned("a.json"))[1] == etag  # a version, stable
    await storage.write("a.json", b'{"v":2}')
    assert (await storage.read_versioned("a.json"))[1] != etag
    with pytest.raises(NotFound):
        await storage.read_versioned("b.json")


@pytest.mark.anyio
async def test_read_each_into_returns_results_and_errors_in_order(
    store: Backend, requests: Requests
) -> None:
    await store.put({"a/one.bin": b"1", "a/bad.bin": b"bad", "a/three.bin": b"333"})
    storage = store.storage(observer=requests)
    limiter = anyio.CapacityLimiter(1)

    def consume(data: bytes) -> int:
        if data == b"bad":
            raise StorageError("refused by the consumer")
        return len(data)

    names = ["a/one.bin", "a/missing.bin", "a/bad.bin", "a/three.bin"]
    results = await storage.read_each_into(names, consume, limiter=limiter)
    assert results[0] == 1
    assert isinstance(results[1], NotFound)
    assert isinstance(results[2], StorageError)
    assert str(results[2]) == "refused by the consumer"
    assert results[3] == 3
    assert requests.log == [("read", name) for name in names]
    assert limiter.borrowed_tokens == 0


@pytest.mark.anyio
async def test_read_each_into_gives_each_path_its_own_consumer(store: Backend) -> None:
    storage = await store.put({"a/one.bin": b"1", "a/two.bin": b"22"})
    names = ["a/one.bin", "a/missing.bin", "a/two.bin"]

    def named(name: str) -> Callable[[bytes], tuple[str, bytes]]:
        return lambda data: (name, data)

    results = await storage.read_each_into(
        names, [named(name) for name in names], limiter=anyio.CapacityLimiter(1)
    )
    assert results[0] == ("a/one.bin", b"1")
    assert isinstance(results[1], NotFound)
    assert results[2] == ("a/two.bin", b"22")
    with pytest.raises(ValueError, match="2 consumers for 3 paths"):
        await storage.read_each_into(names, [named("x")] * 2, limiter=anyio.CapacityLimiter(1))


@pytest.mark.anyio
async def test_a_write_here_is_on_local_disk_only_in_the_calling_thread(
    store: Backend, requests: Requests
) -> None:
    storage = store.storage(observer=requests)
    store.folders("f")
    local = store._root is not None
    assert storage.writes_here("f/x.thumbnail") == local
    assert not store.storage(readonly=True).writes_here("f/x.thumbnail")
    if not local:
        with pytest.raises(RuntimeError, match="for local disk"):
            storage.write_here("f/x.thumbnail", b"webp")
        return
    caller = threading.get_ident()
    threads: list[int] = []

    def write(data: bytes) -> None:
        threads.append(threading.get_ident())
        storage.write_here("f/x.thumbnail", data)

    await anyio.to_thread.run_sync(write, b"webp")
    assert len(threads) == 1
    assert threads[0] != caller
    assert await storage.read("f/x.thumbnail") == b"webp"
    assert ("write", "f/x.thumbnail") in requests.log
    with pytest.raises(ReadOnly):
        store.storage(readonly=True).write_here("f/y.thumbnail", b"no")
    with pytest.raises(NotFound):
        storage.write_here("missing/y.thumbnail", b"no")  # translated, as write's are
    assert not list(Path(str(store._root)).rglob("*" + TEMP_SUFFIX))


@pytest.mark.anyio
async def test_read_each_into_lets_bugs_through(store: Backend) -> None:
    storage = await store.put({"x.bin": b"x"})

    def broken(data: bytes) -> None:
        raise RuntimeError("a bug, not a bad file")

    with pytest.raises(RuntimeError, match="a bug"):
        await storage.read_each_into(["x.bin"], broken, limiter=anyio.CapacityLimiter(1))


@pytest.mark.anyio
async def test_list_with_contents_reads_what_the_listing_picks(
    store: Backend, requests: Requests
) -> None:
    await store.put({"f/_index.json": b"{}", "f/_index_0.json": b"[]", "f/a.jpg": b"jpeg"})
    storage = store.storage(observer=requests)
    threads: list[int] = []

    def then(entries: list[Entry], contents: Contents) -> tuple[list[Entry], Contents]:
        threads.append(threading.get_ident())
        return entries, contents

    entries, contents = await storage.list_with_contents(
        "f", lambda name: name.startswith("_"), then
    )
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()  # made off the event loop
    assert sorted(e.name for e in entries) == ["_index.json", "_index_0.json", "a.jpg"]
    assert contents == {"_index.json": b"{}", "_index_0.json": b"[]"}
    assert sorted(requests.log) == [
        ("list", "f"),
        ("read", "f/_index.json"),
        ("read", "f/_index_0.json"),
    ]
    with pytest.raises(NotFound):
        await storage.list_with_contents("missing", lambda name: True, then)


def test_io_concurrency_defaults_by_backend(tmp_path: Path, memory_fs: MemoryFileSystem) -> None:
    local = Storage.open(str(tmp_path))
    assert local.io_concurrency == len(os.sched_getaffinity(0))
    assert Storage.open("memory://x").io_concurrency == 16
    assert Storage.open(str(tmp_path), io_concurrency=3).io_concurrency == 3


# -- conditional writes --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_write_if_absent_creates(store: Backend) -> None:
    storage = store.storage()
    etag = await storage.write_if("a.json", b"first", expected=None)
    assert await storage.read_versioned("a.json") == (b"first", etag)


@pytest.mark.anyio
async def test_write_if_absent_refuses_an_existing_file(store: Backend) -> None:
    storage = store.storage()
    await storage.write("a.json", b"theirs")
    with pytest.raises(PreconditionFailed) as info:
        await storage.write_if("a.json", b"mine", expected=None)
    assert info.value.status == 412
    assert await storage.read("a.json") == b"theirs"


@pytest.mark.anyio
async def test_write_if_with_the_read_etag(store: Backend) -> None:
    storage = store.storage()
    await storage.write("a.json", b"one")
    _, etag = await storage.read_versioned("a.json")
    new_etag = await storage.write_if("a.json", b"two", expected=etag)
    assert new_etag != etag
    data, current = await storage.read_versioned("a.json")
    assert (data, current) == (b"two", new_etag)
    # The returned etag is good for the next conditional write.
    last = await storage.write_if("a.json", b"three", expected=new_etag)
    assert await storage.read_versioned("a.json") == (b"three", last)


@pytest.mark.anyio
async def test_write_if_stale_etag_leaves_the_file(store: Backend) -> None:
    storage = store.storage()
    await storage.write("a.json", b"one")
    _, stale = await storage.read_versioned("a.json")
    await storage.write("a.json", b"someone else")
    with pytest.raises(PreconditionFailed):
        await storage.write_if("a.json", b"mine", expected=stale)
    assert await storage.read("a.json") == b"someone else"


@pytest.mark.anyio
async def test_write_if_expected_but_missing(store: Backend) -> None:
    storage = await store.put({"other.json": b"x"})
    with pytest.raises(PreconditionFailed):
        await storage.write_if("a.json", b"mine", expected=content_etag(b"old"))
    with pytest.raises(NotFound):
        await storage.read("a.json")


@pytest.mark.anyio
async def test_concurrent_conditional_writers_lose_no_update(store: Backend) -> None:
    """Every writer reads the same version, then all write at once: one wins, the others see
    PreconditionFailed, re-read and retry, and no token is lost."""
    storage = store.storage()
    await storage.write("doc.txt", b"")
    writers = 8
    have_read = 0
    all_read = anyio.Event()
    conflicts = 0
    first_round_wins = 0

    async def append(token: str) -> None:
        nonlocal have_read, conflicts, first_round_wins
        first = True
        while True:
            data, etag = await storage.read_versioned("doc.txt")
            if first:
                have_read += 1
                if have_read == writers:
                    all_read.set()
                await all_read.wait()
            try:
                await storage.write_if("doc.txt", data + f"{token}\n".encode(), expected=etag)
            except PreconditionFailed:
                conflicts += 1
                first = False
                continue
            first_round_wins += first
            return

    async with anyio.create_task_group() as tg:
        for i in range(writers):
            tg.start_soon(append, f"token-{i}")

    lines = (await storage.read("doc.txt")).decode().splitlines()
    assert sorted(lines) == sorted(f"token-{i}" for i in range(writers))
    assert first_round_wins == 1
    assert conflicts >= writers - 1


# -- delete --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_delete(store: Backend) -> None:
    storage = await store.put({"a.jpg.json": b"x", "a.jpg": b"image"})
    await storage.delete("a.jpg.json")
    with pytest.raises(NotFound):
        await storage.read("a.jpg.json")
    assert await storage.read("a.jpg") == b"image"


@pytest.mark.anyio
async def test_delete_missing(store: Backend) -> None:
    storage = await store.put({"a.jpg": b"x"})
    await storage.delete("gone.json")
    await storage.delete("gone.json", missing_ok=True)
    with pytest.raises(NotFound):
        await storage.delete("gone.json", missing_ok=False)


# -- read-only -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_readonly_refuses_every_write(store: Backend, requests: Requests) -> None:
    await store.put({"a.json": b"original"})
    storage = store.storage(readonly=True, observer=requests)
    _, etag = await storage.read_versioned("a.json")

    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: storage.write("a.json", b"new"),
        lambda: storage.write("b.json", b"new"),
        lambda: storage.write_if("a.json", b"new", expected=etag),
        lambda: storage.write_if("b.json", b"new", expected=None),
        lambda: storage.delete("a.json"),
    ]
    for attempt in attempts:
        with pytest.raises(ReadOnly) as info:
            await attempt()
        assert isinstance(info.value, PermissionDenied)
        assert info.value.code == "read_only"

    assert await storage.read("a.json") == b"original"
    with pytest.raises(NotFound):
        await storage.read("b.json")
    # Refused before reaching the backend: only the reads were requests.
    assert {op for op, _ in requests.log} == {"read"}


# -- observation ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_observer_sees_each_request_once(store: Backend, requests: Requests) -> None:
    storage = store.storage(observer=requests)
    store.folders("sub")
    await storage.write("sub/a.json", b"1")
    _, etag = await storage.read_versioned("sub/a.json")
    await storage.write_if("sub/a.json", b"2", expected=etag)
    await storage.read("sub/a.json")
    await storage.list("sub")
    await storage.info("sub/a.json")
    await storage.delete("sub/a.json")
    with pytest.raises(NotFound):
        await storage.read("sub/a.json")
    assert requests.log == [
        ("write", "sub/a.json"),
        ("read", "sub/a.json"),
        ("write", "sub/a.json"),
        ("read", "sub/a.json"),
        ("list", "sub"),
        ("info", "sub/a.json"),
        ("delete", "sub/a.json"),
        ("read", "sub/a.json"),
    ]


# -- opening -------------------------------------------------------------------------------------


def test_open_local_path(tmp_path: Path) -> None:
    storage = Storage.open(str(tmp_path))
    assert isinstance(storage.backend, LocalBackend)
    assert storage.root == os.path.realpath(tmp_path)
    assert storage.url == storage.root


def test_open_memory(memory_fs: MemoryFileSystem) -> None:
    storage = Storage.open("memory://gallery")
    assert isinstance(storage.backend, FilesystemBackend)
    assert storage.url == "memory://gallery"
    assert "memory://gallery" in repr(storage)


def test_open_unknown_protocol_fails_at_once() -> None:
    with pytest.raises(StorageError, match="nosuchproto"):
        Storage.open("nosuchproto://bucket/root")


def test_local_root_must_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        Storage.of(LocalFileSystem(), str(tmp_path / "missing"))
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(NotFound):
        Storage.of(LocalFileSystem(), str(tmp_path / "file"))


# -- local disk only -----------------------------------------------------------------------------


@pytest.fixture
def local(gallery: Path) -> Storage:
    return Storage.open(str(gallery))


def tree(root: Path) -> list[str]:
    """Every path under ``root``, relative and sorted (dot files included)."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def temp_files(root: Path) -> list[str]:
    return [p for p in tree(root) if p.endswith(TEMP_SUFFIX)]


@pytest.mark.anyio
async def test_atomic_write_leaves_no_temp_file_on_success(local: Storage, gallery: Path) -> None:
    (gallery / "sub").mkdir()
    await local.write("sub/a.json", b"1")
    await local.write("sub/a.json", b"2")
    await local.write_if("sub/a.json", b"3", expected=content_etag(b"2"))
    assert (gallery / "sub" / "a.json").read_bytes() == b"3"
    assert temp_files(gallery) == []
    assert oct((gallery / "sub" / "a.json").stat().st_mode & 0o777) == oct(0o644)


@pytest.mark.anyio
async def test_write_into_a_missing_folder_fails_and_leaves_nothing(
    local: Storage, gallery: Path
) -> None:
    with pytest.raises(NotFound):
        await local.write("missing/a.json", b"1")
    with pytest.raises(NotFound):
        await local.write_if("missing/a.json", b"1", expected=None)
    assert tree(gallery) == []


@pytest.mark.anyio
async def test_failed_rename_removes_the_temp_file(local: Storage, gallery: Path) -> None:
    # The temp file is written, then renaming it over a folder fails: it must be cleaned up.
    (gallery / "sub").mkdir()
    (gallery / "sub" / "keep.jpg").write_bytes(b"keep")
    with pytest.raises(NotFound, match="folder"):
        await local.write("sub", b"not a folder")
    assert temp_files(gallery) == []
    assert tree(gallery) == ["sub", "sub/keep.jpg"]


@pytest.fixture
def links(gallery: Path, tmp_path: Path) -> Path:
    """A gallery with every kind of symlink next to a real image."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"secret")
    (gallery / "real.jpg").write_bytes(b"real")
    (gallery / "folder").mkdir()
    (gallery / "folder" / "in.jpg").write_bytes(b"in")
    os.symlink(outside / "secret.jpg", gallery / "leak.jpg")
    os.symlink(outside, gallery / "leakdir")
    os.symlink("real.jpg", gallery / "alias.jpg")
    os.symlink("nowhere.jpg", gallery / "dangling.jpg")
    os.symlink("loop-b.jpg", gallery / "loop-a.jpg")
    os.symlink("loop-a.jpg", gallery / "loop-b.jpg")
    os.symlink("folder", gallery / "folderlink")
    return gallery


@pytest.mark.anyio
async def test_symlinks_are_listed_with_their_problem(links: Path) -> None:
    storage = Storage.open(str(links))
    entries = {e.name: e for e in await storage.list("")}

    assert entries["real.jpg"] == Entry("real.jpg", "file", 4, entries["real.jpg"].mtime)
    assert entries["folder"].kind == "dir"
    # A symlink to a file inside the root is just that file.
    assert entries["alias.jpg"].kind == "file"
    assert entries["alias.jpg"].size == 4
    assert entries["alias.jpg"].problem is None

    def problem(name: str, kind: str) -> str:
        # An unusable entry keeps the kind it would have, but is neither a folder nor a file
        # lenslet may use.
        assert entries[name].kind == kind
        assert not entries[name].is_file
        assert not entries[name].is_folder
        assert entries[name].size == 0
        return entries[name].problem or ""

    assert "outside the root" in problem("leak.jpg", "file")
    assert "outside the root" in problem("leakdir", "dir")
    assert "broken symlink" in problem("dangling.jpg", "other")
    assert "broken symlink" in problem("loop-a.jpg", "other")
    assert "broken symlink" in problem("loop-b.jpg", "other")
    assert "not followed" in problem("folderlink", "dir")


@pytest.mark.anyio
async def test_reading_through_a_symlink_out_of_the_root_is_refused(links: Path) -> None:
    storage = Storage.open(str(links))
    for path in ("leak.jpg", "leakdir/secret.jpg"):
        with pytest.raises(InvalidPath):
            await storage.read(path)
    with pytest.raises(InvalidPath):
        await storage.list("leakdir")
    with pytest.raises(InvalidPath):
        await storage.write("leak.jpg", b"overwrite")
    assert (links.parent / "outside" / "secret.jpg").read_bytes() == b"secret"


@pytest.mark.anyio
async def test_relative_escapes_are_refused(links: Path) -> None:
    storage = Storage.open(str(links))
    for path in ("../outside/secret.jpg", "folder/../../outside/secret.jpg", "/etc/passwd"):
        with pytest.raises(InvalidPath):
            await storage.read(path)


@pytest.mark.anyio
async def test_broken_symlinks_do_not_crash_reads(links: Path) -> None:
    storage = Storage.open(str(links))
    assert await storage.read("alias.jpg") == b"real"
    with pytest.raises(NotFound):
        await storage.read("dangling.jpg")
    with pytest.raises(InvalidPath):
        await storage.read("loop-a.jpg")


@pytest.mark.anyio
async def test_a_dangling_symlink_out_of_the_root_cannot_be_written_through(
    gallery: Path, tmp_path: Path
) -> None:
    os.symlink(tmp_path / "created-outside.json", gallery / "trap.json")
    storage = Storage.open(str(gallery))
    with pytest.raises(InvalidPath):
        await storage.write("trap.json", b"x")
    assert not (tmp_path / "created-outside.json").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
@pytest.mark.anyio
async def test_unreadable_local_file_is_permission_denied(local: Storage, gallery: Path) -> None:
    secret = gallery / "secret.jpg"
    secret.write_bytes(b"x")
    secret.chmod(0)
    with pytest.raises(PermissionDenied):
        await local.read("secret.jpg")


# -- translation of foreign errors ---------------------------------------------------------------


def raised_in(path: str, exc: Exception) -> Exception:
    """What ``translate`` turns ``exc`` into."""
    try:
        with translate(path):
            raise exc
    except Exception as translated:
        return translated
    raise AssertionError("translate swallowed the error")  # pragma: no cover


def real_oserror(action: Callable[[], object]) -> OSError:
    try:
        action()
    except OSError as exc:
        return exc
    raise AssertionError("expected an OSError")  # pragma: no cover


def test_translate_real_os_errors(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    os.symlink("loop", tmp_path / "loop")
    cases: list[tuple[OSError, type[LensletError]]] = [
        (real_oserror((tmp_path / "missing").read_bytes), NotFound),
        (real_oserror(lambda: os.listdir(tmp_path / "file")), NotFound),
        (real_oserror(tmp_path.read_bytes), NotFound),
        (real_oserror((tmp_path / "loop").read_bytes), InvalidPath),
        (real_oserror((tmp_path / ("n" * 300)).read_bytes), InvalidPath),
        (real_oserror(lambda: os.rmdir(tmp_path)), StorageError),  # ENOTEMPTY
    ]
    for foreign, expected in cases:
        translated = raised_in("a/b.jpg", foreign)
        assert type(translated) is expected, (foreign, translated)
        assert translated.__cause__ is foreign
        assert isinstance(translated, LensletError)
        assert translated.path == "a/b.jpg"


@pytest.mark.parametrize(
    ("foreign", "expected"),
    [
        (PermissionError(errno.EACCES, "Permission denied"), PermissionDenied),
        (PermissionError(errno.EPERM, "Operation not permitted"), PermissionDenied),
        (FileNotFoundError(errno.ENOENT, "No such file"), NotFound),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory"), NotFound),
        (IsADirectoryError(errno.EISDIR, "Is a directory"), NotFound),
        (OSError(errno.EROFS, "Read-only file system"), ReadOnly),
        (OSError(errno.ELOOP, "Too many levels of symbolic links"), InvalidPath),
        (OSError(errno.ENAMETOOLONG, "File name too long"), InvalidPath),
        (OSError(errno.EIO, "Input/output error"), StorageError),
        (OSError(errno.ENOSPC, "No space left on device"), StorageError),
        (ConnectionResetError(errno.ECONNRESET, "reset"), StorageError),
        (TimeoutError("timed out"), StorageError),
        (OSError("no errno at all"), StorageError),
    ],
)
def test_translate(foreign: Exception, expected: type[LensletError]) -> None:
    translated = raised_in("x.jpg", foreign)
    assert type(translated) is expected
    assert translated.__cause__ is foreign


def test_translate_keeps_lenslet_errors_and_the_rest() -> None:
    own = PreconditionFailed("lost the race")
    assert raised_in("x", own) is own
    # Programming errors are not storage failures (which the job engine would retry as an
    # outage): they surface as they are.
    for bug in (RuntimeError("bug"), ValueError("bad"), TypeError("bad"), KeyError("size")):
        assert raised_in("x", bug) is bug


def test_translate_names_the_root() -> None:
    assert "'/'" in str(raised_in("", FileNotFoundError(errno.ENOENT, "gone")))


def test_translate_passes_results_through() -> None:
    with translate("x"):
        value = 1 + 1
    assert value == 2


# -- a backend that says no ----------------------------------------------------------------------

Handler = Callable[[str, str], None]


class RefusingMemoryFileSystem(MemoryFileSystem):  # type: ignore[misc]
    """fsspec's memory filesystem behind a handler that sees every call first and may raise,
    the way a real backend refuses (like httpx's MockTransport calls your function)."""

    cachable = False  # a fresh instance per handler, not fsspec's cached one
    protocol = ("refusing",)

    def __init__(self, handler: Handler, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.handler = handler

    def isdir(self, path: str) -> bool:
        self.handler("isdir", path)
        return bool(super().isdir(path))

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> Any:
        self.handler("ls", path)
        return super().ls(path, detail=detail, **kwargs)

    def info(self, path: str, **kwargs: Any) -> Any:
        self.handler("info", path)
        return super().info(path, **kwargs)

    def cat_file(self, path: str, *args: Any, **kwargs: Any) -> Any:
        self.handler("cat_file", path)
        return super().cat_file(path, *args, **kwargs)

    def pipe_file(self, path: str, *args: Any, **kwargs: Any) -> Any:
        self.handler("pipe_file", path)
        return super().pipe_file(path, *args, **kwargs)

    def rm_file(self, path: str) -> Any:
        self.handler("rm_file", path)
        return super().rm_file(path)


def deny_under(prefix: str, exc: Callable[[], OSError]) -> Handler:
    def handler(op: str, path: str) -> None:
        if path.startswith(prefix):
            raise exc()

    return handler


@pytest.fixture
def refusing(memory_fs: MemoryFileSystem) -> Callable[[Handler], Storage]:
    def make(handler: Handler) -> Storage:
        return Storage.of(RefusingMemoryFileSystem(handler), "/gallery")

    return make


@pytest.mark.anyio
async def test_a_backend_that_refuses_becomes_permission_denied(
    refusing: Callable[[Handler], Storage],
) -> None:
    storage = refusing(deny_under("/gallery/private", lambda: PermissionError("AccessDenied")))
    await storage.write("public/a.jpg", b"ok")
    await storage.write_if("public/b.json", b"ok", expected=None)
    assert await storage.read("public/a.jpg") == b"ok"
    assert [e.name for e in await storage.list("public")] == ["a.jpg", "b.json"]

    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: storage.read("private/a.jpg"),
        lambda: storage.read_versioned("private/a.jpg"),
        lambda: storage.list("private"),
        lambda: storage.info("private/a.jpg"),
        lambda: storage.write("private/a.jpg", b"x"),
        lambda: storage.write_if("private/a.json", b"x", expected=None),
        lambda: storage.delete("private/a.jpg"),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied) as info:
            await attempt()
        assert type(info.value) is PermissionDenied
        assert info.value.status == 403
        assert isinstance(info.value.__cause__, PermissionError)
    assert "/gallery/private/a.jpg" not in MemoryFileSystem.store


@pytest.mark.anyio
async def test_a_read_only_backend_becomes_read_only(
    refusing: Callable[[Handler], Storage],
) -> None:
    def handler(op: str, path: str) -> None:
        if op in ("pipe_file", "rm_file"):
            raise OSError(errno.EROFS, "Read-only file system")

    storage = refusing(handler)
    with pytest.raises(ReadOnly):
        await storage.write("a.json", b"x")


@pytest.mark.anyio
async def test_a_failing_backend_becomes_storage_error(
    refusing: Callable[[Handler], Storage],
) -> None:
    storage = refusing(deny_under("/gallery", lambda: ConnectionResetError("connection reset")))
    with pytest.raises(StorageError, match="connection reset"):
        await storage.read("a.jpg")
    with pytest.raises(StorageError):
        await storage.list("")
