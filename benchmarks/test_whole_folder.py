"""A 50,000-image folder asked for whole (``GET /folders`` without ``page``, as existing clients
do) against the same folder fetched page by page (ten 5,000-item pages), over a real uvicorn
server in another process: bytes on the wire and p50/p95 of the whole answer against the sum
of the pages' answers."""

from __future__ import annotations

import gzip
import statistics
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.imagegen import write

from benchmarks.conftest import LATENCIES, NOTES
from benchmarks.http_server import running
from lenslet_core import Settings
from lenslet_core.manifest import ItemEntry, paginate
from lenslet_core.paths import index_name

ITEMS = 50_000
ROUNDS = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("whole")
    entries = [
        ItemEntry(
            f"IMG_{n:05d}.jpg",
            "image/jpeg",
            4000,
            3000,
            3_481_920 + n,
            1.7e9 + n,
            True,
            n % 10 == 0,
            "blake3:" + f"{n:064x}",
            None,
            4 if n % 7 == 0 else None,
        )
        for n in range(ITEMS)
    ]
    pages = paginate("huge", entries, [], Settings().page_size)
    for page in pages:
        write(root / "huge" / index_name(page.page), page.encode())
    with running(str(root)) as url:
        yield url


def _timed(http: httpx.Client, params: dict[str, str]) -> tuple[float, int, int]:
    """Seconds, bytes on the wire (gzip) and bytes of JSON of one answer, read whole."""
    started = time.perf_counter()
    with http.stream("GET", "/folders", params=params) as answer:
        raw = b"".join(answer.iter_raw())
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200
    assert answer.headers["content-encoding"] == "gzip"
    return elapsed, len(raw), len(gzip.decompress(raw))


def test_the_whole_folder_beside_the_sum_of_its_pages(server: str) -> None:
    with httpx.Client(base_url=server, timeout=60) as http:
        count = http.get("/folders", params={"path": "huge", "page": "0"}).json()["pageCount"]
        assert count == ITEMS // Settings().page_size
        whole_times, paged_times = [], []
        for _ in range(ROUNDS + 2):  # the first two warm the caches (encoded once per build)
            seconds, whole_wire, whole_json = _timed(http, {"path": "huge"})
            whole_times.append(seconds)
            parts = [_timed(http, {"path": "huge", "page": str(n)}) for n in range(count)]
            paged_times.append(sum(p[0] for p in parts))
            paged_wire, paged_json = sum(p[1] for p in parts), sum(p[2] for p in parts)
        answer = http.get("/folders", params={"path": "huge"}).json()
        assert len(answer["items"]) == ITEMS
        assert answer["pageCount"] == 1
    for label, times in (("whole", whole_times[2:]), ("sum of pages", paged_times[2:])):
        cuts = statistics.quantiles(times, n=20)
        LATENCIES["folders 50k"][label] = (statistics.median(times), cuts[18], 0.0)
    NOTES.append(
        f"folders 50k: whole answer {whole_wire:,} B gzip ({whole_json:,} B JSON); "
        f"{count} pages {paged_wire:,} B gzip ({paged_json:,} B JSON)"
    )
