"""A second index run over an unchanged tree against the first run: the goal is >= 20x faster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.conftest import clear_manifests, images, record
from benchmarks.harness import index_once


def test_baseline_first_run(benchmark: Any, corpus: Path) -> None:
    benchmark.group = "reindex"
    benchmark.pedantic(
        index_once,
        args=(corpus,),
        setup=lambda: clear_manifests(corpus),
        rounds=10,
        warmup_rounds=1,
    )
    record(benchmark, "reindex", "baseline", len(images(corpus)))


def test_unchanged_second_run(benchmark: Any, corpus: Path) -> None:
    clear_manifests(corpus)
    index_once(corpus)
    benchmark.group = "reindex"
    analyzed = benchmark.pedantic(index_once, args=(corpus,), rounds=10, warmup_rounds=1)
    assert analyzed == 0
    record(benchmark, "reindex", "unchanged rerun", len(images(corpus)))
