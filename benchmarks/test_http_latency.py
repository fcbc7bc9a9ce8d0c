"""HTTP latency and requests/s over a real uvicorn server (another process), lenslet's routes
next to bare Starlette routes that answer the same bytes from memory, in the same run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.imagegen import jpeg_bytes, write

from benchmarks.conftest import LATENCIES, RESULTS
from benchmarks.harness import synthetic
from benchmarks.http_server import running
from lenslet_core import Settings
from lenslet_core.manifest import ItemEntry, paginate
from lenslet_core.paths import index_name
from lenslet_core.rollup import encode_rollup

REQUESTS = 400
THREADS = 4


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("http")
    small = jpeg_bytes(64, 48)
    for n in range(1000):  # a 1,000-item folder
        write(root / "big" / f"IMG_{n:04d}.jpg", small)
    write(root / "one" / "x.jpg", jpeg_bytes(800, 600))
    write(root / "one" / "x.jpg.json", b'{"tags": ["sea"], "notes": "benchmark"}')
    items = synthetic(100_000)
    (root / "_rollup.json").write_bytes(encode_rollup(items, "2026-01-01T00:00:00Z"))
    # Their folders' manifests (the images themselves are not needed to answer a search).
    albums: dict[str, list[ItemEntry]] = {}
    for item in items:
        folder, name = item.path.rsplit("/", 1)
        entry = ItemEntry(name, "image/jpeg", 64, 48, 1234, 1.7e9, False, bool(item.tags), "")
        albums.setdefault(folder, []).append(entry)
    for folder, entries in albums.items():
        for page in paginate(folder, entries, [], Settings().page_size):
            write(
                root / folder / index_name(page.page if page.page_count > 1 else None),
                page.encode(),
            )
    with running(str(root)) as url:
        with httpx.Client(base_url=url, timeout=60) as http:
            http.get("/folders", params={"path": "big"})  # builds the manifest once
            http.get("/folders", params={"path": "one"})  # a client lists before its thumbs
            http.get("/thumb", params={"path": "one/x.jpg", "wait": "10"})
            http.get("/search", params={"q": "warm"})
            for name, route, params in CASES:
                answer = http.get(route, params=params)
                assert answer.status_code == 200, answer.text
                media = answer.headers["content-type"]
                http.put(f"/bare/{name}", content=answer.content, headers={"x-media": media})
        yield url


CASES = [
    ("folders", "/folders", {"path": "big"}),
    ("item", "/item", {"path": "one/x.jpg"}),
    ("thumb", "/thumb", {"path": "one/x.jpg"}),
    ("search", "/search", {"q": "sunset", "limit": "50"}),
]


def measure(url: str, route: str, params: dict[str, str]) -> tuple[list[float], float]:
    """Per-request seconds, and requests/s with THREADS clients on keep-alive connections."""

    def client(count: int) -> list[float]:
        times = []
        with httpx.Client(base_url=url, timeout=30) as http:
            for _ in range(count):
                started = time.perf_counter()
                answer = http.get(route, params=params)
                times.append(time.perf_counter() - started)
                assert answer.status_code == 200
        return times

    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        parts = list(pool.map(client, [REQUESTS // THREADS] * THREADS))
    elapsed = time.perf_counter() - started
    return [t for part in parts for t in part], REQUESTS / elapsed


@pytest.mark.parametrize(("name", "route", "params"), CASES, ids=[c[0] for c in CASES])
def test_http_latency(server: str, name: str, route: str, params: dict[str, str]) -> None:
    for label, path, query in (("bare route", f"/bare/{name}", {}), ("lenslet", route, params)):
        measure(server, path, query)  # warm up
        times, rps = measure(server, path, query)
        cuts = statistics.quantiles(times, n=20)
        LATENCIES[f"http {name}"][label] = (statistics.median(times), cuts[18], 0.0)
        key = "baseline" if label == "bare route" else "lenslet"
        RESULTS[f"http {name}"][key] = (REQUESTS / rps / REQUESTS, 1)
