"""Scale runs: how lenslet's costs grow with the tree, in one table.

    python -m benchmarks.report              # quick: 10k and 50k images
    python -m benchmarks.report --full       # 10k, 50k, 100k and 500k (about an hour, 2 cores)
    python -m benchmarks.report --sizes 2000 --docs   # and write docs/performance.md + curves
    python -m benchmarks.report --sizes --s3 5000     # the S3 run only (moto on loopback)
    python -m benchmarks.report --sizes 1000000 --add --docs   # one more size in the table

Each size gets a fresh tree (:mod:`benchmarks.scale`) in a temporary folder, then the real CLI
and a real ``lenslet serve`` in processes of their own: first index and unchanged re-index
(items/s, peak RSS), the rollup (size, search index build), the server's RSS after warm-up,
``/folders`` and ``/search`` latency, the time for a tag edit to be searchable and for a new
image to be listed with its thumbnail. Baselines run in the same process on the same tree: a
bare ``os.scandir`` + stat walk (what an unchanged re-index must at least do) and a naive scan
of the rollup (what search is compared with). Results go to ``benchmarks/results/scale.json``.

Then the S3 run (:mod:`benchmarks.report_s3`): one tree in a bucket of a local S3 API server,
with the requests each step made (``benchmarks/results/s3.json``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from benchmarks.harness import NaiveScan, free_port, p50_p95, run_cli, timed, wait_until_serving
from benchmarks.scale import make_tree
from lenslet_core.rollup import decode_rollup
from lenslet_core.search import SearchIndex

QUICK = [10_000, 50_000]
FULL = [10_000, 50_000, 100_000, 500_000]
RESULTS = Path(__file__).parent / "results" / "scale.json"
S3_RESULTS = RESULTS.with_name("s3.json")
DOCS = Path(__file__).parent.parent / "docs"


def scandir_walk(root: Path) -> int:
    """The baseline of an unchanged re-index: list every folder, stat every entry."""
    seen, stack = 0, [str(root)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                entry.stat(follow_symlinks=False)
                seen += 1
                if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                    stack.append(entry.path)
    return seen


def scandir_walk_fd(root: Path) -> int:
    """:func:`scandir_walk` through each folder's descriptor (``fstatat``, as lenslet lists
    local folders): a stricter baseline, 10-15% faster on this machine."""
    seen, stack = 0, [str(root)]
    while stack:
        folder = stack.pop()
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with os.scandir(fd) as it:
                for entry in it:
                    entry.stat(follow_symlinks=False)
                    seen += 1
                    if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                        stack.append(os.path.join(folder, entry.name))
        finally:
            os.close(fd)
    return seen


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def served_shares(metrics: str) -> dict[str, float]:
    """From ``/metrics``: the share of folder pages answered from a manifest (not rebuilt) and
    of thumbnails answered from one already made."""

    def count(name: str, label: str) -> float:
        found = re.search(rf"^{name}_total{{[^}}]*\"{label}\"}} (\S+)$", metrics, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    manifest = count("lenslet_folder_pages", "manifest")
    rebuilt = count("lenslet_folder_pages", "rebuilt")
    served = count("lenslet_thumbnails", "served")
    made = count("lenslet_thumbnails", "made") + count("lenslet_thumbnails", "pending")
    return {
        "folders_from_manifest": manifest / max(manifest + rebuilt, 1),
        "thumbnail_hits": served / max(served + made, 1),
    }


def serve_measures(root: Path, tree: Any) -> dict[str, Any]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lenslet_cli",
            "serve",
            str(root),
            "--port",
            str(port),
            "--no-index",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    out: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            wait_until_serving(http)
            k1 = {"path": tree.k1}
            # The last page of the largest folder (page 0 when it has one page only).
            pages = http.get("/folders", params={"path": tree.huge}).json()["pageCount"]
            page = {"path": tree.huge, "page": str(pages - 1)}
            out["page_items"] = len(http.get("/folders", params=page).json()["items"])
            for params in (k1, page):  # warm-up: the manifests read once
                http.get("/folders", params=params)
            http.get("/search", params={"q": "family"})
            out["serve_rss"] = rss(proc.pid)
            out["serve_fds"] = open_files(proc.pid)
            for name, route, params in (
                ("folders_1k", "/folders", k1),
                ("folders_page", "/folders", page),
                ("search_common", "/search", {"q": "family", "limit": "100"}),
                ("search_rare", "/search", {"q": "zebra", "limit": "100"}),
                ("item", "/item", {"path": f"{tree.k1}/IMG_000005.jpg"}),
            ):
                times = timed(functools.partial(http.get, route, params=params), 200)
                out[name] = p50_p95(times)
            # Thumbnails of 200 different images of the 1k folder.
            thumbs = iter(
                f"{tree.k1}/{i['name']}" for i in http.get("/folders", params=k1).json()["items"]
            )
            out["thumb"] = p50_p95(
                timed(lambda: http.get("/thumb", params={"path": next(thumbs)}), 200)
            )
            # A tag edit, searchable (the rollup overlay: no rebuild, no wait for a write).
            word = f"edited{time.time_ns()}"
            started = time.perf_counter()
            http.put("/item", params={"path": f"{tree.k1}/IMG_000003.jpg"}, json={"tags": [word]})
            while not http.get("/search", params={"q": word}).json()["items"]:
                time.sleep(0.01)
            out["tag_to_search"] = time.perf_counter() - started
            # A new image copied in, listed with its thumbnail (the watcher, an index job).
            source = next((root / tree.k1).glob("IMG_000000.jpg"))
            started = time.perf_counter()
            shutil.copy(source, root / tree.k1 / "NEW_0001.jpg")
            while True:
                items = http.get("/folders", params=k1).json()["items"]
                if any(i["name"] == "NEW_0001.jpg" and i["hasThumb"] for i in items):
                    break
                if time.perf_counter() - started > 120:
                    raise RuntimeError("the new image was not listed within 2 minutes")
                time.sleep(0.05)
            out["new_image_listed"] = time.perf_counter() - started
            out["serve_fds_end"] = open_files(proc.pid)
            out["queue_peak"] = http.get("/health").json()["jobs"]["peak"]
            out.update(served_shares(http.get("/metrics").text))
    finally:
        proc.terminate()
        proc.wait(60)
    return out


def measure(size: int, work: Path) -> dict[str, Any]:
    root = work / f"tree{size}"
    started = time.perf_counter()
    tree = make_tree(root, size)
    result: dict[str, Any] = {"items": size, "folders": tree.folders, "sidecars": tree.sidecars}
    result["generate"] = time.perf_counter() - started
    seconds, peak, out = run_cli("index", str(root), "--json", "--no-progress")
    result["index"], result["index_rss"] = seconds, peak
    result["index_report"] = json.loads(out)["items"] if out.strip() else None
    seconds, peak, _ = run_cli("index", str(root), "--json", "--no-progress")
    result["reindex"], result["reindex_rss"] = seconds, peak
    result["walk"] = min(timed(lambda: scandir_walk(root), 3))
    rollup = (root / "_rollup.json").read_bytes()
    result["rollup_bytes"] = len(rollup)
    items, _, _ = decode_rollup(rollup)
    started = time.perf_counter()
    index = SearchIndex(items)
    result["search_build"] = time.perf_counter() - started
    naive = NaiveScan(items)
    for term in ("family", "zebra"):
        result[f"naive_{term}"] = p50_p95(timed(functools.partial(naive.search, term), 20))
        result[f"index_{term}"] = p50_p95(timed(functools.partial(index.search, term), 200))
    result.update(serve_measures(root, tree))
    shutil.rmtree(root, ignore_errors=True)
    return result


def ms(value: float) -> str:
    return f"{value * 1000:.2f}"


Row = tuple[str, Callable[[dict[str, Any]], str], Any, Any]


def table(results: list[dict[str, Any]]) -> str:
    rows: list[Row] = [
        ("first index, items/s", lambda r: f"{r['items'] / r['index']:,.0f}", "", ""),
        ("first index, peak RSS", lambda r: f"{r['index_rss'] / 2**20:,.0f} MiB", "", ""),
        (
            "unchanged re-index",
            lambda r: f"{r['reindex']:.2f} s",
            lambda r: f"{r['walk']:.2f} s scandir walk",
            lambda r: f"{r['reindex'] / r['walk']:.1f}x",
        ),
        ("re-index peak RSS", lambda r: f"{r['reindex_rss'] / 2**20:,.0f} MiB", "", ""),
        ("rollup size", lambda r: f"{r['rollup_bytes'] / 2**20:.1f} MiB", "", ""),
        ("search index build", lambda r: f"{r['search_build']:.2f} s", "", ""),
        ("serve RSS after warm-up", lambda r: f"{r['serve_rss'] / 2**20:,.0f} MiB", "", ""),
        ("/folders 1k p50/p95 ms", lambda r: "/".join(map(ms, r["folders_1k"])), "", ""),
        (
            "/folders page p50/p95 ms",
            lambda r: "/".join(map(ms, r["folders_page"])) + f" ({r.get('page_items', '?')})",
            "",
            "(items on the page)",
        ),
        (
            "/search common p50/p95 ms",
            lambda r: "/".join(map(ms, r["search_common"])),
            lambda r: "naive " + "/".join(map(ms, r["naive_family"])),
            lambda r: f"index {'/'.join(map(ms, r['index_family']))}",
        ),
        (
            "/search rare p50/p95 ms",
            lambda r: "/".join(map(ms, r["search_rare"])),
            lambda r: "naive " + "/".join(map(ms, r["naive_zebra"])),
            lambda r: f"index {'/'.join(map(ms, r['index_zebra']))}",
        ),
        ("/item p50/p95 ms", lambda r: "/".join(map(ms, r["item"])), "", ""),
        ("/thumb p50/p95 ms", lambda r: "/".join(map(ms, r["thumb"])), "", "200 images"),
        (
            "folder pages from a manifest",
            lambda r: f"{r['folders_from_manifest']:.0%}",
            "",
            "PRD: ≥ 95%",
        ),
        ("thumbnail cache hits", lambda r: f"{r['thumbnail_hits']:.0%}", "", "PRD: > 85%"),
        ("tag edit to searchable", lambda r: f"{r['tag_to_search'] * 1000:.0f} ms", "", ""),
        ("new image listed + thumb", lambda r: f"{r['new_image_listed']:.1f} s", "", ""),
        (
            "server open files",
            lambda r: f"{r['serve_fds']} → {r['serve_fds_end']}",
            "",
            "after warm-up → after ~1,200 requests, an edit and a new image",
        ),
        ("job queue peak", lambda r: str(r["queue_peak"]), "", "bounded: 10,000"),
    ]
    sizes = [f"{r['items']:,}" for r in results]
    lines = ["| measure | " + " | ".join(sizes) + " | baseline (largest) | ratio / note |"]
    lines.append("|---" * (len(sizes) + 3) + "|")
    for name, value, base, ratio in rows:
        cells = [value(r) for r in results]
        last = results[-1]
        base_cell = base(last) if callable(base) else base
        ratio_cell = ratio(last) if callable(ratio) else ratio
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {base_cell} | {ratio_cell} |")
    return "\n".join(lines)


def curve_svg(results: list[dict[str, Any]]) -> str:
    """Items against seconds (index, re-index) and against memory (index, serve), two panels."""
    width, height, pad = 720, 300, 50
    xs = [r["items"] for r in results]
    panels = [
        ("seconds", [("first index", "index", "#1f77b4"), ("re-index", "reindex", "#ff7f0e")], 1),
        (
            "MiB",
            [("index peak RSS", "index_rss", "#2ca02c"), ("serve RSS", "serve_rss", "#d62728")],
            2**20,
        ),
    ]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width * 2}" height="{height}" '
        'font-family="sans-serif" font-size="12">'
    ]
    for index, (unit, series, scale) in enumerate(panels):
        left = index * width
        top = max(r[key] / scale for r in results for _, key, _ in series) or 1
        right = max(xs) or 1

        def point(
            x: float, y: float, left: int = left, top: float = top, right: int = right
        ) -> str:
            px = left + pad + (x / right) * (width - 2 * pad)
            py = height - pad - (y / top) * (height - 2 * pad)
            return f"{px:.1f},{py:.1f}"

        parts.append(
            f'<line x1="{left + pad}" y1="{height - pad}" x2="{left + width - pad}" '
            f'y2="{height - pad}" stroke="black"/><line x1="{left + pad}" y1="{pad}" '
            f'x2="{left + pad}" y2="{height - pad}" stroke="black"/>'
        )
        parts.append(
            f'<text x="{left + width / 2}" y="{height - 10}" text-anchor="middle">images</text>'
            f'<text x="{left + 10}" y="{pad - 15}">{unit} (max {top:,.1f})</text>'
        )
        for x in xs:
            px = point(x, 0).split(",")[0]
            parts.append(
                f'<text x="{px}" y="{height - pad + 15}" text-anchor="middle">{x:,}</text>'
            )
        for n, (label, key, colour) in enumerate(series):
            line = " ".join(point(r["items"], r[key] / scale) for r in results)
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{line}"/>'
            )
            parts.append(
                f'<text x="{left + pad + 10}" y="{pad + 15 * n}" fill="{colour}">{label}</text>'
            )
    parts.append("</svg>")
    return "\n".join(parts)


def write_docs(results: list[dict[str, Any]], text: str, s3_text: str | None) -> None:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    when = time.strftime("%Y-%m-%d")
    if results:
        dates = {r.get("date", "2026-11-26") for r in results}  # the first runs had no date
        if len(dates) > 1:
            when = "; ".join(f"{r['items']:,} on {r.get('date', '2026-11-26')}" for r in results)
        (DOCS / "scale.svg").write_text(curve_svg(results) + "\n")
        _write_block(
            "scale",
            f"## Scale runs\n\n`python -m benchmarks.report` on {machine}, {when}:\n\n"
            f"{text}\n\n![cost curves](scale.svg)",
        )
    if s3_text is not None:
        _write_block(
            "s3",
            f"### On S3\n\n`python -m benchmarks.report` on {machine}, {when}:\n\n{s3_text}",
        )


def _write_block(name: str, text: str) -> None:
    """Put ``text`` between the ``<!-- name:begin -->`` and ``<!-- name:end -->`` marks of
    docs/performance.md (at its end the first time)."""
    page = DOCS / "performance.md"
    doc = page.read_text()
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{text}\n{end}"
    if begin in doc:
        doc = doc[: doc.index(begin)] + block + doc[doc.index(end) + len(end) :]
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    page.write_text(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="10k, 50k, 100k and 500k images")
    parser.add_argument(
        "--sizes", type=int, nargs="*", help="these sizes instead (none: the S3 run only)"
    )
    parser.add_argument("--docs", action="store_true", help="write docs/performance.md too")
    parser.add_argument(
        "--add",
        action="store_true",
        help="keep the other sizes of the last results (each row says its own date)",
    )
    parser.add_argument("--work", type=Path, help="where the trees are made (default: /tmp)")
    parser.add_argument(
        "--s3",
        type=int,
        metavar="SIZE",
        help="images in the S3 run (default: 2,000; 10,000 with --full; 0: no S3 run)",
    )
    parser.add_argument(
        "--s3-latency",
        type=float,
        default=0.0,
        metavar="MS",
        help="hold each S3 answer back this long, as a real bucket's time to first byte",
    )
    args = parser.parse_args()
    sizes = args.sizes if args.sizes is not None else (FULL if args.full else QUICK)
    s3_size = args.s3 if args.s3 is not None else (10_000 if args.full else 2_000)
    results = []
    s3_result = None
    with tempfile.TemporaryDirectory(dir=args.work) as work:
        for size in sizes:
            print(f"scale run: {size:,} images ...", file=sys.stderr, flush=True)
            result = measure(size, Path(work))
            result["date"] = time.strftime("%Y-%m-%d")
            results.append(result)
        if s3_size:
            from benchmarks.report_s3 import measure_s3

            print(f"S3 run: {s3_size:,} images ...", file=sys.stderr, flush=True)
            s3_result = measure_s3(s3_size, Path(work), args.s3_latency)
    if args.add and results and RESULTS.exists():
        new = {r["items"] for r in results}
        kept = [r for r in json.loads(RESULTS.read_text()) if r["items"] not in new]
        results = sorted(kept + results, key=lambda r: r["items"])
    RESULTS.parent.mkdir(exist_ok=True)
    text = s3_text = None
    if results:
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        text = table(results)
        print(text)
    if s3_result is not None:
        from benchmarks.report_s3 import s3_table

        S3_RESULTS.write_text(json.dumps(s3_result, indent=2) + "\n")
        s3_text = s3_table(s3_result)
        print(s3_text)
    if args.docs:
        write_docs(results, text or "", s3_text)


if __name__ == "__main__":
    main()
