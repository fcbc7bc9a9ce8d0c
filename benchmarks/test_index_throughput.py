"""Indexing throughput (probe + hash) against a bare loop of the same pyvips/blake3 calls."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyvips
from blake3 import blake3

from benchmarks.conftest import clear_manifests, images, record
from benchmarks.harness import cores, index_once


def bare_probe_and_hash(path: Path) -> tuple[int, int, str]:
    """What indexing needs from one image, with nothing around it: read, header, hash."""
    data = path.read_bytes()
    image = pyvips.Image.new_from_buffer(data, "", access="sequential")
    if image.get_typeof("orientation"):
        image.get("orientation")
    if image.get_typeof("exif-ifd2-DateTimeOriginal"):
        image.get("exif-ifd2-DateTimeOriginal")
    return image.width, image.height, blake3(data).hexdigest()


def test_baseline_bare_loop(benchmark: Any, corpus: Path) -> None:
    files = images(corpus)

    def run() -> None:
        with ThreadPoolExecutor(max_workers=cores()) as pool:
            results = list(pool.map(bare_probe_and_hash, files))
        assert len(results) == len(files)

    benchmark.group = "probe+hash"
    benchmark.pedantic(run, rounds=10, warmup_rounds=1)
    record(benchmark, "probe+hash", "baseline", len(files))


def test_lenslet_index_first_run(benchmark: Any, corpus: Path) -> None:
    files = images(corpus)
    benchmark.group = "probe+hash"
    analyzed = benchmark.pedantic(
        index_once,
        args=(corpus,),
        setup=lambda: clear_manifests(corpus),
        rounds=10,
        warmup_rounds=1,
    )
    assert analyzed == len(files)
    record(benchmark, "probe+hash", "lenslet index", len(files))
