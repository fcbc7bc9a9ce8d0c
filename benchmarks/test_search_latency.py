"""Search latency over synthetic rollups of 100k and 500k images: the in-memory index against
the best naive scan (fields lowered once, then one substring test per field and item)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest

from benchmarks.conftest import LATENCIES
from benchmarks.harness import NaiveScan, synthetic
from lenslet_core import RollupItem
from lenslet_core.search import SearchIndex

#: Queries as a gallery's users type them: a tag, part of a tag, a file name, words from
#: notes, rare and absent text, and a few under a folder.
QUERIES: list[tuple[str, str]] = [
    ("beach", ""),
    ("sun", ""),
    ("img_0042", ""),
    ("img_49999", ""),
    ("birthday party", ""),
    ("lake", "2011/album093"),
    ("zzqx", ""),
    ("xyzzy12", ""),
    ("Wedding", "2014"),
    ("e", ""),
    ("flow", "2012/album150"),
    ("train", ""),
    ("album093", ""),  # found by its folder alone
    ("ALBUM1", "2012"),
]


def latencies(search: Callable[..., list[RollupItem]], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        for query, path in QUERIES:
            started = time.perf_counter()
            search(query, limit=100, path=path)
            times.append(time.perf_counter() - started)
    return times


@pytest.fixture(scope="module", params=[100_000, 500_000])
def rollup(request: pytest.FixtureRequest) -> list[RollupItem]:
    items: list[RollupItem] = synthetic(request.param)
    return items


def test_search_index_matches_the_naive_scan(rollup: list[RollupItem]) -> None:
    index, naive = SearchIndex(rollup), NaiveScan(rollup)
    for query, path in QUERIES:
        assert index.search(query, limit=100, path=path) == naive.search(
            query, limit=100, path=path
        ), query


@pytest.mark.parametrize("name", ["naive scan", "search index"])
def test_search_latency(benchmark: Any, rollup: list[RollupItem], name: str) -> None:
    started = time.perf_counter()
    engine = NaiveScan(rollup) if name == "naive scan" else SearchIndex(rollup)
    built = time.perf_counter() - started
    times: list[float] = []

    def run() -> None:
        times.extend(latencies(engine.search, rounds=1))

    benchmark.group = f"search {len(rollup):,}"
    benchmark.pedantic(run, rounds=5 if name == "naive scan" else 20, warmup_rounds=1)
    cuts = statistics.quantiles(times, n=20)
    LATENCIES[f"search {len(rollup):,}"][name] = (statistics.median(times), cuts[18], built)
