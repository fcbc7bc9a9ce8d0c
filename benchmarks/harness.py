"""What the benchmarks and the scale report share: running the CLI, timing calls, waiting for a
server, the synthetic photo library and the naive search it is measured against, one index run.
No benchmark imports another benchmark's module; they import this one."""

from __future__ import annotations

import compileall
import functools
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import httpx

import lenslet_cli
import lenslet_core
import lenslet_http
from lenslet_core import Lenslet, RollupItem, Settings
from lenslet_core.local import usable_cores
from lenslet_core.search import fold

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


def cores() -> int:
    """The cores this run may use (both sides of a ratio get the same)."""
    return usable_cores()


@functools.cache
def compiled() -> None:
    """Bytecode for lenslet's own modules, as an install from a wheel has it. An editable
    install where ``PYTHONDONTWRITEBYTECODE`` is set (as on this machine) would otherwise
    compile every module again in each CLI run measured: 0.08 s of each."""
    for package in (lenslet_core, lenslet_cli, lenslet_http):
        compileall.compile_dir(package.__path__[0], quiet=1)


def run_cli(*args: str) -> tuple[float, int, str]:
    """Run ``lenslet ARGS``; (seconds, peak RSS in bytes, stdout)."""
    compiled()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lenslet_cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"lenslet {' '.join(args)} exited {proc.returncode}")
    return seconds, usage.ru_maxrss * 1024, out


def timed(call: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def p50_p95(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_serving(http: httpx.Client, seconds: float = 120) -> None:
    """Wait for a ``lenslet serve`` that was just started to answer ``/health``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            http.get("/health")
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


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
    """The baseline: every item, every field, every query, with nothing but lowering (and the
    folders' folding) done ahead of time. Same results and order as :class:`SearchIndex`."""

    def __init__(self, items: Sequence[RollupItem]) -> None:
        self.items = items
        folded: dict[str, str] = {}
        self.rows = []
        for i in items:
            folder = i.path.rsplit("/", 1)[0] if "/" in i.path else ""
            if folder not in folded:
                folded[folder] = fold(folder)
            tags = [t.lower() for t in i.tags]
            self.rows.append((i.path, i.name.lower(), tags, i.notes.lower(), folded[folder]))

    def search(self, query: str, *, limit: int = 100, path: str = "") -> list[RollupItem]:
        q, folded = query.lower(), fold(query)
        prefix = path + "/" if path else ""
        exact, other, by_folder = [], [], []
        for item, (p, name, tags, notes, folder) in zip(self.items, self.rows, strict=True):
            if prefix and not p.startswith(prefix):
                continue
            if q in tags:
                exact.append(item)
            elif q in name or q in notes or any(q in t for t in tags):
                other.append(item)
            elif folded in folder:
                by_folder.append(item)
        return (exact + other + by_folder)[:limit]


def index_once(root: Path) -> int:
    async def run() -> int:
        async with Lenslet(str(root), Settings(cpu_concurrency=cores())) as lens:
            report = await lens.index(thumbnails=False)  # probe and hash only, as the baseline
        assert report.ok, report.skipped
        return report.analyzed

    return anyio.run(run)


def clear_derived(root: Path) -> None:
    """Back to images only: no manifests, thumbnails, rollup or health."""
    for path in root.rglob("*"):
        if path.is_file() and (path.name.startswith("_") or path.name.endswith(".thumbnail")):
            path.unlink()


def bare_thumbnails(files: Sequence[Path], out: Path) -> None:
    """The baseline of every thumbnail benchmark: ``pyvips.Image.thumbnail`` → ``webpsave``
    of each file, one thread per core, nothing around it."""
    import pyvips

    def one(path: Path) -> None:
        thumb = pyvips.Image.thumbnail(str(path), 256, height=256, size="down")
        thumb.webpsave(str(out / f"{path.name}.webp"), Q=70)

    with ThreadPoolExecutor(max_workers=cores()) as pool:
        list(pool.map(one, files))
