"""lenslet's kinds of background work (``work``), run by the engine the facade is given."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lenslet_core import Job, Lenslet, LocalEngine, NotFound, Pending, QueueFull, Settings
from lenslet_core.work import KINDS
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
