"""HTTP latency and requests/s over a real uvicorn server (another process), lenslet's routes
next to bare Starlette routes that answer the same bytes from memory, in the same run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from benchmarks.conftest import LATENCIES, RESULTS
from benchmarks.http_server import CASES, make_gallery, running, warm

REQUESTS = 400
THREADS = 4


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("http")
    make_gallery(root)
    with running(str(root)) as url:
        warm(url)
        yield url


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
