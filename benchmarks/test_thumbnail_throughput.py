"""Index with thumbnails, per format, against a bare loop of ``pyvips.Image.thumbnail`` →
``webpsave`` over the same files with the same cores."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from tests.imagegen import jpeg_bytes, png_bytes, webp_bytes, write

from benchmarks.conftest import NOTES, images, record
from benchmarks.harness import bare_thumbnails, clear_derived, cores
from lenslet_core import Lenslet, Settings, keep_large_buffers

#: name -> (maker, suffix, width, height, how many)
FORMATS = {
    "jpeg 12MP": (jpeg_bytes, ".jpg", 4000, 3000, 16),
    "jpeg 800x600": (jpeg_bytes, ".jpg", 800, 600, 160),
    "png 1080p": (png_bytes, ".png", 1920, 1080, 24),
    "webp 2048px": (webp_bytes, ".webp", 2048, 1536, 32),
}


@pytest.fixture(scope="module", autouse=True)
def as_the_cli_runs() -> None:
    """This process's allocator set up as ``lenslet index`` and ``lenslet serve`` set up theirs
    (image buffers kept for reuse: :func:`lenslet_core.keep_large_buffers`); both sides of each
    ratio run in it. A host that leaves glibc's defaults reads each image into fresh pages."""
    keep_large_buffers()


@pytest.fixture(scope="session", params=list(FORMATS))
def format_corpus(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    name = request.param
    make, suffix, width, height, count = FORMATS[name]
    root = tmp_path_factory.mktemp("thumbs")
    for n in range(count):
        write(root / f"f{n % 4}" / f"img{n:04d}{suffix}", make(width, height, seed=n))
    return name, root


def test_baseline_bare_thumbnail_loop(
    benchmark: Any, format_corpus: tuple[str, Path], tmp_path: Path
) -> None:
    name, root = format_corpus
    files = images(root)

    def run() -> None:
        bare_thumbnails(files, tmp_path)

    benchmark.group = f"thumbs {name}"
    benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    record(benchmark, f"thumbs {name}", "baseline", len(files))


def index_with_thumbnails(root: Path) -> int:
    async def run() -> int:
        async with Lenslet(str(root), Settings(cpu_concurrency=cores())) as lens:
            report = await lens.index()
        assert report.ok, report.skipped
        return report.thumbnails_made

    return anyio.run(run)


def test_lenslet_index_with_thumbnails(benchmark: Any, format_corpus: tuple[str, Path]) -> None:
    name, root = format_corpus
    files = images(root)
    benchmark.group = f"thumbs {name}"
    made = benchmark.pedantic(
        index_with_thumbnails,
        args=(root,),
        setup=lambda: clear_derived(root),
        rounds=5,
        warmup_rounds=1,
    )
    assert made == len(files)
    record(benchmark, f"thumbs {name}", "lenslet index", len(files))


#: Pairs of rounds in :func:`test_in_turns` (even: half of them with lenslet first).
PAIRS = 8


def test_in_turns(format_corpus: tuple[str, Path], tmp_path: Path) -> None:
    """The same two runs in turns (bare, lenslet, lenslet, bare, ...), the ratio of each pair:
    a VM whose speed drifts over the minute the separate rounds above take moves both alike,
    and every other pair runs lenslet first, so a drift within a pair favours neither."""
    name, root = format_corpus
    files = images(root)
    index_with_thumbnails(root)  # warm: libvips loaded, files in the page cache

    def bare() -> float:
        started = time.perf_counter()
        bare_thumbnails(files, tmp_path)
        return time.perf_counter() - started

    def ours() -> float:
        clear_derived(root)
        started = time.perf_counter()
        assert index_with_thumbnails(root) == len(files)
        return time.perf_counter() - started

    ratios: list[float] = []
    for turn in range(PAIRS):
        if turn % 2 == 0:
            first = bare()
            ratios.append(first / ours())
        else:
            lenslet = ours()
            ratios.append(bare() / lenslet)
    ratios.sort()
    low, high = ratios[len(ratios) // 4], ratios[-1 - len(ratios) // 4]
    NOTES.append(
        f"thumbs {name} in turns: lenslet index at {statistics.median(ratios):.2f}x of the bare "
        f"loop (median of {PAIRS} pairs; quartiles {low:.2f}-{high:.2f})"
    )
