"""A server for the HTTP benchmarks: lenslet's app, and beside it bare Starlette routes that
answer the same bytes with the same headers from memory (the baseline), in one uvicorn
process; and the gallery both HTTP benchmarks serve (a 1,000-image folder, an image with a
sidecar, a 100,000-image rollup).

Requests are split by path between two apps: ``/bare/...`` to a bare Starlette app, anything
else to lenslet's app as ``lenslet serve`` runs it (at the root, not mounted in another app).

    python -m benchmarks.http_server ROOT PORT [PARSER]

PARSER is uvicorn's HTTP implementation: ``httptools`` (with uvloop, as ``lenslet serve`` runs
when they are installed, the default) or ``h11`` (pure Python, on asyncio's loop).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from tests.imagegen import jpeg_bytes, write

from benchmarks.harness import synthetic
from lenslet_core import Lenslet, Settings
from lenslet_core.manifest import ItemEntry, paginate
from lenslet_core.paths import index_name
from lenslet_core.rollup import encode_rollup
from lenslet_http import create_app

#: path -> (body, media type, headers), filled at start-up from lenslet's own answers
BARE: dict[str, tuple[bytes, str, dict[str, str]]] = {}
#: Headers of lenslet's answer the bare route does not copy: the server's own, and those
#: Starlette's ``Response`` makes from the body and the media type.
NOT_COPIED = frozenset(("date", "server", "content-length", "content-type"))


def build(root: str) -> ASGIApp:
    lens = Lenslet(root, Settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with lens:
            yield

    async def bare(request: Request) -> Response:
        body, media, headers = BARE[request.path_params["name"]]
        return Response(body, media_type=media, headers=headers)

    async def keep(request: Request) -> Response:
        headers = orjson.loads(request.headers["x-headers"])
        BARE[request.path_params["name"]] = (await request.body(), headers.pop("content-type"),
                                              headers)  # fmt: skip
        return Response(b"ok")

    baseline = Starlette(
        routes=[
            Route("/bare/{name}", bare, methods=["GET"]),
            Route("/bare/{name}", keep, methods=["PUT"]),
        ],
        lifespan=lifespan,  # opens the gallery both apps serve
    )
    gallery = create_app(lens)

    async def split(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or scope.get("path", "").startswith("/bare/"):
            await baseline(scope, receive, send)
        else:
            await gallery(scope, receive, send)

    return split


#: name -> (lenslet's route, its query): each has a bare route /bare/NAME with its answer.
CASES = [
    ("folders", "/folders", {"path": "big"}),
    ("item", "/item", {"path": "one/x.jpg"}),
    ("thumb", "/thumb", {"path": "one/x.jpg"}),
    ("search", "/search", {"q": "sunset", "limit": "50"}),
]


def make_gallery(root: Path) -> None:
    """The benchmarks' gallery: a 1,000-item folder, an 800x600 image with a sidecar, and a
    rollup of 100,000 images with their folders' manifests (no image files: search needs
    none)."""
    small = jpeg_bytes(64, 48)
    for n in range(1000):
        write(root / "big" / f"IMG_{n:04d}.jpg", small)
    write(root / "one" / "x.jpg", jpeg_bytes(800, 600))
    write(root / "one" / "x.jpg.json", b'{"tags": ["sea"], "notes": "benchmark"}')
    items = synthetic(100_000)
    (root / "_rollup.json").write_bytes(encode_rollup(items, "2026-01-01T00:00:00Z"))
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


def warm(url: str) -> None:
    """What a client does first (list, then thumbnails), and the bare routes' answers taken
    from lenslet's own: the same body and headers (an answer's caching headers are part of
    it: a bare route serving thumbnails well sends them too)."""
    with httpx.Client(base_url=url, timeout=60) as http:
        http.get("/folders", params={"path": "big"})  # builds the manifest once
        http.get("/folders", params={"path": "one"})  # a client lists before its thumbs
        http.get("/thumb", params={"path": "one/x.jpg", "wait": "10"})
        http.get("/search", params={"q": "warm"})
        for name, route, params in CASES:
            # As wrk asks (no Accept-Encoding): the bare route answers what lenslet sends it.
            answer = http.get(route, params=params, headers={"Accept-Encoding": "identity"})
            assert answer.status_code == 200, answer.text
            copied = {k: v for k, v in answer.headers.items() if k not in NOT_COPIED}
            copied["content-type"] = answer.headers["content-type"]
            headers = {"x-headers": orjson.dumps(copied).decode()}
            http.put(f"/bare/{name}", content=answer.content, headers=headers)


@contextlib.contextmanager
def running(root: str, *, cpu: int | None = None, parser: str = "httptools") -> Iterator[str]:
    """This server as a process of its own on a free loopback port, once it answers: its URL.
    (Another process: the load generator and the server do not share one interpreter;
    ``cpu``: pinned to that core, so a load generator on another core does not share it.)"""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pinned = ["taskset", "-c", str(cpu)] if cpu is not None else []
    proc = subprocess.Popen(
        [*pinned, sys.executable, "-m", "benchmarks.http_server", root, str(port), parser],
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "the server stopped"
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    parser = sys.argv[3] if len(sys.argv) > 3 else "httptools"
    loop = "asyncio" if parser == "h11" else "auto"
    uvicorn.run(
        build(sys.argv[1]),
        host="127.0.0.1",
        port=int(sys.argv[2]),
        log_level="warning",
        http=parser,
        loop=loop,
    )
