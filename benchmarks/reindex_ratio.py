"""The unchanged re-index of a large tree against the bare walk of it, in one run.

    python -m benchmarks.scale /tmp/t500k --count 500000   # seconds
    lenslet index /tmp/t500k                               # the first index (~30 min)
    python -m benchmarks.reindex_ratio /tmp/t500k          # this

Runs the bare ``os.scandir`` + stat walk (:func:`benchmarks.report.scandir_walk`, what an
unchanged re-index must at least do), the same walk through each folder's descriptor
(:func:`~benchmarks.report.scandir_walk_fd`, as lenslet lists) and ``lenslet index`` over the
unchanged tree, three times each, in turns, and prints the best walks, the median re-index and
their ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from benchmarks.harness import run_cli
from benchmarks.report import scandir_walk, scandir_walk_fd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="an indexed tree")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    walks, fd_walks, runs, peaks = [], [], [], []
    for _ in range(args.rounds):
        started = time.perf_counter()
        entries = scandir_walk(args.root)
        walks.append(time.perf_counter() - started)
        started = time.perf_counter()
        scandir_walk_fd(args.root)
        fd_walks.append(time.perf_counter() - started)
        seconds, peak, _ = run_cli("index", str(args.root), "--json", "--no-progress")
        runs.append(seconds)
        peaks.append(peak)
    walk, fd_walk, run = min(walks), min(fd_walks), statistics.median(runs)
    print(f"bare walk: {walk:.2f} s ({entries:,} entries; best of {args.rounds})")
    print(f"bare walk through descriptors: {fd_walk:.2f} s")
    print(f"unchanged re-index: {run:.2f} s (median; runs {', '.join(f'{r:.2f}' for r in runs)})")
    print(f"peak RSS: {max(peaks) / 2**20:,.0f} MiB")
    ratios = f"{run / walk:.2f}x the bare walk, {run / fd_walk:.2f}x the walk through descriptors"
    print(f"ratio: {ratios}")


if __name__ == "__main__":
    main()
