"""Moves that a crash cuts short: the image is never separated from its sidecar for good."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from lenslet_core import Lenslet, Settings
from lenslet_core.companions import INTENT_PREFIX
from tests.imagegen import jpeg_bytes, write
from tests.servers import serving

pytestmark = pytest.mark.anyio


class Crash(Exception):
    """The process dies here (raised from a storage observer, at a chosen request)."""


def _age_intents(root: Path) -> list[Path]:
    """Move every intent's mtime back past the grace a live move gets."""
    intents = [p for p in root.rglob(f"{INTENT_PREFIX}*")]
    for intent in intents:
        old = time.time() - 60
        os.utime(intent, (old, old))
    return intents


def _left_intent(root: Path, source: str, target: str) -> None:
    """The intent a move from ``source`` to ``target`` cut short left, past its grace."""
    intent = {"v": 1, "src": source, "dest": target}
    write(root / source.rsplit("/", 1)[0] / f"{INTENT_PREFIX}cut.json", orjson.dumps(intent))
    _age_intents(root)


async def test_a_move_cut_between_image_and_sidecar_is_finished_by_the_next_index(
    gallery: Path,
) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    write(gallery / "a" / "x.jpg.json", b'{"tags": ["mine"]}')
    (gallery / "b").mkdir()

    def crash_at_the_sidecar(op: str, path: str) -> None:
        if op == "write" and path == "b/x.jpg.json":
            raise Crash

    async with Lenslet(
        str(gallery), Settings(cpu_concurrency=2), observer=crash_at_the_sidecar
    ) as lens:
        with pytest.raises(Crash):
            await lens.move("a/x.jpg", "b")
    assert (gallery / "b" / "x.jpg").exists()  # the image went, its sidecar did not
    assert (gallery / "a" / "x.jpg.json").exists()
    assert len(_age_intents(gallery)) == 1
    async with Lenslet(str(gallery), Settings(cpu_concurrency=2)) as lens:
        report = await lens.index()
        item = await lens.item("b/x.jpg")
        health = await lens.health_report()
    assert report.moves_finished == 1
    assert item.sidecar.tags == ("mine",)
    assert not (gallery / "a" / "x.jpg.json").exists()
    assert health["orphanSidecars"] == []
    assert not list(gallery.rglob(f"{INTENT_PREFIX}*"))


@pytest.mark.slow
def test_kill_9_during_concurrent_moves_separates_no_image_from_its_tags(gallery: Path) -> None:
    """The campaign that found splits: a real server moving images back and forth for two
    clients, killed with -9 at random moments, again and again; then one index run."""
    names = [f"img{n}.jpg" for n in range(8)]
    for n, name in enumerate(names):
        write(gallery / "a" / name, jpeg_bytes(32, 24, seed=n))
        write(gallery / "a" / f"{name}.json", orjson.dumps({"tags": [name]}))
    (gallery / "b").mkdir()
    rng = random.Random(7)
    for _ in range(6):
        with serving(str(gallery), "--no-index", "--no-watch") as (proc, url):
            stop = threading.Event()

            def mover(offset: int, stop: threading.Event) -> None:
                with httpx.Client(base_url=url, timeout=5) as http:
                    n = offset
                    while not stop.is_set():
                        name = names[n % len(names)]
                        n += 2
                        for folder, other in (("a", "b"), ("b", "a")):
                            if (gallery / folder / name).exists():
                                try:
                                    http.post(
                                        "/move", json={"src": f"{folder}/{name}", "dest": other}
                                    )
                                except httpx.TransportError:
                                    return  # the server was killed
                                break

            threads = [threading.Thread(target=mover, args=(k, stop)) for k in range(2)]
            for thread in threads:
                thread.start()
            time.sleep(rng.uniform(0.2, 0.8))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            stop.set()
            for thread in threads:
                thread.join(10)
    _age_intents(gallery)
    (gallery / "_health.json").unlink(missing_ok=True)  # written anew when the index is done
    with serving(str(gallery), "--no-watch") as (_, url):  # its start-up index recovers
        deadline = time.monotonic() + 30
        while not (gallery / "_health.json").exists():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for name in names:
            where = [f for f in ("a", "b") if (gallery / f / name).exists()]
            assert len(where) == 1, (name, where)
            item = httpx.get(f"{url}/item", params={"path": f"{where[0]}/{name}"}, timeout=10)
            assert item.json()["tags"] == [name], (name, item.json())
    orphans = [p for p in gallery.rglob("*.jpg.json") if not p.with_suffix("").exists()]
    assert orphans == []
    assert not list(gallery.rglob(f"{INTENT_PREFIX}*"))


async def test_a_sidecar_cut_between_link_and_unlink_is_left_in_one_place(gallery: Path) -> None:
    """Killed after the image went and its sidecar arrived but before the sidecar left (a
    hard link in both folders): the next index removes the copy beside no image."""
    write(gallery / "b" / "x.jpg", jpeg_bytes())
    write(gallery / "a" / "x.jpg.json", b'{"tags": ["mine"]}')
    os.link(gallery / "a" / "x.jpg.json", gallery / "b" / "x.jpg.json")
    _left_intent(gallery, "a/x.jpg", "b/x.jpg")
    async with Lenslet(str(gallery), Settings(cpu_concurrency=2)) as lens:
        report = await lens.index()
        item = await lens.item("b/x.jpg")
    assert report.moves_finished == 1
    assert not (gallery / "a" / "x.jpg.json").exists()
    assert item.sidecar.tags == ("mine",)


async def test_a_copy_the_target_folder_brought_up_to_date_is_still_a_copy(
    gallery: Path,
) -> None:
    """As above, but the target folder was indexed first: its sidecar (the hard link) was
    rewritten with the image's EXIF basics and hash. Only those differ, so the copy beside no
    image still goes (which folder an index run reaches first is not fixed)."""
    write(gallery / "b" / "x.jpg", jpeg_bytes())
    write(gallery / "a" / "x.jpg.json", b'{"tags": ["mine"], "notes": "n"}')
    os.link(gallery / "a" / "x.jpg.json", gallery / "b" / "x.jpg.json")
    async with Lenslet(str(gallery), Settings(cpu_concurrency=2)) as lens:
        await lens.index()  # b's sidecar gains exif and hash; a holds no image
    assert (gallery / "a" / "x.jpg.json").read_bytes() != (
        gallery / "b" / "x.jpg.json"
    ).read_bytes()
    _left_intent(gallery, "a/x.jpg", "b/x.jpg")
    async with Lenslet(str(gallery), Settings(cpu_concurrency=2)) as lens:
        report = await lens.index()
        item = await lens.item("b/x.jpg")
    assert report.moves_finished == 1
    assert not (gallery / "a" / "x.jpg.json").exists()
    assert item.sidecar.tags == ("mine",)
    assert item.sidecar.notes == "n"


async def test_a_different_sidecar_at_the_target_is_not_deleted(gallery: Path) -> None:
    """Both folders hold a sidecar for the moved image but with different tags: neither is
    the other's copy, so both stay (the one beside no image is listed by health)."""
    write(gallery / "b" / "x.jpg", jpeg_bytes())
    write(gallery / "a" / "x.jpg.json", b'{"tags": ["old"]}')
    write(gallery / "b" / "x.jpg.json", b'{"tags": ["new"]}')
    _left_intent(gallery, "a/x.jpg", "b/x.jpg")
    async with Lenslet(str(gallery), Settings(cpu_concurrency=2)) as lens:
        await lens.index()
        item = await lens.item("b/x.jpg")
    assert (gallery / "a" / "x.jpg.json").read_bytes() == b'{"tags": ["old"]}'
    assert item.sidecar.tags == ("new",)


async def test_a_move_cut_between_link_and_unlink_leaves_one_image(gallery: Path) -> None:
    """Killed after the image arrived but before it left (both places hold it): the next
    index finishes the move, so the image is in one place, with its sidecar."""
    data = jpeg_bytes()
    write(gallery / "a" / "x.jpg", data)
    write(gallery / "a" / "x.jpg.json", b'{"tags": ["mine"]}')
    write(gallery / "b" / "x.jpg", data)  # what the cut-short move left at the target
    _left_intent(gallery, "a/x.jpg", "b/x.jpg")
    async with Lenslet(str(gallery), Settings(cpu_concurrency=2)) as lens:
        report = await lens.index()
        item = await lens.item("b/x.jpg")
    assert report.moves_finished == 1
    assert not (gallery / "a" / "x.jpg").exists()
    assert item.sidecar.tags == ("mine",)
