from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import orjson
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from lenslet_core import ItemEntry, Lenslet, RollupItem, Settings, Storage
from lenslet_core.local import LocalBackend
from lenslet_core.rollup import ITEM_FIELDS, Rollup, decode_rollup, encode_rollup
from tests.conftest import Requests
from tests.imagegen import jpeg_bytes, make_tree, png_bytes, write

pytestmark = pytest.mark.anyio

#: Index runs here leave thumbnails alone: the rollup does not depend on them.
FAST = Settings(cpu_concurrency=2, thumbnails=False)
DERIVED = ("_index.json", "_rollup.json", "_health.json")


def rollup_file(root: Path) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads((root / "_rollup.json").read_bytes())
    return document


def rollup_items(root: Path) -> dict[str, tuple[list[str], str]]:
    return {i["path"]: (i["tags"], i["notes"]) for i in rollup_file(root)["items"]}


def sidecar(root: Path, image: str, tags: list[str], notes: str = "") -> Path:
    return write(root / f"{image}.json", orjson.dumps({"v": 1, "tags": tags, "notes": notes}))


def sidecar_reads(requests: Requests) -> list[str]:
    return sorted(
        p
        for op, p in requests.log
        if op == "read" and p.endswith(".json") and not p.endswith(DERIVED)
    )


def age(root: Path, seconds: float = 3600) -> None:
    """Date every sidecar back, as if written long before the last index run."""
    then = time.time() - seconds
    for path in root.rglob("*.json"):
        if path.name not in DERIVED:
            os.utime(path, (then, then))


async def test_index_writes_every_image_with_its_tags_and_notes(gallery: Path) -> None:
    made = make_tree(gallery, folders=3, per_folder=3)
    sidecar(gallery, made[0], ["Sea", "dusk"], "first light")
    sidecar(gallery, made[4], ["forest"])
    write(gallery / "album0" / "readme.txt", b"not an image")
    async with Lenslet(str(gallery), FAST) as lens:
        await lens.index()
    document = rollup_file(gallery)
    assert document["v"] == 1
    assert document["generatedAt"].endswith("Z")
    items = rollup_items(gallery)
    assert sorted(items) == sorted(made)
    assert [i["path"] for i in document["items"]] == sorted(made)
    assert items[made[0]] == (["Sea", "dusk"], "first light")
    assert items[made[4]] == (["forest"], "")
    assert items[made[1]] == ([], "")
    assert {i["name"] for i in document["items"]} == {p.rsplit("/", 1)[-1] for p in made}


async def test_an_edit_is_searchable_at_once_and_saved_on_exit(gallery: Path) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    write(gallery / "a" / "y.png", png_bytes())
    async with Lenslet(str(gallery), FAST) as lens:
        await lens.index()
        assert await lens.search("volcano") == []
        await lens.update_item("a/x.jpg", {"tags": ["Volcano"], "notes": "smoke"})
        assert await lens.search("volcano") == [
            RollupItem("a/x.jpg", "x.jpg", ("Volcano",), "smoke")
        ]
        assert [i.path for i in await lens.search("SMOKE")] == ["a/x.jpg"]
    assert rollup_items(gallery)["a/x.jpg"] == (["Volcano"], "smoke")


async def test_an_edit_before_any_search_or_index_is_searchable_and_saved(gallery: Path) -> None:
    # A server started after `lenslet index` takes an edit before its first search.
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    async with Lenslet(str(gallery), FAST) as lens:
        await lens.index()
    async with Lenslet(str(gallery), FAST) as lens:
        await lens.update_item("a/x.jpg", {"tags": ["volcano"]})
        found = await lens.search("volcano")
    assert [i.path for i in found] == ["a/x.jpg"]
    assert rollup_items(gallery)["a/x.jpg"] == (["volcano"], "")


async def test_quick_edits_are_coalesced_into_few_writes(gallery: Path, requests: Requests) -> None:
    for n in range(20):
        write(gallery / f"p{n:02d}.jpg", jpeg_bytes(16, 16, seed=n))
    async with Lenslet(str(gallery), FAST, observer=requests) as lens:
        await lens.index()
        requests.clear()
        for n in range(20):
            await lens.update_item(f"p{n:02d}.jpg", {"tags": [f"tag{n}"]})
        assert len(await lens.search("tag", limit=50)) == 20
    assert requests.count("write", "_rollup.json") <= 2
    assert requests.count("write", ".jpg.json") == 20
    items = rollup_items(gallery)
    assert all(items[f"p{n:02d}.jpg"] == ([f"tag{n}"], "") for n in range(20))


async def test_index_reads_only_sidecars_changed_since_the_last_run(
    gallery: Path, requests: Requests
) -> None:
    made = make_tree(gallery, folders=3, per_folder=2)
    for n, image in enumerate(made):
        sidecar(gallery, image, [f"t{n}"])
    async with Lenslet(str(gallery), FAST) as lens:
        await lens.index()  # writes EXIF basics into the sidecars, and knows their new stamps
    async with Lenslet(str(gallery), FAST, observer=requests) as lens:
        await lens.index()
    assert sidecar_reads(requests) == []  # what the first run wrote is not news
    requests.clear()
    sidecar(gallery, made[3], ["edited"], "by hand")  # a new mtime, after the run
    async with Lenslet(str(gallery), FAST, observer=requests) as lens:
        await lens.index()
        assert [i.path for i in await lens.search("edited")] == [made[3]]
    # Read once, for the manifest's star; the rollup takes its tags from that same read (made
    # after the listing, and the run did not rewrite it). No other sidecar is read.
    assert sidecar_reads(requests) == [f"{made[3]}.json"]
    items = rollup_items(gallery)
    assert items[made[3]] == (["edited"], "by hand")
    assert items[made[0]] == (["t0"], "")


async def test_an_unchanged_tree_reads_no_sidecar(gallery: Path, requests: Requests) -> None:
    made = make_tree(gallery, folders=2, per_folder=2)
    for image in made:
        sidecar(gallery, image, ["x"])
    async with Lenslet(str(gallery), FAST) as lens:
        await lens.index()
        await lens.index()  # reads the sidecars the first run gave their EXIF basics
    async with Lenslet(str(gallery), FAST, observer=requests) as lens:
        await lens.index()
    assert sidecar_reads(requests) == []
    assert requests.count("write", "_rollup.json") == 0


async def test_each_folder_keeps_the_listing_its_images_came_from(gallery: Path) -> None:
    made = make_tree(gallery, folders=2, per_folder=2)
    sidecar(gallery, made[0], ["x"])
    async with Lenslet(str(gallery), FAST) as lens:
        await lens.index()
        await lens.index()
    signed = rollup_file(gallery)["folders"]
    folders = sorted({image.rpartition("/")[0] for image in made})
    assert sorted(signed) == ["", *folders]
    async with Lenslet(str(gallery), FAST) as lens:
        await lens.update_item(made[2], {"tags": ["through-lenslet"]})
    # The edit's sidecar is in its folder's listing now: that folder's signature is no longer
    # the one the rollup kept (dropped, or taken again from the new listing).
    after = rollup_file(gallery)["folders"]
    edited = made[2].rpartition("/")[0]
    assert after.get(edited) != signed[edited]
    assert {f: s for f, s in after.items() if f != edited} == {
        f: s for f, s in signed.items() if f != edited
    }
    async with Lenslet(str(gallery), FAST) as lens:
        await lens.index()
        assert [i.path for i in await lens.search("through-lenslet")] == [made[2]]
    assert sorted(rollup_file(gallery)["folders"]) == ["", *folders]


async def test_a_sidecar_copied_in_with_an_older_mtime_is_read(gallery: Path) -> None:
    """rsync -a and cp -p keep a copy's mtime: older than the last run, yet news."""
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    sidecar(gallery, "a/x.jpg", ["old"])
    async with Lenslet(str(gallery), FAST) as lens:
        await lens.index()
        await lens.index()
    sidecar(gallery, "a/x.jpg", ["from-laptop"], "synced")
    age(gallery, seconds=86_400)
    async with Lenslet(str(gallery), FAST) as lens:
        await lens.index()
        assert [i.path for i in await lens.search("from-laptop")] == ["a/x.jpg"]
    assert rollup_items(gallery)["a/x.jpg"] == (["from-laptop"], "synced")


async def test_a_deleted_image_leaves_the_rollup(gallery: Path) -> None:
    made = make_tree(gallery, folders=1, per_folder=3)
    async with Lenslet(str(gallery), FAST) as lens:
        await lens.index()
        (gallery / made[1]).unlink()
        await lens.index()
        assert [i.path for i in await lens.search("img")] == [made[0], made[2]]
    assert sorted(rollup_items(gallery)) == [made[0], made[2]]


async def test_a_deleted_folder_is_pruned_with_everything_below_it(gallery: Path) -> None:
    made = make_tree(gallery, folders=4, per_folder=2)  # album0, album0/nested1, album2, ...
    async with Lenslet(str(gallery), FAST) as lens:
        await lens.index()
    shutil.rmtree(gallery / "album0")
    async with Lenslet(str(gallery), FAST) as lens:
        await lens.index()
        assert all(not i.path.startswith("album0/") for i in await lens.search("img"))
    kept = sorted(p for p in made if not p.startswith("album0/"))
    assert kept
    assert sorted(rollup_items(gallery)) == kept


async def test_a_malformed_rollup_is_rebuilt(gallery: Path) -> None:
    made = make_tree(gallery, folders=2, per_folder=2)
    sidecar(gallery, made[0], ["kept"])
    async with Lenslet(str(gallery), FAST) as lens:
        await lens.index()
    (gallery / "_rollup.json").write_bytes(b'{"v": 1, "items": [{"path": ')
    async with Lenslet(str(gallery), FAST) as lens:
        assert await lens.search("kept") == []  # unreadable: empty until the next run
        await lens.index()
        assert [i.path for i in await lens.search("kept")] == [made[0]]
    items = rollup_items(gallery)
    assert sorted(items) == sorted(made)
    assert items[made[0]] == (["kept"], "")


@pytest.mark.parametrize(
    "document",
    [
        {"v": 2, "generatedAt": "2030-01-01T00:00:00.000Z", "items": [], "shards": 4},
        {"v": 1, "items": [{"path": "a.jpg", "name": "a.jpg", "tags": "not-a-list"}]},
        [1, 2, 3],
    ],
    ids=["newer-version", "wrong-shape", "not-an-object"],
)
async def test_an_unreadable_rollup_is_derived_data_and_rebuilt(
    gallery: Path, document: object
) -> None:
    made = make_tree(gallery, folders=1, per_folder=2)
    sidecar(gallery, made[1], ["found"])
    (gallery / "_rollup.json").write_bytes(orjson.dumps(document))
    async with Lenslet(str(gallery), FAST) as lens:
        assert await lens.search("found") == []
        report = await lens.index()
        assert [i.path for i in await lens.search("found")] == [made[1]]
    assert report.skipped == []
    stored = rollup_file(gallery)
    assert stored["v"] == 1
    assert sorted(rollup_items(gallery)) == sorted(made)


@pytest.fixture(params=["local", "memory"])
def storages(request: pytest.FixtureRequest, gallery: Path) -> tuple[Storage, Storage]:
    """Two storages on one root, as two processes would have."""
    if request.param == "local":
        return Storage.open(str(gallery)), Storage.open(str(gallery))
    request.getfixturevalue("memory_fs")  # empties the process-global memory store
    MemoryFileSystem().makedirs("/g", exist_ok=True)
    return Storage.of(MemoryFileSystem(), "/g"), Storage.of(MemoryFileSystem(), "/g")


def dirty(rollup: Rollup) -> bool:
    return rollup.dirty


def tagged(path: str, *tags: str) -> RollupItem:
    return RollupItem(path, path.rsplit("/", 1)[-1], tags)


async def test_two_writers_keep_each_others_changes(storages: tuple[Storage, Storage]) -> None:
    first_storage, second_storage = storages
    seed = Rollup(first_storage)
    await seed.load()
    for path in ("a/x.jpg", "a/y.jpg", "b/z.jpg"):
        seed.set_item(tagged(path))
    assert await seed.save(basis=1_000_000.0)

    first, second = Rollup(first_storage), Rollup(second_storage)
    await first.load()
    await second.load()
    first.set_item(tagged("a/x.jpg", "mine"))
    first.set_item(tagged("c/new.jpg", "added"))
    second.set_item(tagged("a/y.jpg", "theirs"))
    second.remove("b/z.jpg")
    assert await first.save()
    assert await second.save()  # first wrote since second read: merged, not lost
    assert not second.dirty

    reader = Rollup(first_storage)
    await reader.load()
    assert everything(reader) == [
        tagged("a/x.jpg", "mine"),
        tagged("a/y.jpg", "theirs"),
        tagged("c/new.jpg", "added"),
    ]
    assert reader.basis == 1_000_000.0

    await first.refresh()  # first sees second's changes too
    assert everything(first) == everything(reader)


async def test_refresh_keeps_unsaved_changes_on_top(storages: tuple[Storage, Storage]) -> None:
    first_storage, second_storage = storages
    first, second = Rollup(first_storage), Rollup(second_storage)
    await first.load()
    await second.load()
    second.set_item(tagged("a/x.jpg", "theirs"))
    await second.save()
    first.set_item(tagged("a/x.jpg", "mine"))
    first.set_item(tagged("b/y.jpg"))
    version = first.version
    await first.refresh()
    assert first.version > version
    assert everything(first) == [tagged("a/x.jpg", "mine"), tagged("b/y.jpg")]
    assert dirty(first)
    assert await first.save()
    assert not dirty(first)
    await second.refresh()
    assert everything(second) == everything(first)


async def test_saving_an_unchanged_rollup_writes_nothing(gallery: Path, requests: Requests) -> None:
    storage = Storage.open(str(gallery), observer=requests)
    rollup = Rollup(storage)
    await rollup.load()
    assert rollup.loaded
    assert len(rollup) == 0
    assert await rollup.save()  # no file yet: an empty rollup is written
    assert not await rollup.save()
    rollup.set_item(tagged("x.jpg"))
    rollup.set_item(tagged("x.jpg"))  # the same item again is no change
    assert dirty(rollup)
    assert await rollup.save()
    rollup.remove("missing.jpg")  # not there: no change
    assert not dirty(rollup)
    assert requests.count("write", "_rollup.json") == 2


async def test_search_sees_what_another_process_saved(gallery: Path) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    write(gallery / "y.jpg", jpeg_bytes(seed=1))
    settings = FAST.replace(manifest_ttl=0)
    async with Lenslet(str(gallery), settings) as server:
        await server.index()
        await server.update_item("x.jpg", {"tags": ["mine"]})
        async with Lenslet(str(gallery), settings) as other:
            assert await other.search("theirs") == []
            await other.update_item("y.jpg", {"tags": ["theirs"]})
        # the other process has exited, its edit saved; the server's own edit is not lost
        assert [i.path for i in await server.search("theirs")] == ["y.jpg"]
        assert [i.path for i in await server.search("mine")] == ["x.jpg"]
    items = rollup_items(gallery)
    assert items["x.jpg"] == (["mine"], "")
    assert items["y.jpg"] == (["theirs"], "")


class GatedStorage(Storage):
    """Local storage whose writes of ``_rollup.json`` wait until the test opens the gate."""

    def __init__(self, root: Path) -> None:
        super().__init__(LocalBackend(str(root)))
        self.writing = anyio.Event()
        self.gate = anyio.Event()

    async def write_if(self, path: str, data: bytes, *, expected: str | None) -> str:
        if path == "_rollup.json" and not self.gate.is_set():
            self.writing.set()
            await self.gate.wait()
        return await super().write_if(path, data, expected=expected)


async def test_an_edit_made_while_the_rollup_is_being_written_is_saved_too(
    gallery: Path,
) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    write(gallery / "y.jpg", jpeg_bytes(seed=1))
    async with Lenslet(str(gallery), FAST) as lens:
        await lens.index()
    storage = GatedStorage(gallery)
    async with Lenslet(storage, FAST) as lens:
        await lens.search("x")  # loads the rollup; no save yet, so the first one is at once
        await lens.update_item("x.jpg", {"tags": ["first"]})
        await storage.writing.wait()  # the rollup job is writing "first"
        await lens.update_item("y.jpg", {"tags": ["second"]})
        storage.gate.set()
        assert [i.path for i in await lens.search("second")] == ["y.jpg"]
    items = rollup_items(gallery)
    assert items["x.jpg"] == (["first"], "")
    assert items["y.jpg"] == (["second"], "")


T = TypeVar("T")


def everything(rollup: Rollup) -> list[RollupItem]:
    """Every image of a rollup in memory, by path."""
    return sorted((item for part in rollup.parts() for item in part), key=lambda i: i.path)


class SlowReadStorage(Storage):
    """Local storage whose reads of ``_rollup.json`` wait until the test opens the gate."""

    def __init__(self, root: Path) -> None:
        super().__init__(LocalBackend(str(root)))
        self.reading = anyio.Event()
        self.gate = anyio.Event()

    async def read_into(self, path: str, consume: Callable[[bytes], T]) -> T:
        if path == "_rollup.json" and not self.gate.is_set():
            self.reading.set()
            await self.gate.wait()
        return await super().read_into(path, consume)


async def test_an_edit_made_while_the_rollup_is_read_again_is_kept(gallery: Path) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    async with Lenslet(str(gallery), FAST) as lens:
        await lens.index()
    storage = SlowReadStorage(gallery)
    storage.gate.set()
    rollup = Rollup(storage)
    await rollup.load()
    storage.gate = anyio.Event()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(rollup.load)  # another process saved: read it again
            await storage.reading.wait()
            rollup.edit(RollupItem("x.jpg", "x.jpg", ("sunset",)))
            storage.gate.set()
    assert [i.tags for i in everything(rollup)] == [("sunset",)]
    assert await rollup.save()
    assert rollup_items(gallery)["x.jpg"] == (["sunset"], "")


async def test_a_folder_listed_before_an_edit_does_not_undo_it(gallery: Path) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    async with Lenslet(str(gallery), FAST) as lens:
        await lens.index()
    rollup = Rollup(Storage.open(str(gallery)))
    await rollup.load()
    listed_at = time.time() - 5  # the listing an index run took before the edit
    entries = await rollup.storage.list("a")  # no sidecar in it
    rollup.edit(RollupItem("a/x.jpg", "x.jpg", ("beach",)))
    manifest = orjson.loads((gallery / "a" / "_index.json").read_bytes())
    items = [ItemEntry.from_json(i) for i in manifest["items"]]
    await rollup.update_folder("a", entries, items, listed_at)
    assert [i.tags for i in everything(rollup)] == [("beach",)]
    # A listing taken after the edit is believed again.
    await rollup.update_folder("a", entries, items, time.time() + 1)
    assert [i.tags for i in everything(rollup)] == [()]


async def test_a_folder_listed_before_an_image_was_moved_in_does_not_drop_it(
    gallery: Path,
) -> None:
    write(gallery / "trash" / "old.jpg", jpeg_bytes())
    async with Lenslet(str(gallery), FAST) as lens:
        await lens.index()
    rollup = Rollup(Storage.open(str(gallery)))
    await rollup.load()
    listed_at = time.time() - 5  # a listing of trash/ taken before the move
    entries = await rollup.storage.list("trash")
    manifest = orjson.loads((gallery / "trash" / "_index.json").read_bytes())
    items = [ItemEntry.from_json(i) for i in manifest["items"]]
    rollup.edit(RollupItem("trash/moved.jpg", "moved.jpg", ("kept",)))  # moved in, tags and all
    await rollup.update_folder("trash", entries, items, listed_at)
    assert sorted(i.path for i in everything(rollup)) == ["trash/moved.jpg", "trash/old.jpg"]
    # A listing taken after the move, without it (it moved on): believed.
    await rollup.update_folder("trash", entries, items, time.time() + 1)
    assert [i.path for i in everything(rollup)] == ["trash/old.jpg"]


async def test_a_folder_the_run_cannot_read_keeps_its_images(gallery: Path) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    sidecar(gallery, "a/x.jpg", ["kept"])
    async with Lenslet(str(gallery), FAST) as lens:
        await lens.index()
        # A newer lenslet wrote this folder's manifest: this one must not touch it.
        write(gallery / "a" / "_index.json", b'{"v": 2, "items": []}')
        report = await lens.index()
        assert [(s.path, s.code) for s in report.skipped] == [("a", "unsupported_version")]
        assert [i.path for i in await lens.search("kept")] == ["a/x.jpg"]
    assert rollup_items(gallery)["a/x.jpg"] == (["kept"], "")


def test_a_rollup_from_before_an_item_field_is_read_without_its_shortcuts() -> None:
    item = RollupItem("a/x.jpg", "x.jpg", ("sea",), "", stamp=(10, 1.5))
    current = encode_rollup([item], "2026-01-01T00:00:00.000Z", {"a": "sig"})
    assert decode_rollup(current) == ([item], "2026-01-01T00:00:00.000Z", {"a": "sig"})
    assert decode_rollup(current)[0][0].stamp == (10, 1.5)
    document = orjson.loads(current)
    document["itemFields"] = ITEM_FIELDS - 1  # as a lenslet before the newest field wrote it
    items, basis, signatures = decode_rollup(orjson.dumps(document))
    assert [(i.path, i.tags) for i in items] == [("a/x.jpg", ("sea",))]  # still searchable
    assert items[0].stamp is None  # ... but its sidecars are all read again
    assert (basis, signatures) == ("", {})
