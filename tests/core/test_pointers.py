"""Pointer folders: a folder with ``.lenscat.folder.json`` serves its target (a local folder or
an S3 prefix) under its own logical path, in all four directions, nested, read-only, and with
loops, refused and broken targets reported instead of followed."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lenslet_core import (
    DocumentError,
    Lenslet,
    PointerBroken,
    PointerLoop,
    PointerRefused,
    ReadOnly,
    Settings,
)
from lenslet_core.pointers import Pointer
from tests.conftest import S3
from tests.imagegen import jpeg_bytes, write

pytestmark = pytest.mark.anyio


def local_pointer(folder: Path, target: Path, **extra: Any) -> None:
    config = {"version": 1, "kind": "pointer", "target": {"type": "local", "path": str(target)}}
    write(folder / ".lenscat.folder.json", orjson.dumps({**config, **extra}))


def s3_pointer(folder: Path, bucket: str, prefix: str, **extra: Any) -> None:
    target = {"type": "s3", "bucket": bucket, "prefix": prefix, "region": "us-east-1"}
    config = {"version": 1, "kind": "pointer", "target": target}
    write(folder / ".lenscat.folder.json", orjson.dumps({**config, **extra}))


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """A folder outside the gallery, with two images."""
    folder = tmp_path / "elsewhere"
    write(folder / "x.jpg", jpeg_bytes(64, 48, seed=1))
    write(folder / "sub" / "y.jpg", jpeg_bytes(64, 48, seed=2))
    return folder


def allowing(*roots: Path, **changes: Any) -> Settings:
    return Settings(cpu_concurrency=2, pointer_roots=tuple(str(r) for r in roots), **changes)


# -- the config ----------------------------------------------------------------------------------

names = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\0/"), min_size=1)


@given(
    st.one_of(
        st.builds(Pointer, st.just("local"), path=names),
        st.builds(
            Pointer,
            st.just("s3"),
            bucket=names,
            prefix=st.text(max_size=20),
            region=st.none() | names,
        ),
    ),
    st.none() | st.text(max_size=10),
    st.booleans(),
)
def test_a_config_reads_back_as_written(pointer: Pointer, label: str | None, ro: bool) -> None:
    pointer = dataclasses.replace(pointer, label=label, readonly=ro)
    assert Pointer.decode(orjson.dumps(pointer.to_json()), what="test") == pointer


scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text()
documents = st.recursive(
    scalars, lambda c: st.lists(c) | st.dictionaries(st.text(max_size=8), c), max_leaves=12
)


@given(documents)
def test_any_other_json_is_a_document_error(value: object) -> None:
    try:
        Pointer.decode(orjson.dumps(value), what="test")
    except DocumentError:
        return
    assert isinstance(value, dict)  # only a real pointer config gets here


# -- local -> local ------------------------------------------------------------------------------


async def test_a_local_pointer_serves_its_target_under_its_own_path(
    gallery: Path, target: Path
) -> None:
    local_pointer(gallery / "p", target, label="Elsewhere")
    write(gallery / "here.jpg", jpeg_bytes(32, 32))
    async with Lenslet(str(gallery), allowing(target)) as lens:
        report = await lens.index()
        assert report.ok, report.skipped
        root = await lens.folder("")
        assert [(d.name, d.kind) for d in root.dirs] == [("p", "leaf-pointer")]
        inside = await lens.folder("p")
        assert [i.name for i in inside.items] == ["x.jpg"]
        assert [(d.name, d.kind) for d in inside.dirs] == [("sub", "leaf-real")]
        assert [i.name for i in (await lens.folder("p/sub")).items] == ["y.jpg"]
        item = await lens.update_item("p/x.jpg", {"tags": ["far"]})
        assert item.sidecar.tags == ("far",)
        thumb = await lens.thumbnail("p/sub/y.jpg")
        assert thumb.data[8:12] == b"WEBP"  # type: ignore[union-attr]
        uploaded = await lens.upload("p/sub", "new.jpg", jpeg_bytes(20, 20, seed=3))
        assert uploaded == "p/sub/new.jpg"
        moved = await lens.move("p/sub/new.jpg", "moved.jpg")  # from the target to the root
        assert moved == "moved.jpg"
        await lens.index()
        found = await lens.search("far")
        assert [i.path for i in found] == ["p/x.jpg"]
    # Everything lenslet keeps for the pointer's images is in the target, nothing in the
    # pointer folder but its config.
    assert sorted(p.name for p in (gallery / "p").iterdir()) == [".lenscat.folder.json"]
    assert (target / "_index.json").exists()
    assert (target / "x.jpg.json").exists()
    assert (target / "x.jpg.thumbnail").exists()
    assert (target / "sub" / "y.jpg.thumbnail").exists()
    assert not (target / "sub" / "new.jpg").exists()
    assert (gallery / "moved.jpg").exists()


async def test_a_deep_path_below_an_unseen_pointer_goes_to_the_target(
    gallery: Path, target: Path
) -> None:
    local_pointer(gallery / "a" / "p", target)
    async with Lenslet(str(gallery), allowing(target)) as lens:
        page = await lens.folder("a/p/sub")  # nothing listed before: found on the way
        assert [i.name for i in page.items] == ["y.jpg"]
        await lens.update_item("a/p/sub/y.jpg", {"tags": ["t"]})
    assert (target / "sub" / "y.jpg.json").exists()
    assert not (gallery / "a" / "p" / "sub").exists()


async def test_nested_pointers_are_followed(gallery: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    write(second / "deep.jpg", jpeg_bytes(16, 16))
    local_pointer(first / "q", second)
    write(first / "top.jpg", jpeg_bytes(16, 16, seed=4))
    local_pointer(gallery / "p", first)
    async with Lenslet(str(gallery), allowing(first, second)) as lens:
        await lens.index()
        assert [i.name for i in (await lens.folder("p/q")).items] == ["deep.jpg"]
        assert [(d.name, d.kind) for d in (await lens.folder("p")).dirs] == [("q", "leaf-pointer")]
    assert (second / "deep.jpg.thumbnail").exists()


async def test_a_read_only_pointer_refuses_writes_and_caches_thumbnails(
    gallery: Path, target: Path, tmp_path: Path
) -> None:
    local_pointer(gallery / "p", target, readonly=True)
    cache = tmp_path / "cache"
    before = sorted(p.name for p in target.rglob("*"))
    async with Lenslet(str(gallery), allowing(target, thumb_cache=str(cache))) as lens:
        report = await lens.index()
        assert report.ok, report.skipped
        assert [i.name for i in (await lens.folder("p")).items] == ["x.jpg"]
        for write_call in (
            lambda: lens.update_item("p/x.jpg", {"tags": ["no"]}),
            lambda: lens.upload("p", "new.jpg", jpeg_bytes(8, 8)),
            lambda: lens.move("p/x.jpg", "x.jpg"),
            lambda: lens.delete(["p/x.jpg"]),
        ):
            with pytest.raises(ReadOnly):
                await write_call()
        thumb = await lens.thumbnail("p/x.jpg")
        assert thumb.data[8:12] == b"WEBP"  # type: ignore[union-attr]
    assert sorted(p.name for p in target.rglob("*")) == before  # untouched
    cached = sorted(
        p.relative_to(cache).as_posix().split("/", 1)[1] for p in cache.rglob("*.thumbnail")
    )
    assert cached == ["p/sub/y.jpg.thumbnail", "p/x.jpg.thumbnail"]  # one folder per root


# -- what is not followed ------------------------------------------------------------------------


async def test_a_pointer_to_its_own_ancestor_is_a_loop(gallery: Path) -> None:
    local_pointer(gallery / "a" / "p", gallery)
    write(gallery / "a" / "x.jpg", jpeg_bytes(8, 8))
    async with Lenslet(str(gallery), allowing(gallery)) as lens:
        report = await lens.index()
        assert [s.code for s in report.skipped] == ["pointer_loop"]
        with pytest.raises(PointerLoop):
            await lens.folder("a/p")
        assert [(d.name, d.kind) for d in (await lens.folder("a")).dirs] == [("p", "leaf-pointer")]
        health = await lens.health_report()
    assert [p["path"] for p in health["pointers"]["broken"]] == ["a/p"]
    assert health["counts"]["brokenPointers"] == 1


async def test_two_pointers_at_each_other_are_a_loop(gallery: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    local_pointer(one, two)  # a root that is itself a pointer chains on
    local_pointer(two, one)
    local_pointer(gallery / "p", one)
    async with Lenslet(str(gallery), allowing(one, two)) as lens:
        with pytest.raises(PointerLoop):
            await lens.folder("p")
        report = await lens.index()
    assert [(s.path, s.code) for s in report.skipped] == [("p", "pointer_loop")]


async def test_a_target_outside_the_allowed_roots_is_refused(gallery: Path, target: Path) -> None:
    local_pointer(gallery / "p", target)
    async with Lenslet(str(gallery), allowing()) as lens:
        with pytest.raises(PointerRefused):
            await lens.folder("p")
        report = await lens.index()
    assert [s.code for s in report.skipped] == ["pointer_refused"]
    assert not (target / "_index.json").exists()


async def test_missing_targets_and_bad_configs_are_broken_not_fatal(
    gallery: Path, tmp_path: Path
) -> None:
    local_pointer(gallery / "gone", tmp_path / "nowhere")
    write(gallery / "bad" / ".lenscat.folder.json", b"{not json")
    write(gallery / "ok.jpg", jpeg_bytes(8, 8))
    async with Lenslet(str(gallery), allowing(tmp_path)) as lens:
        report = await lens.index()
        assert report.items == 1
        root = await lens.folder("")
        assert [(d.name, d.kind) for d in root.dirs] == [
            ("bad", "leaf-pointer"),
            ("gone", "leaf-pointer"),
        ]
        with pytest.raises(PointerBroken):
            await lens.folder("gone")
        health = await lens.health_report()
    broken = {p["path"]: p["code"] for p in health["pointers"]["broken"]}
    assert broken == {"bad": "pointer_broken", "gone": "pointer_broken"}


# -- with S3 -------------------------------------------------------------------------------------


async def test_a_local_pointer_to_s3(gallery: Path, s3: S3) -> None:
    s3.put("photos/x.jpg", jpeg_bytes(40, 30, seed=5))
    s3_pointer(gallery / "cloud", s3.bucket, "photos")
    settings = dataclasses.replace(s3.settings, pointer_roots=())
    async with Lenslet(str(gallery), settings) as lens:
        await lens.index()
        assert [i.name for i in (await lens.folder("cloud")).items] == ["x.jpg"]
        await lens.update_item("cloud/x.jpg", {"tags": ["up"]})
    keys = s3.keys("photos/")
    assert "photos/x.jpg.json" in keys
    assert "photos/x.jpg.thumbnail" in keys
    assert "photos/_index.json" in keys


async def test_s3_to_local_and_s3_to_s3(s3: S3, target: Path) -> None:
    s3.put("other/z.jpg", jpeg_bytes(40, 30, seed=6))
    local = {"version": 1, "kind": "pointer", "target": {"type": "local", "path": str(target)}}
    remote = {
        "version": 1,
        "kind": "pointer",
        "target": {"type": "s3", "bucket": s3.bucket, "prefix": "other"},
    }
    s3.put("gallery/disk/.lenscat.folder.json", orjson.dumps(local))
    s3.put("gallery/again/.lenscat.folder.json", orjson.dumps(remote))
    settings = dataclasses.replace(s3.settings, pointer_roots=(str(target),))
    async with Lenslet(s3.url(), settings) as lens:
        report = await lens.index()
        assert report.ok, report.skipped
        assert [i.name for i in (await lens.folder("disk")).items] == ["x.jpg"]
        assert [i.name for i in (await lens.folder("again")).items] == ["z.jpg"]
        kinds = {d.name: d.kind for d in (await lens.folder("")).dirs}
        assert kinds == {"again": "leaf-pointer", "disk": "leaf-pointer"}
    assert (target / "x.jpg.thumbnail").exists()
    assert "other/z.jpg.thumbnail" in s3.keys("other/")


# -- found in review: routing must never fall through to the pointer folder -----------------------


async def test_a_move_into_an_unseen_read_only_pointer_is_refused(
    gallery: Path, target: Path
) -> None:
    local_pointer(gallery / "archive", target, readonly=True)
    write(gallery / "inbox" / "x.jpg", jpeg_bytes(8, 8))
    async with Lenslet(str(gallery), allowing(target)) as lens:
        with pytest.raises(ReadOnly):
            await lens.move("inbox/x.jpg", "archive/x.jpg")
    assert (gallery / "inbox" / "x.jpg").exists()
    assert sorted(p.name for p in (gallery / "archive").iterdir()) == [".lenscat.folder.json"]


async def test_a_broken_pointer_is_followed_afresh_once_its_error_is_old(
    gallery: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lenslet_core.mounts

    monkeypatch.setattr(lenslet_core.mounts, "BROKEN_TTL", 0.0)
    later = tmp_path / "later"
    local_pointer(gallery / "p", later)
    async with Lenslet(str(gallery), allowing(tmp_path)) as lens:
        with pytest.raises(PointerBroken):
            await lens.folder("p")
        write(later / "x.jpg", jpeg_bytes(8, 8))  # the target is back
        await lens.update_item("p/x.jpg", {"tags": ["back"]})
        assert [i.name for i in (await lens.folder("p", refresh=True)).items] == ["x.jpg"]
    assert (later / "x.jpg.json").exists()
    assert sorted(p.name for p in (gallery / "p").iterdir()) == [".lenscat.folder.json"]


async def test_read_only_holds_through_nested_pointers(gallery: Path, tmp_path: Path) -> None:
    outer, inner = tmp_path / "outer", tmp_path / "inner"
    write(inner / "x.jpg", jpeg_bytes(8, 8))
    local_pointer(outer / "q", inner)
    local_pointer(gallery / "p", outer, readonly=True)
    async with Lenslet(str(gallery), allowing(outer, inner)) as lens:
        await lens.folder("p/q")
        with pytest.raises(ReadOnly):
            await lens.update_item("p/q/x.jpg", {"tags": ["no"]})
    assert sorted(p.name for p in inner.iterdir()) == ["x.jpg"]
