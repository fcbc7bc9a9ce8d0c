"""Answers kept while their folder is unchanged: real folders on local disk, changed by this
test the way another process would (no call through lenslet)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lenslet_core import Lenslet, NotFound
from lenslet_core.kept import Kept
from lenslet_core.storage import Storage
from tests.conftest import Requests
from tests.imagegen import jpeg_bytes, write

pytestmark = pytest.mark.anyio


async def test_an_answer_is_kept_until_its_folder_changes(gallery: Path) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    write(gallery / "b" / "y.jpg", jpeg_bytes())
    kept: Kept[str] = Kept(Storage.open(str(gallery)))
    for folder, key in (("a", "a/x.jpg"), ("b", "b/y.jpg")):
        stamp = await kept.stamp(folder)
        assert stamp is not None
        kept.put(folder, key, f"answer {key}", stamp)
    assert kept.get("a", "a/x.jpg") == "answer a/x.jpg"
    (gallery / "a" / "x.jpg.json").write_text("{}")  # another process writes a sidecar
    assert kept.get("a", "a/x.jpg") is None
    assert kept.get("b", "b/y.jpg") == "answer b/y.jpg"  # another folder: still good
    kept.close()
    assert kept.get("b", "b/y.jpg") is None


async def test_a_change_between_stamp_and_put_keeps_nothing(gallery: Path) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    kept: Kept[str] = Kept(Storage.open(str(gallery)))
    stamp = await kept.stamp("a")
    assert stamp is not None
    (gallery / "a" / "x.jpg").write_bytes(jpeg_bytes(8, 8))  # while the answer was read
    kept.put("a", "a/x.jpg", "read before the change", stamp)
    assert kept.get("a", "a/x.jpg") is None


async def test_a_folder_renamed_above_drops_what_is_below(gallery: Path) -> None:
    write(gallery / "trips" / "2025" / "x.jpg", jpeg_bytes())
    kept: Kept[str] = Kept(Storage.open(str(gallery)))
    stamp = await kept.stamp("trips/2025")
    assert stamp is not None
    kept.put("trips/2025", "trips/2025/x.jpg", "there", stamp)
    os.rename(gallery / "trips", gallery / "elsewhere")
    assert kept.get("trips/2025", "trips/2025/x.jpg") is None


async def test_nothing_is_kept_without_a_local_root(gallery: Path) -> None:
    kept: Kept[str] = Kept(Storage.open("memory://nothing-kept"))
    assert await kept.stamp("") is None
    assert kept.get("", "x.jpg") is None
    proc: Kept[str] = Kept(Storage.open("/proc"))
    assert await proc.stamp("") is None  # the kernel cannot tell its changes


async def test_an_item_asked_again_costs_no_storage_call_until_its_sidecar_changes(
    gallery: Path, requests: Requests
) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    write(gallery / "a" / "x.jpg.json", b'{"tags": ["sea"]}')
    async with Lenslet(str(gallery), observer=requests) as lens:
        first = await lens.item("a/x.jpg")
        requests.clear()
        assert await lens.item("a/x.jpg") is first
        assert requests.log == []
        # Another tool rewrites the sidecar: the very next answer has it.
        (gallery / "a" / "x.jpg.json").write_text('{"tags": ["sea", "sand"]}')
        assert (await lens.item("a/x.jpg")).sidecar.tags == ("sea", "sand")
        # An edit through this facade too.
        written = await lens.update_item("a/x.jpg", {"tags": ["dune"]})
        assert "dune" in written.sidecar.tags
        assert await lens.item("a/x.jpg") == written
        # The image deleted by hand: not an item any more.
        (gallery / "a" / "x.jpg").unlink()
        with pytest.raises(NotFound):
            await lens.item("a/x.jpg")
