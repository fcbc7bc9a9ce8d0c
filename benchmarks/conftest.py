"""Benchmarks run side by side with a baseline in the same session; the summary prints ratios.

    python -m pytest benchmarks --benchmark-enable

Each group holds one ``baseline`` benchmark and one or more lenslet ones; the ratio printed is
lenslet throughput / baseline throughput (1.0 = as fast as the bare loop).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from tests.imagegen import jpeg_bytes, png_bytes, webp_bytes, write

#: group -> name -> (median seconds per round, items per round)
RESULTS: dict[str, dict[str, tuple[float, int]]] = defaultdict(dict)
#: group -> name -> (p50 seconds, p95 seconds, seconds to build) of single requests
LATENCIES: dict[str, dict[str, tuple[float, float, float]]] = defaultdict(dict)
#: Lines of other figures (sizes, counts) a benchmark measured, printed with the summary.
NOTES: list[str] = []


def record(benchmark: Any, group: str, name: str, items: int) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        RESULTS[group][name] = (stats.stats.median, items)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if NOTES:
        terminalreporter.section("lenslet figures (same run)")
        for line in NOTES:
            terminalreporter.write_line(line)
    if LATENCIES:
        terminalreporter.section("lenslet latencies (same run)")
        for group, latencies in sorted(LATENCIES.items()):
            for name, (p50, p95, built) in sorted(latencies.items()):
                terminalreporter.write_line(
                    f"{group:>18} {name:>16}: p50 {p50 * 1000:8.2f} ms  p95 {p95 * 1000:8.2f} ms"
                    f"  (built in {built:.2f} s)"
                )
    if not RESULTS:
        return
    terminalreporter.section("lenslet ratios (same run, same cores)")
    for group, runs in sorted(RESULTS.items()):
        base = runs.get("baseline")
        for name, (median, items) in sorted(runs.items()):
            rate = items / median if median else 0.0
            line = f"{group:>18} {name:>16}: {rate:10.1f} items/s  median {median * 1000:9.2f} ms"
            if base is not None and name != "baseline":
                line += f"  ratio {base[0] / median:6.2f}x of baseline time"
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated gallery: 240 photo-like images (1600x1200 JPEG, 1024x768 PNG, 1280x960 WebP)
    in 8 folders. Made once per session."""
    root = tmp_path_factory.mktemp("corpus")
    makers = [
        (jpeg_bytes, ".jpg", (1600, 1200)),
        (png_bytes, ".png", (1024, 768)),
        (webp_bytes, ".webp", (1280, 960)),
    ]
    for n in range(240):
        make, suffix, (w, h) = makers[n % 3]
        write(root / f"folder{n % 8}" / f"img{n:04d}{suffix}", make(w, h, seed=n))
    return root


def images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".jpg", ".png", ".webp"))


def clear_manifests(root: Path) -> None:
    for index in root.rglob("_index*.json"):
        index.unlink()
