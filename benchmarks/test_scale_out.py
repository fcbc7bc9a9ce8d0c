"""Scale-out on Dask: the same index run (thumbnails included) in-process, on one ``lenslet
worker`` and on two (one thread each), next to the bare pyvips loop; and what the scheduler
costs per task (no-op tasks, and folder jobs of 100 and 1,000 unchanged images).

    python -m pytest -q -p no:randomly --benchmark-enable benchmarks/test_scale_out.py

The summary prints each against the bare loop, and the two ratios the cluster is judged by:
two workers over one (scaling) and two workers over the in-process engine (overhead).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from tests.cluster import Cluster, cluster
from tests.imagegen import jpeg_bytes, write

from benchmarks.conftest import NOTES, RESULTS, images, record
from benchmarks.harness import bare_thumbnails, clear_derived, cores
from lenslet_core import DaskEngine, Engine, Lenslet, Settings

#: name -> (width, height, images, folders)
FORMATS = {"jpeg 12MP": (4000, 3000, 32, 16), "jpeg 800x600": (800, 600, 480, 16)}


@pytest.fixture(scope="module")
def one_worker() -> Iterator[Cluster]:
    with cluster(1) as running:
        yield running


@pytest.fixture(scope="module")
def two_workers() -> Iterator[Cluster]:
    with cluster(2) as running:
        yield running


@pytest.fixture(scope="module", params=list(FORMATS))
def tree(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    name = request.param
    width, height, count, folders = FORMATS[name]
    root = tmp_path_factory.mktemp("scale")
    originals = [jpeg_bytes(width, height, seed=n) for n in range(4)]  # 4 pictures, copied
    for n in range(count):
        write(root / f"f{n % folders}" / f"img{n:04d}.jpg", originals[n % 4])
    return name, root


def index(root: Path, engine: Engine | None) -> int:
    async def run() -> int:
        async with Lenslet(str(root), Settings(cpu_concurrency=cores()), engine=engine) as lens:
            report = await lens.index()
        assert report.ok, report.skipped
        return report.thumbnails_made

    return anyio.run(run)


def test_baseline_bare_thumbnail_loop(
    benchmark: Any, tree: tuple[str, Path], tmp_path: Path
) -> None:
    name, root = tree
    files = images(root)

    def run() -> None:
        bare_thumbnails(files, tmp_path)

    benchmark.group = f"scale {name}"
    benchmark.pedantic(run, rounds=4, warmup_rounds=1)
    record(benchmark, f"scale {name}", "baseline", len(files))


@pytest.mark.parametrize("where", ["in-process", "1 worker", "2 workers"])
def test_index_with_thumbnails(
    benchmark: Any,
    tree: tuple[str, Path],
    where: str,
    one_worker: Cluster,
    two_workers: Cluster,
) -> None:
    name, root = tree
    address = {"1 worker": one_worker.address, "2 workers": two_workers.address}.get(where)
    benchmark.group = f"scale {name}"
    made = benchmark.pedantic(
        lambda: index(root, DaskEngine(address) if address else None),
        setup=lambda: clear_derived(root),
        rounds=4,
        warmup_rounds=1,
    )
    assert made == len(images(root))
    record(benchmark, f"scale {name}", where, made)


def test_scheduler_overhead_per_task(two_workers: Cluster, tmp_path: Path) -> None:
    """Tasks a second: no-op tasks straight on the cluster, then lenslet's folder jobs over
    folders of 100 and 1,000 unchanged images (a re-index: the job lists the folder, reads
    its manifest and sends its items back), against the same re-index in-process."""
    from distributed import Client

    async def noop_rate(count: int) -> float:
        client = Client(two_workers.address, asynchronous=True, set_as_default=False)
        async with client:
            started = time.perf_counter()
            futures = client.map(_noop, range(count), pure=False)
            await client.gather(futures)
            return count / (time.perf_counter() - started)

    rate = anyio.run(noop_rate, 2000)
    NOTES.append(f"scheduler: {rate:,.0f} no-op tasks/s (2 workers, client on the same 2 cores)")
    tiny = jpeg_bytes(64, 48, seed=1)
    for per_folder, folders in ((100, 40), (1000, 8)):
        root = tmp_path / f"per{per_folder}"
        for f in range(folders):
            for n in range(per_folder):
                write(root / f"f{f:03}" / f"{n:04}.jpg", tiny)
        index(root, None)  # indexed once: what follows is the unchanged re-index
        here = _seconds(lambda root=root: index(root, None))
        there = _seconds(lambda root=root: index(root, DaskEngine(two_workers.address)))
        NOTES.append(
            f"folder jobs of {per_folder:,} unchanged images: {folders / there:,.0f} tasks/s on "
            f"the cluster ({there / folders * 1000:.1f} ms each), {folders / here:,.0f} "
            f"folders/s in-process ({here / folders * 1000:.1f} ms each)"
        )


def test_summary() -> None:
    """The ratios the cluster is judged by, from the runs above."""
    for name in FORMATS:
        runs = RESULTS.get(f"scale {name}", {})
        if not {"in-process", "1 worker", "2 workers"} <= runs.keys():
            continue
        rate = {k: items / median for k, (median, items) in runs.items()}
        NOTES.append(
            f"scale {name}: 2 workers / 1 worker {rate['2 workers'] / rate['1 worker']:.2f}x "
            f"(goal 1.8), 2 workers / in-process {rate['2 workers'] / rate['in-process']:.2f}x "
            f"(goal 0.9); per worker thread {rate['1 worker']:.1f} images/s"
        )


def _noop(n: int) -> int:
    return n


def _seconds(call: Any, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]
