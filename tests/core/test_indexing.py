from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
import pyvips
from fsspec.implementations.memory import MemoryFileSystem

from lenslet_core import IndexProgress, Lenslet, Settings, Storage
from tests.conftest import Requests
from tests.imagegen import jpeg_bytes, make_tree, png_bytes, webp_bytes, write

pytestmark = pytest.mark.anyio


def items_of(index: Path) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in orjson.loads(index.read_bytes())["items"]}


@pytest.fixture
def bad_tree(gallery: Path) -> Path:
    """Every kind of bad input the indexer must survive, beside good images."""
    write(gallery / "good.jpg", jpeg_bytes(40, 30))
    jpeg, png, webp = jpeg_bytes(200, 150), png_bytes(200, 150), webp_bytes(200, 150)
    write(gallery / "bad" / "truncated.jpg", jpeg[: len(jpeg) // 2])
    write(gallery / "bad" / "truncated.png", png[: len(png) // 2])
    write(gallery / "bad" / "truncated.webp", webp[: len(webp) // 2])
    corrupt = bytearray(jpeg)
    corrupt[4:64] = os.urandom(60)
    write(gallery / "bad" / "corrupt.jpg", bytes(corrupt))
    write(gallery / "bad" / "text.jpg", b"this is a text file\n")
    write(gallery / "bad" / "empty.png", b"")
    bomb = pyvips.Image.black(30000, 30000).pngsave_buffer(bitdepth=1, compression=1)
    write(gallery / "bad" / "bomb.png", bomb)
    os.symlink("nowhere.jpg", gallery / "bad" / "dangling.jpg")
    os.symlink(".", gallery / "bad" / "loop")
    os.symlink("self.jpg", gallery / "bad" / "self.jpg")
    os.symlink("/etc/hostname", gallery / "bad" / "escape.jpg")
    for name in ("with space.jpg", "ünïcödé 写真.png", "hash#tag.webp", "what?.jpg", "100%.png"):
        makers = {".png": png_bytes, ".webp": webp_bytes}
        write(gallery / "names" / name, makers.get(Path(name).suffix, jpeg_bytes)())
    write(gallery / "names" / "broken.jpg", jpeg_bytes())
    write(gallery / "names" / "broken.jpg.json", b"{not json")
    write(gallery / "names" / "future.jpg", jpeg_bytes(seed=3))
    write(gallery / "names" / "future.jpg.json", b'{"v": 2, "tags": ["keep"]}')
    return gallery


async def test_bad_inputs_are_skipped_with_reasons_and_nothing_is_lost(
    bad_tree: Path, settings: Settings
) -> None:
    before = {p: p.read_bytes() for p in bad_tree.rglob("*") if p.is_file() and not p.is_symlink()}
    async with Lenslet(str(bad_tree), settings.replace(max_pixels=100_000_000)) as lens:
        report = await lens.index()
    reasons = {s.path: s.code for s in report.skipped}
    assert reasons == {
        "bad/truncated.jpg": "corrupt_image",
        "bad/truncated.png": "corrupt_image",
        "bad/truncated.webp": "corrupt_image",
        "bad/corrupt.jpg": "corrupt_image",
        "bad/text.jpg": "unsupported_image",
        "bad/empty.png": "unsupported_image",
        "bad/bomb.png": "image_too_large",
        "bad/dangling.jpg": "unusable_entry",
        "bad/loop": "unusable_entry",
        "bad/self.jpg": "unusable_entry",
        "bad/escape.jpg": "unusable_entry",
        "names/broken.jpg.json": "malformed_json",
        "names/future.jpg.json": "unsupported_version",
    }
    assert all(s.reason for s in report.skipped)
    assert not report.ok
    names = items_of(bad_tree / "names" / "_index.json")
    assert sorted(names) == sorted(
        [
            "with space.jpg",
            "ünïcödé 写真.png",
            "hash#tag.webp",
            "what?.jpg",
            "100%.png",
            "broken.jpg",
            "future.jpg",
        ]
    )
    assert items_of(bad_tree / "bad" / "_index.json") == {}
    # Nothing that was on disk changed: not the bad images, not the unreadable sidecars.
    for path, data in before.items():
        assert path.read_bytes() == data, path
    assert not [p for p in bad_tree.rglob("*") if p.name.endswith(".lenslet-tmp")]


async def test_second_run_reads_no_image_and_writes_nothing(
    bad_tree: Path, settings: Settings, requests: Requests
) -> None:
    async with Lenslet(str(bad_tree), settings, observer=requests) as lens:
        first = await lens.index()
        requests.clear()
        second = await lens.index()
    assert requests.by_op().keys() <= {"list", "read", "write"}
    # The one write is the health file, which records this run; the rollup is unchanged.
    assert [p for op, p in requests.log if op == "write"] == ["_health.json"]
    read = [p for op, p in requests.log if op == "read"]
    assert read
    # Manifests, and sidecars written moments before the rollup's basis (read again for the
    # rollup, in case a coarse mtime hid a change); never an image.
    assert all(p.endswith(".json") for p in read)
    assert second.analyzed == 0
    assert second.manifests_written == 0
    # Bad images are remembered in the manifest and reported again without being read; sidecar
    # problems are found when an image is read, so the unchanged second run does not see them.
    assert {s.path for s in second.skipped} == {
        s.path for s in first.skipped if not s.path.endswith(".json")
    }


async def test_a_tree_of_all_formats(gallery: Path, settings: Settings) -> None:
    made = make_tree(gallery, folders=6, per_folder=20, size=24)
    seen: list[IndexProgress] = []
    async with Lenslet(str(gallery), settings) as lens:
        report = await lens.index(on_progress=lambda p: seen.append(IndexProgress(**vars(p))))
    assert report.ok
    assert report.items == len(made) == report.analyzed
    assert report.folders == 7  # the root and six albums
    indexed = set()
    for index in gallery.rglob("_index.json"):
        folder = index.parent.relative_to(gallery).as_posix()
        for name in items_of(index):
            indexed.add(f"{folder}/{name}" if folder != "." else name)
    assert indexed == set(made)
    done = [p.images_done for p in seen]
    assert done == sorted(done)
    assert seen[-1].images_done == seen[-1].images_total == len(made)
    assert seen[-1].folders_done == seen[-1].folders_total == 7


async def test_sidecars_get_exif_basics_only_where_they_exist(gallery: Path) -> None:
    write(gallery / "a.jpg", jpeg_bytes(30, 20, taken="2023:02:03 04:05:06", orientation=6))
    write(gallery / "b.jpg", jpeg_bytes(30, 20))
    write(gallery / "a.jpg.json", orjson.dumps({"tags": ["keep"], "star": 5}))
    async with Lenslet(str(gallery)) as lens:
        report = await lens.index()
    assert report.sidecars_refreshed == 1
    sidecar = orjson.loads((gallery / "a.jpg.json").read_bytes())
    assert sidecar["exif"] == {"width": 20, "height": 30, "createdAt": "2023-02-03T04:05:06"}
    assert sidecar["tags"] == ["keep"]
    assert sidecar["star"] == 5
    assert "updatedAt" not in sidecar or sidecar["updatedAt"] is None
    assert not (gallery / "b.jpg.json").exists()


async def test_only_the_named_folder_when_not_recursive(gallery: Path) -> None:
    make_tree(gallery, folders=3, per_folder=2)
    async with Lenslet(str(gallery)) as lens:
        report = await lens.index("album0", recursive=False)
    assert report.folders == 1
    assert (gallery / "album0" / "_index.json").exists()
    assert not (gallery / "album0" / "nested1" / "_index.json").exists()
    assert not (gallery / "_index.json").exists()


async def test_pointer_folders_are_not_walked_into(gallery: Path) -> None:
    write(gallery / "ptr" / ".lenscat.folder.json", b'{"version":1,"kind":"pointer"}')
    write(gallery / "ptr" / "inside" / "x.jpg", jpeg_bytes())
    async with Lenslet(str(gallery)) as lens:
        await lens.index()
    assert orjson.loads((gallery / "_index.json").read_bytes())["dirs"] == [
        {"name": "ptr", "kind": "leaf-pointer"}
    ]
    assert not (gallery / "ptr" / "inside" / "_index.json").exists()
    assert not (gallery / "ptr" / "_index.json").exists()


class RefusingMemoryFS(MemoryFileSystem):  # type: ignore[misc]
    """A memory filesystem whose reads ask a handler first: a backend that says no."""

    def __init__(self, refuse: Callable[[str], bool]) -> None:
        super().__init__()
        self.refuse = refuse

    def cat_file(self, path: str, start: Any = None, end: Any = None, **kw: Any) -> bytes:
        if self.refuse(path):
            raise PermissionError(13, "Access Denied", path)
        return super().cat_file(path, start, end, **kw)  # type: ignore[no-any-return]


async def test_unreadable_files_are_skipped_on_any_backend(memory_fs: MemoryFileSystem) -> None:
    fs = RefusingMemoryFS(lambda p: p.endswith("secret.jpg"))
    fs.pipe_file("/g/ok.jpg", jpeg_bytes())
    fs.pipe_file("/g/secret.jpg", jpeg_bytes(seed=1))
    async with Lenslet(Storage.of(fs, "/g")) as lens:
        report = await lens.index()
        page = await lens.folder("")
    assert [(s.path, s.code) for s in report.skipped] == [("secret.jpg", "permission_denied")]
    assert [i.name for i in page.items] == ["ok.jpg"]


async def test_a_read_error_that_passes_reaches_manifest_search_and_health(
    memory_fs: MemoryFileSystem,
) -> None:
    """The second run finds the same listing, but the first gave up on a file: the folder is
    built again, and search and health take the new build, not the one they counted."""
    refused = {"/g/secret.jpg"}
    fs = RefusingMemoryFS(lambda p: "/" + p.lstrip("/") in refused)
    fs.pipe_file("/g/ok.jpg", jpeg_bytes())
    fs.pipe_file("/g/secret.jpg", jpeg_bytes(seed=1))
    fs.pipe_file("/g/secret.jpg.json", b'{"v": 1, "tags": ["treasure"]}')
    # No thumbnails: one made in the second run would change the listing signature too.
    settings = Settings(thumbnails=False)
    async with Lenslet(Storage.of(fs, "/g"), settings) as lens:
        first = await lens.index()
        assert await lens.search("treasure") == []
    assert [s.code for s in first.skipped] == ["permission_denied"]
    refused.clear()
    async with Lenslet(Storage.of(fs, "/g"), settings) as lens:
        again = await lens.index()
        found = [i.path for i in await lens.search("treasure")]
        health = await lens.health_report()
    assert (again.ok, again.analyzed) == (True, 1)
    assert found == ["secret.jpg"]
    assert (health["counts"]["items"], health["counts"]["skipped"]) == (2, 0)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
async def test_unreadable_local_file_is_skipped(gallery: Path) -> None:
    secret = write(gallery / "secret.jpg", jpeg_bytes())
    secret.chmod(0)
    try:
        async with Lenslet(str(gallery)) as lens:
            report = await lens.index()
    finally:
        secret.chmod(0o644)
    assert [(s.path, s.code) for s in report.skipped] == [("secret.jpg", "permission_denied")]


async def test_index_on_the_memory_backend(memory_fs: MemoryFileSystem) -> None:
    memory_fs.pipe_file("/mem/a/x.png", png_bytes(12, 9))
    memory_fs.pipe_file("/mem/a/y.txt", b"ignored")
    async with Lenslet("memory://mem") as lens:
        report = await lens.index()
        page = await lens.folder("/a")
    assert report.ok
    assert [(i.name, i.w, i.h) for i in page.items] == [("x.png", 12, 9)]
    assert memory_fs.exists("/mem/a/_index.json")


_WRITER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)  # as lenslet's own writers hold their temp files
os.write(fd, b'{"v": 1, "tags": ["half')
old = time.time() - 60
os.utime(sys.argv[1], (old, old))
print("writing", flush=True)
time.sleep(600)
"""


def _writer(path: Path) -> subprocess.Popen[str]:
    """A writer in the middle of an atomic write: a real process holding its temp file."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "writing\n"
    return proc


async def test_temp_files_of_killed_writers_are_cleaned_up(gallery: Path) -> None:
    """A writer killed with -9 mid-write leaves its temp file; the next index run removes it at
    once (no live process holds it), and never one a live writer is still writing."""
    write(gallery / "a.jpg", jpeg_bytes())
    killed = gallery / ".lenslet-k1ll3d.lenslet-tmp"
    alive = gallery / ".lenslet-4l1v3.lenslet-tmp"
    victim, survivor = _writer(killed), _writer(alive)
    try:
        victim.kill()  # SIGKILL: no cleanup of its own
        victim.wait(10)
        fresh = write(gallery / "._index.json.z9.lenslet-tmp", b"{")  # just begun
        async with Lenslet(str(gallery)) as lens:
            report = await lens.index()
        assert report.temp_files_removed == 1
        assert not killed.exists()
        assert alive.exists()  # its writer is still running, a minute into its write
        assert fresh.exists()  # may belong to a writer that has not locked it yet
        assert report.ok
    finally:
        survivor.kill()
        survivor.wait(10)
        for proc in (victim, survivor):
            if proc.stdout is not None:
                proc.stdout.close()


async def test_a_few_thousand_images_in_nested_and_paged_folders(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    gallery = tmp_path_factory.mktemp("thousands")
    small = {".jpg": jpeg_bytes(16, 12), ".png": png_bytes(12, 16), ".webp": webp_bytes(16, 16)}
    expected: dict[str, set[str]] = {}
    n = 0
    for folder, count in [("a/b/c", 900), ("a/b", 300), ("a", 300), ("d", 600), ("", 100)]:
        for i in range(count):
            suffix = (".jpg", ".png", ".webp")[n % 3]
            name = f"img{i:04d}{suffix}"
            write(gallery / folder / name, small[suffix])
            expected.setdefault(folder, set()).add(name)
            n += 1
    async with Lenslet(str(gallery), Settings(page_size=400, cpu_concurrency=2)) as lens:
        report = await lens.index()
        assert report.ok
        assert report.items == n == 2200
        for folder, names in expected.items():
            first = await lens.folder(folder)
            seen = {i.name for i in first.items}
            for page in range(1, first.page_count):
                seen |= {i.name for i in (await lens.folder(folder, page)).items}
            assert seen == names
            assert first.page_count == -(-len(names) // 400)
        again = await lens.index()
    assert again.analyzed == 0
    assert again.manifests_written == 0
    assert sorted(p.name for p in (gallery / "a" / "b" / "c").glob("_index*")) == [
        "_index_0.json",
        "_index_1.json",
        "_index_2.json",
    ]


async def test_names_that_are_not_utf8_are_reported_not_fatal(gallery: Path) -> None:
    write(gallery / "fine" / "ok.jpg", jpeg_bytes())
    root = os.fsencode(gallery)
    with open(os.path.join(root, b"caf\xe9.jpg"), "wb") as f:
        f.write(jpeg_bytes(seed=1))
    os.mkdir(os.path.join(root, b"f\xf6lder"))
    async with Lenslet(str(gallery)) as lens:
        report = await lens.index()
    assert report.items == 1
    assert sorted(s.code for s in report.skipped) == ["unusable_entry", "unusable_entry"]
    assert all("UTF-8" in s.reason for s in report.skipped)
    assert (gallery / "_index.json").exists()
    assert (gallery / "fine" / "_index.json").exists()


async def test_too_large_verdicts_follow_the_settings(gallery: Path) -> None:
    write(gallery / "big.jpg", jpeg_bytes(200, 200))
    async with Lenslet(str(gallery), Settings(max_pixels=1000)) as lens:
        report = await lens.index()
    assert [s.code for s in report.skipped] == ["image_too_large"]
    async with Lenslet(str(gallery), Settings(max_pixels=1000)) as lens:
        again = await lens.index()  # the unchanged verdict is reused without a read
    assert (again.analyzed, [s.code for s in again.skipped]) == (0, ["image_too_large"])
    async with Lenslet(str(gallery)) as lens:
        report = await lens.index()
        assert report.ok
        assert [i.name for i in (await lens.folder("")).items] == ["big.jpg"]
    async with Lenslet(str(gallery), Settings(max_pixels=1000)) as lens:
        report = await lens.index()  # a lower limit applies to reused entries too
    assert [s.code for s in report.skipped] == ["image_too_large"]
    assert orjson.loads((gallery / "_index.json").read_bytes())["items"] == []


async def test_a_fifo_named_like_a_sidecar_does_not_hang_the_index(gallery: Path) -> None:
    write(gallery / "a.jpg", jpeg_bytes())
    os.mkfifo(gallery / "a.jpg.json")
    async with Lenslet(str(gallery)) as lens:
        with anyio.fail_after(20):
            report = await lens.index()
    assert [(s.path, s.code) for s in report.skipped] == [("a.jpg.json", "invalid_path")]
    assert report.items == 1


async def test_index_refresh_keeps_client_fields_verbatim(gallery: Path) -> None:
    write(gallery / "a.jpg", jpeg_bytes(20, 10))
    original = {
        "tags": ["x"],
        "updatedAt": 1700000000000,
        "updatedBy": {"id": 7, "name": "ann"},
        "position": [1, 2.5, None],
    }
    write(gallery / "a.jpg.json", orjson.dumps(original))
    async with Lenslet(str(gallery)) as lens:
        report = await lens.index()
    assert report.sidecars_refreshed == 1
    stored = orjson.loads((gallery / "a.jpg.json").read_bytes())
    for key, value in original.items():
        assert stored[key] == value
    assert stored["exif"] == {"width": 20, "height": 10, "createdAt": None}


async def test_other_files_with_bad_names_are_ignored(gallery: Path) -> None:
    write(gallery / "ok.jpg", jpeg_bytes())
    root = os.fsencode(gallery)
    for raw in (b"Lebenslauf-\xfc.txt", b"._\xe9t\xe9.jpg"):
        with open(os.path.join(root, raw), "wb") as f:
            f.write(b"x")
    async with Lenslet(str(gallery)) as lens:
        report = await lens.index()
    assert report.ok
    assert report.items == 1


async def test_lowering_max_pixels_never_reads_the_refused_image_again(
    gallery: Path, requests: Requests
) -> None:
    write(gallery / "big.jpg", jpeg_bytes(200, 100))
    async with Lenslet(str(gallery), observer=requests) as lens:
        await lens.index()
    for _ in range(2):
        requests.clear()
        async with Lenslet(str(gallery), Settings(max_pixels=1000), observer=requests) as lens:
            report = await lens.index()
        assert [s.code for s in report.skipped] == ["image_too_large"]
        assert requests.count("read", ".jpg") == 0


async def test_progress_names_the_folder_being_worked_on(gallery: Path) -> None:
    for folder in ("a", "b/c", "d"):
        write(gallery / folder / "x.jpg", jpeg_bytes())
    seen: list[str] = []
    async with Lenslet(str(gallery), Settings(thumbnails=False)) as lens:
        await lens.index(on_progress=lambda p: seen.append(p.current))
    # every folder is named while it is walked and while its images are read
    assert {"a", "b/c", "d"} <= set(seen)
    assert seen[-1] in {"a", "b/c", "d"}  # the last news is of a folder, not the root


def test_reports_of_folders_add_up() -> None:
    from lenslet_core.index_report import IndexReport
    from lenslet_core.manifest import Skipped

    total = IndexReport(root="/r", path="")
    one = IndexReport(root="/r", path="a", folders=1, items=3, analyzed=2, reused=1)
    one.unsupported = {"image/heic": 2}
    one.skipped = [Skipped("a/x.jpg", "corrupt", "corrupt_image")]
    two = IndexReport(root="/r", path="b", folders=1, items=1, thumbnails_made=1)
    two.unsupported = {"image/heic": 1, "image/gif": 1}
    for part in (one, two):
        total.add(part)
    assert (total.folders, total.items, total.analyzed, total.reused) == (2, 4, 2, 1)
    assert total.thumbnails_made == 1
    assert total.unsupported == {"image/heic": 3, "image/gif": 1}
    assert [s.path for s in total.skipped] == ["a/x.jpg"]


class TypedAfterTheRefresh(Storage):
    """Local storage where another writer sets a sidecar's star and tags after the index run
    has refreshed its EXIF basics and before the run lists the folder for the new stamps."""

    def __init__(self, root: Path, sidecar: str, document: bytes) -> None:
        from lenslet_core.local import LocalBackend

        super().__init__(LocalBackend(str(root)))
        self.at, self.sidecar, self.document = root, sidecar, document
        self.refreshed = self.typed = False

    async def write_if(self, path: str, data: bytes, *, expected: str | None) -> str:
        version = await super().write_if(path, data, expected=expected)
        self.refreshed = self.refreshed or path == self.sidecar
        return version

    async def list(self, path: str) -> Any:
        if self.refreshed and not self.typed:
            self.typed = True
            (self.at / self.sidecar).write_bytes(self.document)  # a write of its own
        return await super().list(path)


async def test_a_star_set_between_a_refresh_and_the_relisting_is_shown(gallery: Path) -> None:
    # A local listing gives no versions: what the run wrote is read back to vouch for the
    # stamp it takes. Taken on trust, the star as the run wrote it would stand at the stamp
    # of the other writer's version, and the next runs would not read that sidecar again.
    write(gallery / "a" / "x.jpg", jpeg_bytes(16, 12))
    write(gallery / "a" / "y.jpg", jpeg_bytes(16, 12, seed=1))
    (gallery / "a" / "x.jpg.json").write_bytes(b'{"tags": ["old"], "star": 3}')
    typed = b'{"tags": ["typed"], "star": 5}'
    storage = TypedAfterTheRefresh(gallery, "a/x.jpg.json", typed)
    async with Lenslet(storage, Settings()) as lens:
        report = await lens.index()
        found = [hit.path for hit in await lens.search("typed")]
    assert storage.typed
    assert report.sidecars_refreshed == 1
    assert found == ["a/x.jpg"]
    assert (gallery / "a" / "x.jpg.json").read_bytes() == typed
    async with Lenslet(str(gallery), Settings()) as lens:
        await lens.index()
        page = await lens.folder("a", refresh=False)
    assert {i.name: i.star for i in page.items} == {"x.jpg": 5, "y.jpg": None}


class SaysNoOnce(Storage):
    """Local storage whose first read of one file fails, as a busy NAS or bucket can."""

    def __init__(self, root: Path, failing: str) -> None:
        from lenslet_core.local import LocalBackend

        super().__init__(LocalBackend(str(root)))
        self.failing, self.failed = failing, False

    async def read_versioned(self, path: str) -> tuple[bytes, str]:
        if path == self.failing and not self.failed:
            from lenslet_core import StorageError

            self.failed = True
            raise StorageError("the storage said no", path=path)
        return await super().read_versioned(path)


async def test_a_star_whose_sidecar_could_not_be_read_is_read_by_the_next_run(
    gallery: Path,
) -> None:
    # Storage trouble on a sidecar's read leaves its image's star unknown: said in the report,
    # and the manifest is not one the next run may reuse whole without reading it.
    write(gallery / "a" / "x.jpg", jpeg_bytes(16, 12))
    write(gallery / "a" / "y.jpg", jpeg_bytes(16, 12, seed=1))
    (gallery / "a" / "x.jpg.json").write_bytes(b'{"tags": ["old"], "star": 3}')
    async with Lenslet(str(gallery), Settings()) as lens:
        assert (await lens.index()).ok
    document = orjson.loads((gallery / "a" / "x.jpg.json").read_bytes())
    document["star"] = 4  # set by another client, not through this server
    (gallery / "a" / "x.jpg.json").write_bytes(orjson.dumps(document))
    storage = SaysNoOnce(gallery, "a/x.jpg.json")
    async with Lenslet(storage, Settings()) as lens:
        report = await lens.index()
    assert storage.failed
    assert [(s.path, s.code) for s in report.skipped] == [("a/x.jpg.json", "storage_error")]
    assert "the storage said no" in report.skipped[0].reason
    async with Lenslet(str(gallery), Settings()) as lens:
        again = await lens.index()
        page = await lens.folder("a", refresh=False)
    assert again.ok, again.skipped
    assert {i.name: i.star for i in page.items} == {"x.jpg": 4, "y.jpg": None}
