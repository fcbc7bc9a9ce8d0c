"""Search latency over synthetic rollups of 100k and 500k images: the in-memory index against
the best naive scan (fields lowered once, then one substring test per field and item)."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from benchmarks.conftest import LATENCIES
from lenslet_core import RollupItem
from lenslet_core.search import SearchIndex

WORDS = [
    "beach",
    "sunset",
    "family",
    "dog",
    "cat",
    "mountain",
    "city",
    "night",
    "portrait",
    "wedding",
    "travel",
    "food",
    "car",
    "snow",
    "forest",
    "river",
    "party",
    "birthday",
    "garden",
    "flower",
    "lake",
    "bridge",
    "market",
    "train",
]
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
]


def synthetic(count: int, seed: int = 7) -> list[RollupItem]:
    """A photo library: years of albums of ~700 consecutive camera files each, a third of them
    without notes, up to three tags each."""
    rng = random.Random(seed)
    items = []
    for n in range(count):
        name = f"IMG_{n:06d}.jpg"
        tags = tuple(rng.sample(WORDS, rng.randint(0, 3)))
        notes = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))
        folder = f"{2010 + n // 50_000}/album{n // 700:03d}"
        items.append(RollupItem(f"{folder}/{name}", name, tags, notes if n % 3 else ""))
    return sorted(items, key=lambda i: i.path)


class NaiveScan:
    """The baseline: every item, every field, every query, with nothing but lowering done
    ahead of time. Same results and order as :class:`SearchIndex`."""

    def __init__(self, items: Sequence[RollupItem]) -> None:
        self.items = items
        self.rows = [
            (i.path, i.name.lower(), [t.lower() for t in i.tags], i.notes.lower()) for i in items
        ]

    def search(self, query: str, *, limit: int = 100, path: str = "") -> list[RollupItem]:
        q = query.lower()
        prefix = path + "/" if path else ""
        exact, other = [], []
        for item, (p, name, tags, notes) in zip(self.items, self.rows, strict=True):
            if prefix and not p.startswith(prefix):
                continue
            if q in tags:
                exact.append(item)
            elif q in name or q in notes or any(q in t for t in tags):
                other.append(item)
        return (exact + other)[:limit]


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
