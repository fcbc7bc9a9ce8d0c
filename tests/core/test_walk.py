from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import anyio
import pytest

from lenslet_core import Lenslet, Settings
from lenslet_core.errors import NotFound
from lenslet_core.index_report import IndexProgress, IndexReport
from lenslet_core.local import LocalBackend
from lenslet_core.signature import signed_rows
from lenslet_core.storage import Entry, Storage
from lenslet_core.walk import ListedFolder, walk
from tests.imagegen import jpeg_bytes, write

pytestmark = pytest.mark.anyio


class Held(Storage):
    """A real local storage whose listing of one folder (if ``held`` names one) waits until it
    is let go, and that notes the folders it listed."""

    def __init__(self, root: Path, held: str | None = None) -> None:
        super().__init__(LocalBackend(str(root)))
        self.held, self.go = held, anyio.Event()
        self.listed: list[str] = []

    async def list_with_contents(self, path: str, *args: Any, **kwargs: Any) -> Any:
        if path == self.held:
            await self.go.wait()
        result = await super().list_with_contents(path, *args, **kwargs)
        self.listed.append(path)
        return result

    async def list(self, path: str) -> list[Entry]:
        if path == self.held:
            await self.go.wait()
        entries = await super().list(path)
        self.listed.append(path)
        return entries


def tree(root: Path) -> None:
    for name in ["a/one.jpg", "a/deep/two.jpg", "a/deep/three.jpg", "b/four.jpg", "top.jpg"]:
        write(root / name, jpeg_bytes(16, 12))


async def run_walk(storage: Storage, ready: Any, *, recursive: bool = True) -> IndexReport:
    report = IndexReport(root="r", path="", started_at="")
    await walk(storage, "", recursive, report, IndexProgress(), lambda: None, ready)
    return report


async def test_each_folder_is_handed_on_once_after_its_sub_folders_are_listed(
    tmp_path: Path,
) -> None:
    tree(tmp_path)
    storage = Held(tmp_path)
    handed: list[tuple[ListedFolder, list[str]]] = []
    await run_walk(storage, lambda folder: handed.append((folder, list(storage.listed))))
    by_path = {folder.path: (folder, listed) for folder, listed in handed}
    assert sorted(by_path) == ["", "a", "a/deep", "b"]
    assert len(handed) == 4
    for path, (folder, listed) in by_path.items():
        children = [e.name for e in folder.entries if e.kind == "dir"]
        assert all(f"{path}/{c}".lstrip("/") in listed for c in children), path
        assert sorted(folder.child_kinds) == sorted(children)
    assert by_path[""][0].child_kinds == {"a": "branch", "b": "leaf-real"}
    assert by_path["a"][0].images == 1
    assert by_path["a/deep"][0].images == 2


async def test_a_folder_is_handed_on_while_another_is_still_being_listed(tmp_path: Path) -> None:
    tree(tmp_path)
    storage = Held(tmp_path, held="a/deep")
    handed: list[str] = []

    def ready(folder: ListedFolder) -> None:
        handed.append(folder.path)
        if folder.path == "b":  # handed on before the walk is over: let the rest go
            assert "a/deep" not in storage.listed
            storage.go.set()

    with anyio.fail_after(10):
        await run_walk(storage, ready)
    # "a" waits for its sub-folder's listing, not for its build.
    assert handed[0] == "b"
    assert sorted(handed) == ["", "a", "a/deep", "b"]


async def test_a_sub_folder_that_cannot_be_listed_is_reported_and_its_parent_still_built(
    tmp_path: Path,
) -> None:
    tree(tmp_path)
    storage = Held(tmp_path)
    handed: list[str] = []

    async def gone_list(path: str, *args: Any, **kwargs: Any) -> Any:
        if path == "b":
            raise NotFound("b is gone", path="b")
        return await Held.list_with_contents(storage, path, *args, **kwargs)

    storage.list_with_contents = gone_list  # type: ignore[method-assign]
    report = await run_walk(storage, lambda folder: handed.append(folder.path))
    assert sorted(handed) == ["", "a", "a/deep"]
    assert [(s.path, s.code) for s in report.skipped] == [("b", "not_found")]


async def test_a_walk_that_does_not_descend_lists_the_sub_folders_for_their_kinds(
    tmp_path: Path,
) -> None:
    tree(tmp_path)
    storage = Held(tmp_path)
    handed: list[ListedFolder] = []
    await run_walk(storage, handed.append, recursive=False)
    assert [f.path for f in handed] == [""]
    assert handed[0].child_kinds == {"a": "branch", "b": "leaf-real"}


async def test_a_start_folder_that_cannot_be_listed_raises_and_hands_on_nothing(
    tmp_path: Path,
) -> None:
    storage = Storage(LocalBackend(str(tmp_path)))
    handed: list[ListedFolder] = []
    report = IndexReport(root="r", path="nope", started_at="")
    with pytest.raises(NotFound):
        await walk(storage, "nope", True, report, IndexProgress(), lambda: None, handed.append)
    assert handed == []
    assert report.skipped == []


async def test_the_progress_totals_grow_with_the_walk_and_are_final_once_listed(
    tmp_path: Path,
) -> None:
    tree(tmp_path)
    storage = Storage(LocalBackend(str(tmp_path)))
    progress = IndexProgress()
    seen: list[tuple[bool, int]] = []
    report = IndexReport(root="r", path="", started_at="")

    def ready(folder: ListedFolder) -> None:
        seen.append((progress.listed, progress.images_total))

    await walk(storage, "", True, report, progress, lambda: None, ready)
    assert [listed for listed, _ in seen] == [False] * 4
    assert sorted(total for _, total in seen)[0] < 5
    assert progress.listed
    assert (progress.images_total, progress.folders_total) == (5, 4)


async def test_a_folder_with_a_manifest_comes_with_its_signed_rows(tmp_path: Path) -> None:
    tree(tmp_path)
    async with Lenslet(str(tmp_path), Settings()) as lens:
        assert (await lens.index()).ok
    write(tmp_path / "c" / "five.jpg", jpeg_bytes(16, 12))  # not indexed yet: no manifest
    handed: dict[str, ListedFolder] = {}
    await run_walk(Held(tmp_path), lambda folder: handed.setdefault(folder.path, folder))
    for path in ["", "a", "a/deep", "b"]:
        folder = handed[path]
        assert folder.manifests, path
        # Made in the listing's thread hop, from the same entries the folder carries.
        assert folder.rows == signed_rows(folder.entries), path
    assert handed["c"].rows is None
    handed["a"].relisted(handed["a"].entries[:1])
    assert handed["a"].rows is None  # gone with the entries it was made of


async def test_on_s3_a_folders_manifest_is_read_while_its_sub_folders_are_listed(
    s3_endpoint: str,
) -> None:
    # Each a round trip of its own: read after the listing and before the sub-folders'
    # listings, a tree's every level would cost two; beside them, one.
    import uuid

    from lenslet_core.s3 import storage_options
    from tests.conftest import S3

    slow = S3(s3_endpoint, f"slow-{uuid.uuid4().hex[:20]}")  # every answer held back 0.2 s
    slow.client().create_bucket(Bucket=slow.bucket)
    for key in ["a/one.jpg", "a/b/two.jpg", "a/b/c/three.jpg"]:
        slow.put(f"gallery/{key}", jpeg_bytes(16, 12))
    settings = Settings(cpu_concurrency=2, io_concurrency=8).with_s3(endpoint_url=s3_endpoint)
    async with Lenslet(slow.url(), settings) as lens:
        assert (await lens.index()).ok
    storage = Storage.open(slow.url(), storage_options=storage_options(endpoint_url=s3_endpoint))
    slow.reset()
    handed: dict[str, ListedFolder] = {}
    await run_walk(storage, lambda folder: handed.setdefault(folder.path, folder))
    assert sorted(handed) == ["", "a", "a/b", "a/b/c"]
    for path, folder in handed.items():
        assert list(folder.manifests) == ["_index.json"], path
        assert folder.rows == signed_rows(folder.entries), path
    assert handed["a"].child_kinds == {"b": "branch"}
    # One folder a level: a listing and its parent's manifest read at once, never more.
    assert slow.peak() == 2
    methods = collections.Counter(method for method, _, _ in slow.requests())
    assert methods == {"GET": 8}  # four listings, four manifests
