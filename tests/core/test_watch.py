"""Watching: waves planned from file-system changes, and a live root kept indexed."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import orjson
import pytest
from fsspec.implementations.memory import MemoryFileSystem
from hypothesis import given
from hypothesis import strategies as st

from lenslet_core import Lenslet, RollupItem, Settings, Wave
from lenslet_core.watch import plan_wave
from tests.conftest import S3
from tests.imagegen import jpeg_bytes, write
from tests.proxy import Proxy

pytestmark = pytest.mark.anyio


def test_a_wave_is_the_folders_whose_images_or_sidecars_changed(tmp_path: Path) -> None:
    root = str(tmp_path)
    changes = [
        ("added", f"{root}/a/x.jpg"),
        ("modified", f"{root}/a/y.png"),
        ("modified", f"{root}/b/z.webp.json"),  # a sidecar another tool edited
        ("deleted", f"{root}/c/gone.jpg"),
    ]
    wave = plan_wave(root, changes)
    assert wave.folders == {"a", "b", "c"}
    assert wave.changes == 4
    assert (wave.new_folders, wave.removed) == (set(), set())


def test_lenslets_own_files_and_hidden_ones_are_not_news(tmp_path: Path) -> None:
    root = str(tmp_path)
    own = [
        "a/_index.json",
        "a/_index_3.json",
        "a/x.jpg.thumbnail",
        "_rollup.json",
        "_health.json",
        "a/.lenslet-abc.lenslet-tmp",
        "a/.lenslet.lock",
        "a/.hidden.jpg",
        ".git/objects/x.jpg",
    ]
    wave = plan_wave(root, [("modified", f"{root}/{p}") for p in own])
    assert not wave
    assert wave.changes == 0


def test_a_pointer_config_is_news_for_its_folder(tmp_path: Path) -> None:
    wave = plan_wave(str(tmp_path), [("added", f"{tmp_path}/p/.lenscat.folder.json")])
    assert wave.folders == {"p"}


def test_a_new_folder_is_indexed_whole_once(tmp_path: Path) -> None:
    (tmp_path / "new" / "deep").mkdir(parents=True)
    root = str(tmp_path)
    changes = [
        ("added", f"{root}/new"),
        ("added", f"{root}/new/deep"),
        ("added", f"{root}/new/deep/x.jpg"),
        ("added", f"{root}/new/y.jpg"),
    ]
    wave = plan_wave(root, changes)
    assert wave.new_folders == {"new"}
    assert wave.folders == {""}  # the parent, for its sub-folder list


def test_a_deleted_folder_is_removed(tmp_path: Path) -> None:
    root = str(tmp_path)
    wave = plan_wave(root, [("deleted", f"{root}/old"), ("deleted", f"{root}/old/x.jpg")])
    assert wave.removed == {"old"}
    assert wave.folders == {"", "old"}


def test_changes_outside_the_watched_folder_are_left_out(tmp_path: Path) -> None:
    root = str(tmp_path)
    changes = [("added", f"{root}/a/x.jpg"), ("added", f"{root}/b/y.jpg")]
    assert plan_wave(root, changes, under="a").folders == {"a"}
    assert not plan_wave(root, [("added", "/elsewhere/x.jpg")])


segment = st.sampled_from(["a", "b", "é", "x y", ".h", "_index.json", "p.jpg", "p.jpg.json"])
leaf = st.sampled_from(
    ["x.jpg", "x.jpg.json", "x.jpg.thumbnail", "_index.json", "_rollup.json", "n.txt", ".h.jpg"]
)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["added", "modified", "deleted"]),
            st.lists(segment, max_size=3),
            leaf,
        ),
        max_size=12,
    )
)
def test_a_wave_only_names_folders_of_changed_files(
    changes: list[tuple[str, list[str], str]],
) -> None:
    root = "/nonexistent-root"
    given_changes = [(kind, "/".join([root, *parts, name])) for kind, parts, name in changes]
    wave = plan_wave(root, given_changes)
    parents = {"/".join(parts) for _, parts, _ in changes}
    assert wave.folders <= parents
    for folder in wave.folders | wave.removed:
        assert not any(part.startswith(".") for part in folder.split("/") if part)
    assert not any(f.endswith((".thumbnail", "_index.json")) for f in wave.removed)
    assert wave.changes <= len(changes)


class Waves:
    """Collects a watch's waves and lets a test wait, wave by wave, for an outcome."""

    def __init__(self) -> None:
        self.seen: list[Wave] = []
        self._send, self._receive = anyio.create_memory_object_stream[Wave](1000)

    def __call__(self, wave: Wave) -> None:
        self.seen.append(wave)
        self._send.send_nowait(wave)

    async def until(self, condition: Callable[[], bool], seconds: float = 20) -> None:
        with anyio.fail_after(seconds):
            while not condition():
                await self._receive.receive()

    async def until_async(
        self, condition: Callable[[], Awaitable[bool]], seconds: float = 20
    ) -> None:
        with anyio.fail_after(seconds):
            while not await condition():
                await self._receive.receive()

    def __enter__(self) -> Waves:
        return self

    def __exit__(self, *exc: object) -> None:
        self._send.close()
        self._receive.close()


def _items(folder: Path) -> dict[str, dict[str, object]]:
    path = folder / "_index.json"
    if not path.exists():
        return {}
    return {i["name"]: i for i in orjson.loads(path.read_bytes())["items"]}


@pytest.fixture
def waves() -> Iterator[Waves]:
    with Waves() as collected:
        yield collected


async def test_watch_indexes_new_changed_and_deleted_images(gallery: Path, waves: Waves) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes(seed=1))
    stop = anyio.Event()
    async with Lenslet(str(gallery), Settings(cpu_concurrency=2)) as lens:
        await lens.index()
        async with anyio.create_task_group() as tg:
            ready = anyio.Event()
            tg.start_soon(
                lambda: lens.watch(stop=stop, on_wave=waves, debounce_ms=300, ready=ready)
            )
            await ready.wait()
            write(gallery / "a" / "new.jpg", jpeg_bytes(120, 80, seed=2))
            await waves.until(lambda: "new.jpg" in _items(gallery / "a"))
            assert (gallery / "a" / "new.jpg.thumbnail").exists()
            assert _items(gallery / "a")["new.jpg"]["hasThumb"] is True

            write(gallery / "fresh" / "deep" / "y.png", jpeg_bytes(seed=3))
            await waves.until(lambda: "y.png" in _items(gallery / "fresh" / "deep"))

            os.unlink(gallery / "a" / "x.jpg")
            await waves.until(lambda: "x.jpg" not in _items(gallery / "a"))

            write(gallery / "a" / "new.jpg.json", b'{"tags": ["watched"]}')
            found: list[RollupItem] = []

            async def searched() -> bool:
                found[:] = await lens.search("watched")
                return bool(found)

            await waves.until_async(searched)
            assert [i.path for i in found] == ["a/new.jpg"]
            stop.set()
    rollup = orjson.loads((gallery / "_rollup.json").read_bytes())
    assert sorted(i["path"] for i in rollup["items"]) == ["a/new.jpg", "fresh/deep/y.png"]
    assert [i["tags"] for i in rollup["items"] if i["path"] == "a/new.jpg"] == [["watched"]]
    health = orjson.loads((gallery / "_health.json").read_bytes())
    assert health["counts"]["items"] == 2
    assert health["counts"]["orphanThumbnails"] == 1  # x.jpg's, its image deleted


async def test_a_burst_of_files_is_a_few_waves(gallery: Path, waves: Waves) -> None:
    (gallery / "burst").mkdir()
    data = jpeg_bytes(16, 16)
    stop = anyio.Event()
    async with Lenslet(str(gallery), Settings(thumbnails=False)) as lens:
        await lens.index()
        async with anyio.create_task_group() as tg:
            ready = anyio.Event()
            tg.start_soon(
                lambda: lens.watch(stop=stop, on_wave=waves, debounce_ms=1000, ready=ready)
            )
            await ready.wait()
            for n in range(300):
                (gallery / "burst" / f"{n:03d}.jpg").write_bytes(data)
            await waves.until(lambda: len(_items(gallery / "burst")) == 300)
            stop.set()
    assert sum(w.changes for w in waves.seen) >= 300
    assert len(waves.seen) <= 5


async def test_a_root_without_events_is_watched_by_listing(
    memory_fs: MemoryFileSystem, waves: Waves
) -> None:
    memory_fs.pipe_file("/gallery/a/x.jpg", jpeg_bytes())
    stop = anyio.Event()
    async with Lenslet("memory://gallery", Settings(watch_interval=0.05)) as lens:
        await lens.index()
        async with anyio.create_task_group() as tg:
            ready = anyio.Event()
            tg.start_soon(lambda: lens.watch(stop=stop, on_wave=waves, ready=ready))
            await ready.wait()
            memory_fs.pipe_file("/gallery/a/y.jpg", jpeg_bytes(seed=2))
            await waves.until(lambda: any("a" in w.folders for w in waves.seen))
            stop.set()
        assert [i.name for i in (await lens.folder("a")).items] == ["x.jpg", "y.jpg"]


async def test_a_new_pointer_folder_does_not_stop_the_watch(gallery: Path, waves: Waves) -> None:
    stop = anyio.Event()
    async with Lenslet(str(gallery), Settings(thumbnails=False)) as lens:
        await lens.index()
        async with anyio.create_task_group() as tg:
            ready = anyio.Event()
            tg.start_soon(
                lambda: lens.watch(stop=stop, on_wave=waves, debounce_ms=300, ready=ready)
            )
            await ready.wait()
            write(gallery / "p" / ".lenscat.folder.json", b'{"version": 1, "kind": "pointer"}')
            await waves.until(lambda: any("p" in w.new_folders for w in waves.seen))
            write(gallery / "after.jpg", jpeg_bytes())
            await waves.until(lambda: "after.jpg" in _items(gallery))
            stop.set()
    dirs = orjson.loads((gallery / "_index.json").read_bytes())["dirs"]
    assert dirs == [{"name": "p", "kind": "leaf-pointer"}]


async def _until_listed(lens: Lenslet, folder: str, names: list[str], copied: Path) -> None:
    """Copy an image in (again, should the watcher not have been listening yet) until the
    folder lists ``names``."""
    with anyio.fail_after(20):
        for attempt in range(1, 100):
            write(copied, jpeg_bytes(32, 24, seed=attempt))
            with anyio.move_on_after(4):
                while True:
                    if [i.name for i in (await lens.folder(folder)).items] == names:
                        return
                    await anyio.sleep(0.1)


async def test_watch_follows_images_copied_into_a_local_pointers_target(tmp_path: Path) -> None:
    """An image copied into a local pointer's target appears in the pointer folder, as one
    copied into the gallery itself does."""
    gallery, target = tmp_path / "gallery", tmp_path / "target"
    write(target / "sub" / "old.jpg", jpeg_bytes(32, 24))
    config = {"version": 1, "kind": "pointer", "target": {"type": "local", "path": str(target)}}
    write(gallery / "ext" / ".lenscat.folder.json", orjson.dumps(config))
    settings = Settings(cpu_concurrency=2, pointer_roots=(str(target),))
    seen: list[Wave] = []
    async with Lenslet(str(gallery), settings) as lens:
        await lens.index()  # follows the pointer
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: lens.watch(stop=stop, on_wave=seen.append, debounce_ms=200))
            await _until_listed(lens, "ext/sub", ["new.jpg", "old.jpg"], target / "sub" / "new.jpg")
            stop.set()
        assert any("ext/sub" in wave.folders for wave in seen), seen
        assert [p.path for p in await lens.search("new")] == ["ext/sub/new.jpg"]


async def test_a_pointer_targets_outage_does_not_stop_the_gallerys_watch(
    tmp_path: Path, s3: S3
) -> None:
    """An S3 pointer whose endpoint goes down: its watch logs and tries again later; the
    gallery's own watch goes on (an image copied in still appears)."""
    parts = urlsplit(s3.endpoint)
    assert parts.hostname is not None
    assert parts.port is not None
    proxy = Proxy((parts.hostname, parts.port))
    proxy.start()
    gallery = tmp_path / "gallery"
    s3.put("photos/x.jpg", jpeg_bytes(32, 24))
    target = {"type": "s3", "bucket": s3.bucket, "prefix": "photos"}
    write(
        gallery / "cloud" / ".lenscat.folder.json",
        orjson.dumps({"kind": "pointer", "target": target}),
    )
    write(gallery / "here" / "a.jpg", jpeg_bytes(32, 24))
    one_attempt = {"config_kwargs": {"retries": {"max_attempts": 1}}}
    settings = Settings(
        cpu_concurrency=2, watch_interval=0.3, storage_options={"s3": one_attempt}
    ).with_s3(endpoint_url=proxy.url)
    try:
        async with Lenslet(str(gallery), settings) as lens:
            await lens.index()
            stop = anyio.Event()
            async with anyio.create_task_group() as tg:
                ready = anyio.Event()
                tg.start_soon(lambda: lens.watch(stop=stop, debounce_ms=200, ready=ready))
                await ready.wait()
                proxy.stop()  # the pointer's S3 is down
                await anyio.sleep(1.0)  # its poll fails, more than once
                await _until_listed(lens, "here", ["a.jpg", "b.jpg"], gallery / "here" / "b.jpg")
                stop.set()
    finally:
        proxy.stop()
