"""The gallery page in a real browser (Debian's chromium through Playwright) against a real
``lenslet serve``: time to first grid — from navigation to the first 24 visible thumbnails
loaded — on a folder of 1,000 images with thumbnails made, at 1400x900 and 1920x1080, median
of 5 fresh browsers; the requests (and bytes) before it; and the longest main-thread task
while scrolling through a folder of 50,000 items."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.imagegen import jpeg_bytes, write
from tests.servers import lenslet, serving

from benchmarks.conftest import LATENCIES, NOTES
from lenslet_core import Settings
from lenslet_core.manifest import ItemEntry, paginate
from lenslet_core.paths import index_name

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
BROWSERS = 5


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    root = tmp_path_factory.mktemp("ui")
    sources = [write(root / f"src{n}.jpg", jpeg_bytes(800, 600, seed=n)) for n in range(8)]
    (root / "album").mkdir()
    for n in range(1000):
        os.link(sources[n % 8], root / "album" / f"IMG_{n:04d}.jpg")
    for source in sources:
        source.unlink()
    assert lenslet("index", str(root)).returncode == 0  # thumbnails made
    huge = [
        ItemEntry(
            f"IMG_{n:05d}.jpg", "image/jpeg", 4000, 3000, 3_000_000, 1.7e9 + n, True, False, ""
        )
        for n in range(50_000)
    ]
    for page in paginate("huge", huge, [], Settings().page_size):
        write(root / "huge" / index_name(page.page), page.encode())
    with serving(str(root), "--no-index", "--no-watch") as (_, url):
        yield url


def _first_grid(pw: Any, url: str, width: int, height: int) -> tuple[float, int, int]:
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    try:
        page = browser.new_page(viewport={"width": width, "height": height})
        sent: list[Any] = []
        page.on("requestfinished", lambda request: sent.append(request))
        began = time.perf_counter()
        page.goto(f"{url}/#/album")
        page.wait_for_function(
            """() => [...document.querySelectorAll('.cell img')]
                .filter(i => i.complete && i.naturalWidth > 0).length >= 24"""
        )
        elapsed = time.perf_counter() - began
        size = sum(r.sizes()["responseBodySize"] for r in list(sent))
        return elapsed, len(sent), size
    finally:
        browser.close()


@pytest.mark.parametrize(("width", "height"), [(1400, 900), (1920, 1080)])
def test_time_to_first_grid(gallery: str, width: int, height: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        runs = [_first_grid(pw, gallery, width, height) for _ in range(BROWSERS)]
    times = sorted(r[0] for r in runs)
    LATENCIES["first grid"][f"{width}x{height}"] = (statistics.median(times), times[-1], 0.0)
    requests, size = runs[-1][1], runs[-1][2]
    NOTES.append(
        f"first grid {width}x{height}: median {statistics.median(times) * 1000:.0f} ms over "
        f"{BROWSERS} fresh browsers; {requests} requests, {size:,} bytes before it"
    )


def test_scrolling_fifty_thousand_items(gallery: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{gallery}/#/huge")
            page.wait_for_selector(".cell")
            page.evaluate(
                """() => {
                  window.longest = 0;
                  new PerformanceObserver(list => {
                    for (const e of list.getEntries())
                      window.longest = Math.max(window.longest, e.duration);
                  }).observe({ type: 'longtask', buffered: false });
                }"""
            )
            for _ in range(150):  # through the whole folder, a screenful at a time and faster
                page.mouse.move(700, 450)
                page.mouse.wheel(0, 9000)
                page.wait_for_timeout(30)
            page.wait_for_function("document.querySelectorAll('.cell').length > 0")
            cells = page.evaluate("document.querySelectorAll('.cell').length")
            longest = page.evaluate("window.longest")
            bottom = page.evaluate("document.getElementById('grid').scrollTop")
        finally:
            browser.close()
    assert cells < 400  # only the visible cells are in the DOM
    NOTES.append(
        f"scrolling 50,000 items: longest main-thread task {longest:.0f} ms "
        f"(0: none over 50 ms), {cells} cells in the DOM, scrolled {bottom:,} px"
    )
