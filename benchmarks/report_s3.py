"""The S3 part of the scale report: the same tree in a bucket of a real S3 API server on
loopback (moto, in a process of its own, logging every request it answers).

What counts on S3 is requests, so next to the times this reports how many of each kind every
step made. The baselines, with s3fs on the same server in the same run: a bare recursive
listing of the bucket (what an unchanged re-index must at least do); a bare GET of every image
at lenslet's concurrency (16 at a time, what a first index must at least read); and the same
GETs with one PUT each of a thumbnail-sized object (what a first index must at least do: it
writes each image's thumbnail too). moto answers from memory in Python, so its times say more
about moto than about S3; the request counts carry over to a real bucket as they are.
"""

from __future__ import annotations

import collections
import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from benchmarks.harness import free_port, p50_p95, run_cli, timed, wait_until_serving
from benchmarks.scale import make_tree
from lenslet_core.filesystem import REMOTE_IO_CONCURRENCY
from lenslet_core.paths import is_image_name
from lenslet_core.s3 import POOL_CONNECTIONS

BUCKET = "scale"
PREFIX = f"{BUCKET}/gallery"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _start_server(latency_ms: float = 0.0) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.s3server", "0", str(latency_ms)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "s3 server on 127.0.0.1:PORT"
    proc.stdout.close()
    return proc, "http://" + line.rsplit(" ", 1)[-1].strip()


def _requests(endpoint: str) -> dict[str, int]:
    """The requests since the last call, by kind (LIST, GET, HEAD, PUT, DELETE), and clear."""
    log = httpx.get(f"{endpoint}/_requests").json()
    httpx.delete(f"{endpoint}/_requests")
    kinds: collections.Counter[str] = collections.Counter()
    for method, path, query in log:
        listing = method == "GET" and path.strip("/").count("/") == 0 and "list-type" in query
        kinds["LIST" if listing else method] += 1
    return dict(sorted(kinds.items()))


def _upload(root: Path, endpoint: str) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=endpoint)
    fs.mkdir(BUCKET)
    files = [p for p in root.rglob("*") if p.is_file() and ".pool" not in p.parts]
    fs.put(
        [str(p) for p in files],
        [f"{PREFIX}/{p.relative_to(root).as_posix()}" for p in files],
    )


def _bare_listing(endpoint: str) -> float:
    import s3fs

    def walk() -> int:
        fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
        return len(fs.find(PREFIX, detail=True))

    return min(timed(walk, 3))


def _bare_loops(endpoint: str) -> tuple[float, float]:
    """Seconds for a bare GET of every image at lenslet's concurrency, and for the same GETs
    with a PUT each of a thumbnail-sized object (under another prefix, deleted after)."""
    import s3fs

    # as many connections as lenslet keeps: with botocore's default of 10, "16 at a time"
    # would be 10
    pool = {"max_pool_connections": POOL_CONNECTIONS}
    # max_concurrency=1: one GET an object, as lenslet reads. With s3fs's default (10) each
    # cat_file first HEADs the object for its size, two requests an image.
    fs = s3fs.S3FileSystem(
        endpoint_url=endpoint, skip_instance_cache=True, config_kwargs=pool, max_concurrency=1
    )
    images = [p for p in fs.find(PREFIX) if is_image_name(p.rsplit("/", 1)[-1])]
    batch = REMOTE_IO_CONCURRENCY
    thumb = os.urandom(1500)  # about what a 64x48 image's WebP thumbnail weighs
    bare = f"{BUCKET}/bare"

    def gets() -> None:
        fs.cat(images, batch_size=batch)

    def gets_and_puts() -> None:
        fs.cat(images, batch_size=batch)
        fs.pipe({f"{bare}/{n}.thumbnail": thumb for n in range(len(images))}, batch_size=batch)

    get_only = min(timed(gets, 2))
    with_puts = min(timed(gets_and_puts, 2))
    fs.rm(bare, recursive=True)
    return get_only, with_puts


def measure_s3(size: int, work: Path, latency_ms: float = 0.0) -> dict[str, Any]:
    """First index, unchanged re-index and ``/folders`` of a ``size``-image tree in a bucket
    (each S3 answer held back ``latency_ms``, as a real bucket's time to first byte)."""
    os.environ.update(CREDENTIALS)
    proc, endpoint = _start_server(latency_ms)
    url = f"s3://{PREFIX}"
    flags = ("--endpoint-url", endpoint, "--json", "--no-progress")
    where = "moto on loopback" + (f", {latency_ms:g} ms a request" if latency_ms else "")
    out: dict[str, Any] = {"items": size, "endpoint": where}
    try:
        tree = make_tree(work / f"s3tree{size}", size)
        out["folders"] = tree.folders
        _upload(tree.root, endpoint)
        _requests(endpoint)
        out["index"], _, _ = run_cli("index", url, *flags)
        out["index_requests"] = _requests(endpoint)
        out["reindex"], _, _ = run_cli("index", url, *flags)
        out["reindex_requests"] = _requests(endpoint)
        out["listing"] = _bare_listing(endpoint)
        out["bare_gets"], out["bare_gets_puts"] = _bare_loops(endpoint)
        _requests(endpoint)
        out.update(_serve(url, endpoint, tree.k1))
    finally:
        proc.terminate()
        proc.wait(60)
    return out


def _serve(url: str, endpoint: str, k1: str) -> dict[str, Any]:
    port = free_port()
    command = [sys.executable, "-m", "lenslet_cli", "serve", url, "--port", str(port)]
    command += ["--no-index", "--endpoint-url", endpoint]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            wait_until_serving(http)
            http.get("/folders", params={"path": k1})  # its manifest read once
            _requests(endpoint)
            get = functools.partial(http.get, "/folders", params={"path": k1})
            out["folders_1k"] = p50_p95(timed(get, 200))
            out["folders_requests"] = _requests(endpoint)
    finally:
        server.terminate()
        server.wait(60)
    return out


def s3_table(result: dict[str, Any]) -> str:
    def counts(kinds: dict[str, int]) -> str:
        return ", ".join(f"{n:,} {kind}" for kind, n in kinds.items()) or "none"

    size = result["items"]
    ratio = result["reindex"] / result["listing"]
    lines = [
        f"| measure ({size:,} images, {result['endpoint']}) | result | requests |",
        "|---|---|---|",
        f"| first index | {result['index']:.1f} s ({size / result['index']:,.0f} items/s) "
        f"| {counts(result['index_requests'])} |",
    ]
    if "bare_gets" in result:
        gets, puts = result["bare_gets"], result["bare_gets_puts"]
        lines += [
            f"| bare s3fs GET of every image, {REMOTE_IO_CONCURRENCY} at a time | {gets:.1f} s: "
            f"the first index runs at {gets / result['index']:.2f}x its speed | |",
            f"| the same GETs and a PUT each (a thumbnail's worth) | {puts:.1f} s: the first "
            f"index runs at {puts / result['index']:.2f}x its speed | |",
        ]
    lines += [
        f"| unchanged re-index | {result['reindex']:.2f} s = {ratio:.1f}x a bare s3fs listing "
        f"({result['listing']:.2f} s) | {counts(result['reindex_requests'])} |",
        f"| `/folders` 1k p50/p95, 200 calls | "
        f"{'/'.join(f'{v * 1000:.2f}' for v in result['folders_1k'])} ms "
        f"| {counts(result['folders_requests'])} |",
    ]
    return "\n".join(lines)
