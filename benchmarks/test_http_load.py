"""HTTP under real load: wrk (Debian's ``wrk``) against lenslet's read routes and, in the same
run and the same server process, bare Starlette routes answering the same bytes from memory.
The server is pinned to core 0 and wrk to core 1, so the load generator never shares the
server's core and the server is what saturates. The two are measured in turns (bare, lenslet,
bare, ...), each ratio from one pair of neighbouring runs of a second each and the median
taken, every other pair with lenslet first: this VM's speed drifts by tens of percent within a
minute, which back-to-back runs of 6 s each read as a difference between the servers, and a
drift within each pair would favour whichever always ran first. Each is run twice: under
uvicorn with httptools on uvloop (what ``lenslet serve`` runs with the ``http`` extra) and
with h11 on asyncio (pure Python).

    apt-get install wrk
    python -m pytest -q -p no:randomly --benchmark-enable benchmarks/test_http_load.py
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from benchmarks.conftest import NOTES
from benchmarks.http_server import CASES, make_gallery, running, warm

#: wrk's threads, seconds per run, pairs of runs, and the connections each route is measured at.
THREADS = 2
SECONDS = 1
PAIRS = 8
CONNECTIONS = (8, 32)

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (apt-get)")


#: uvicorn's HTTP implementations: what ``lenslet serve`` runs with the ``http`` extra
#: (httptools on uvloop), and the pure-Python one it falls back to.
PARSERS = ("httptools", "h11")


@pytest.fixture(scope="module", params=PARSERS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """(URL, parser) of a benchmark server pinned to core 0."""
    root = tmp_path_factory.mktemp("load")
    make_gallery(root)
    with running(str(root), cpu=0, parser=request.param) as url:
        warm(url)
        yield url, request.param


def wrk(url: str, connections: int) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of one wrk run on core 1; fails on any non-2xx answer."""
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", f"-t{THREADS}", f"-c{connections}", f"-d{SECONDS}s",
         "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout  # fmt: skip
    assert "Non-2xx" not in out, out
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return rate, _latency(out, "50%"), _latency(out, "99%")


def _median(runs: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    rate, p50, p99 = (statistics.median(run[i] for run in runs) for i in range(3))
    return rate, p50, p99


def _latency(out: str, cut: str) -> float:
    value, unit = re.search(rf"{cut}\s+([\d.]+)(us|ms|s)\b", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


@pytest.mark.parametrize("connections", CONNECTIONS)
@pytest.mark.parametrize(("name", "route", "params"), CASES, ids=[c[0] for c in CASES])
def test_http_under_load(
    server: tuple[str, str], name: str, route: str, params: dict[str, str], connections: int
) -> None:
    url, parser = server
    wrk(f"{url}/bare/{name}", connections)  # warm up both
    wrk(f"{url}{route}?{urlencode(params)}", connections)
    pairs = []
    for turn in range(PAIRS):
        urls = [f"{url}/bare/{name}", f"{url}{route}?{urlencode(params)}"]
        first, second = urls if turn % 2 == 0 else urls[::-1]
        runs = {first: wrk(first, connections), second: wrk(second, connections)}
        pairs.append((runs[urls[0]], runs[urls[1]]))
    ratio = statistics.median(ours[0] / bare[0] for bare, ours in pairs)
    bare = _median([b for b, _ in pairs])
    ours = _median([o for _, o in pairs])
    NOTES.append(
        f"wrk {parser:>9} {name:>7} c={connections:<2}: "
        f"lenslet {ours[0]:7,.0f} req/s (p50 {ours[1]:5.2f} p99 {ours[2]:6.2f} ms), "
        f"bare route {bare[0]:7,.0f} req/s (p50 {bare[1]:5.2f} p99 {bare[2]:6.2f} ms): {ratio:.2f}x"
    )
