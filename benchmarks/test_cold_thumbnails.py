"""Thumbnails nobody has made yet, asked for at once by plain clients (an ``<img>`` grid, a
``fetch()``): 200 never-indexed 4000x3000 JPEGs, 6 concurrent clients against a real
``lenslet serve``, beside a bare pyvips loop over the same files with the same cores.

Every answer must be a 200 WebP (no 202 to a client that did not ask for one); the ratio says
how close serving them comes to the time the machine needs to make them. The server's CPU is
the bottleneck (each request is ~100 ms of libvips work), not the Python client.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyvips
from tests.imagegen import jpeg_bytes, write
from tests.servers import serving

from benchmarks.conftest import images, record
from benchmarks.harness import cores

#: Images asked for, and distinct ones among them (the rest are hard links: same work each).
COUNT = int(os.environ.get("LENSLET_COLD_THUMBS", "200"))
DISTINCT = 8
CLIENTS = 6


@pytest.fixture(scope="module")
def camera_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cold")
    folder = root / "camera"
    sources = [write(root / f"src{n}.jpg", jpeg_bytes(4000, 3000, seed=n)) for n in range(DISTINCT)]
    folder.mkdir()
    for n in range(COUNT):
        os.link(sources[n % DISTINCT], folder / f"IMG_{n:04d}.jpg")
    for source in sources:
        source.unlink()
    return root


def _clear(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file() and (path.name.startswith("_") or path.name.endswith(".thumbnail")):
            path.unlink()


def test_baseline_bare_pyvips_loop(benchmark: Any, camera_folder: Path, tmp_path: Path) -> None:
    files = images(camera_folder)

    def one(path: Path) -> None:
        data = path.read_bytes()
        thumb = pyvips.Image.thumbnail_buffer(data, 256, height=256, size="down")
        (tmp_path / f"{path.name}.webp").write_bytes(thumb.webpsave_buffer(Q=70))

    def run() -> None:
        with ThreadPoolExecutor(max_workers=cores()) as pool:
            list(pool.map(one, files))

    benchmark.group = "cold thumbs 12MP"
    benchmark.pedantic(run, rounds=2, iterations=1)
    record(benchmark, "cold thumbs 12MP", "baseline", len(files))


def test_lenslet_serve_six_plain_clients(benchmark: Any, camera_folder: Path) -> None:
    names = [p.relative_to(camera_folder).as_posix() for p in images(camera_folder)]
    statuses: list[int] = []
    with serving(str(camera_folder), "--no-index", "--no-watch") as (_, url):

        def client(todo: queue.Queue[str]) -> None:
            with httpx.Client(base_url=url, timeout=60, headers={"Accept": "*/*"}) as http:
                while True:
                    try:
                        name = todo.get_nowait()
                    except queue.Empty:
                        return
                    answer = http.get("/thumb", params={"path": name})
                    statuses.append(answer.status_code)
                    assert answer.status_code == 200, answer.text
                    assert answer.headers["content-type"] == "image/webp"

        def run() -> None:
            todo: queue.Queue[str] = queue.Queue()
            for name in names:
                todo.put(name)
            threads = [threading.Thread(target=client, args=(todo,)) for _ in range(CLIENTS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        benchmark.group = "cold thumbs 12MP"
        began = time.monotonic()
        benchmark.pedantic(run, setup=lambda: _clear(camera_folder), rounds=2, iterations=1)
        assert time.monotonic() - began > 0
    assert statuses.count(200) == 2 * len(names), sorted(set(statuses))
    record(benchmark, "cold thumbs 12MP", "lenslet serve", len(names))
