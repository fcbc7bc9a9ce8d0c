"""lenslet's kinds of background work (``work``), run by the engine the facade is given."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lenslet_core import Job, Lenslet, LocalEngine, NotFound, Pending, QueueFull, Settings
from lenslet_core.work import KINDS
from tests.conftest import Requests
from tests.imagegen import jpeg_bytes, write

pytestmark = pytest.mark.anyio


async def test_the_job_engine_is_passed_in_and_runs_the_kinds_of_lenslet(gallery: Path) -> None:
    write(gallery / "a.jpg", jpeg_bytes())
    engine = LocalEngine(workers=3)
    async with Lenslet(str(gallery), Settings(thumbnails=False), engine=engine) as lens:
        assert engine.kinds == tuple(sorted(KINDS, key=lambda k: k.priority))  # every one
        assert [k.name for k in engine.kinds][:2] == ["thumbnail", "index"]  # by priority
        thumbnail = await lens.thumbnail("a.jpg", wait=10)
        assert not isinstance(thumbnail, Pending)
        assert thumbnail.data[8:12] == b"WEBP"
        assert engine.stats().done >= 1  # made by the engine given, not one of its own
    assert (gallery / "a.jpg.thumbnail").exists()
    with pytest.raises(QueueFull, match="not running"):  # closed with the gallery
        await engine.submit(Job("index", str(gallery)))


async def test_an_index_job_queues_its_follow_ups(gallery: Path) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    engine = LocalEngine(workers=3)
    async with Lenslet(str(gallery), Settings(thumbnails=False), engine=engine) as lens:
        handle = await engine.submit(Job("index", lens.url, "a"))
        assert await handle.wait(10)
        assert handle.result().items == 1
    # leaving the context finished the follow-ups: the rollup and health were written
    assert (gallery / "a" / "_index.json").exists()
    assert (gallery / "_rollup.json").exists()
    assert (gallery / "_health.json").exists()


async def test_index_runs_log_their_start_and_end_and_failures(
    gallery: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    with caplog.at_level(logging.DEBUG, logger="lenslet.index"):
        async with Lenslet(str(gallery), Settings(thumbnails=False)) as lens:
            await lens.index()
            with pytest.raises(NotFound):
                await lens.index("nowhere")
    runs = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "lenslet.index"]
    started = [m for level, m in runs if level == logging.INFO and m.startswith("indexing ")]
    ended = [m for level, m in runs if level == logging.INFO and m.startswith("indexed ")]
    assert started
    assert any("1 images in 2 folders" in m for m in ended), ended
    assert any("nowhere" in m for _, m in runs)  # the failed run is in the log too


# -- an index run that changes nothing does not read the rollup --------------------------------


def tree(gallery: Path) -> None:
    for n in range(6):
        write(gallery / f"f{n % 3}" / f"img{n}.jpg", jpeg_bytes(seed=n))


async def indexed_reading(gallery: Path, requests: Requests) -> tuple[int, list[str]]:
    """Index ``gallery`` in a fresh process's facade: how often it read the rollup, and what
    a search for "img" finds afterwards."""
    requests.clear()
    async with Lenslet(str(gallery), Settings(thumbnails=False), observer=requests) as lens:
        await lens.index()
        reads = requests.count("read", "_rollup.json")
        found = sorted(h.path for h in await lens.search("img"))
    return reads, found


async def test_an_unchanged_reindex_does_not_read_the_rollup(
    gallery: Path, requests: Requests
) -> None:
    tree(gallery)
    everything = [f"f{n % 3}/img{n}.jpg" for n in range(6)]
    assert await indexed_reading(gallery, requests) == (1, sorted(everything))  # none yet
    before = (gallery / "_rollup.json").read_bytes()
    async with Lenslet(str(gallery), Settings(thumbnails=False), observer=requests) as lens:
        requests.clear()
        report = await lens.index()
        assert requests.count("read", "_rollup.json") == 0
        assert requests.count("write", "_rollup.json") == 0
        assert report.reused == 6
        # A search in the same process reads it then, and finds everything.
        assert sorted(h.path for h in await lens.search("img")) == sorted(everything)
        # The bookkeeping stays in the file: clients are not shown it.
        assert "rollup" not in await lens.health_report()
        status = await lens.status()
        assert status.gallery is not None
        assert "rollup" not in status.gallery
        assert "rollup" not in (await lens.stored_health() or {})
    assert (gallery / "_rollup.json").read_bytes() == before
    health = json.loads((gallery / "_health.json").read_text())
    assert set(health["rollup"]["folders"]) >= {"f0", "f1", "f2"}


async def test_a_folder_that_changed_brings_the_rollup_up_to_date(
    gallery: Path, requests: Requests
) -> None:
    tree(gallery)
    await indexed_reading(gallery, requests)
    await indexed_reading(gallery, requests)
    write(gallery / "f1" / "img1.jpg.json", json.dumps({"tags": ["zebra"]}).encode())
    reads, _ = await indexed_reading(gallery, requests)
    assert reads == 1
    async with Lenslet(str(gallery), Settings(thumbnails=False)) as lens:
        assert [h.path for h in await lens.search("zebra")] == ["f1/img1.jpg"]


async def test_a_folder_that_is_gone_is_forgotten_by_the_rollup(
    gallery: Path, requests: Requests
) -> None:
    tree(gallery)
    await indexed_reading(gallery, requests)
    shutil.rmtree(gallery / "f2")
    reads, found = await indexed_reading(gallery, requests)
    assert reads == 1
    assert not [p for p in found if p.startswith("f2/")]
    assert len(found) == 4


async def test_a_rollup_another_process_wrote_since_is_read(
    gallery: Path, requests: Requests
) -> None:
    tree(gallery)
    await indexed_reading(gallery, requests)
    health = (gallery / "_health.json").read_bytes()
    # Another process tags an image and saves the rollup, and is killed before it writes
    # _health.json.
    async with Lenslet(str(gallery), Settings(thumbnails=False)) as other:
        await other.update_item("f0/img0.jpg", {"tags": ["heron"]})
    (gallery / "_health.json").write_bytes(health)
    reads, _ = await indexed_reading(gallery, requests)
    assert reads == 1  # its stamp is not the one _health.json knows
    async with Lenslet(str(gallery), Settings(thumbnails=False)) as lens:
        assert [h.path for h in await lens.search("heron")] == ["f0/img0.jpg"]


@pytest.mark.parametrize(
    "rollup",
    [None, "x", {"stamp": [1], "folders": {}}, {"stamp": [1, 2], "folders": {"a": 3}}],
)
async def test_a_health_file_with_no_usable_rollup_state_reads_the_rollup(
    gallery: Path, requests: Requests, rollup: object
) -> None:
    tree(gallery)
    await indexed_reading(gallery, requests)
    health = json.loads((gallery / "_health.json").read_text())
    health["rollup"] = rollup
    (gallery / "_health.json").write_text(json.dumps(health))
    reads, found = await indexed_reading(gallery, requests)
    assert (reads, len(found)) == (1, 6)


async def test_a_rollup_whose_stamp_changed_is_read_even_if_no_folder_did(
    gallery: Path, requests: Requests
) -> None:
    tree(gallery)
    await indexed_reading(gallery, requests)
    rollup = gallery / "_rollup.json"
    os.utime(rollup, (rollup.stat().st_atime, rollup.stat().st_mtime + 5))
    reads, found = await indexed_reading(gallery, requests)
    assert (reads, len(found)) == (1, 6)
    assert (await indexed_reading(gallery, requests))[0] == 0  # known again from then on


def test_an_unchanged_reindex_does_not_load_libvips(gallery: Path) -> None:
    tree(gallery)
    code = (
        "import sys; from lenslet_cli.main import app; "
        "from typer.testing import CliRunner; "
        f"r = CliRunner().invoke(app, ['index', {str(gallery)!r}]); "
        "assert r.exit_code == 0, r.output; print('pyvips' in sys.modules)"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    ]
    runs.append(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True))
    assert [r.stdout.strip() for r in runs] == ["True", "False"]  # images read, then none
