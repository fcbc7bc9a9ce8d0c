"""A server for the HTTP benchmarks: lenslet's app, and beside it bare Starlette routes that
answer the same bytes from memory (the baseline), in one uvicorn process.

    python -m benchmarks.http_server ROOT PORT
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from lenslet_core import Lenslet, Settings
from lenslet_http import create_app

#: path -> (body, media type), filled at start-up from lenslet's own answers
BARE: dict[str, tuple[bytes, str]] = {}


def build(root: str) -> Starlette:
    lens = Lenslet(root, Settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with lens:
            yield

    async def bare(request: Request) -> Response:
        body, media = BARE[request.path_params["name"]]
        return Response(body, media_type=media, headers={"ETag": '"bare"'})

    async def keep(request: Request) -> Response:
        BARE[request.path_params["name"]] = (await request.body(), request.headers["x-media"])
        return Response(b"ok")

    return Starlette(
        routes=[
            Route("/bare/{name}", bare, methods=["GET"]),
            Route("/bare/{name}", keep, methods=["PUT"]),
            Mount("/", create_app(lens)),
        ],
        lifespan=lifespan,
    )


@contextlib.contextmanager
def running(root: str) -> Iterator[str]:
    """This server as a process of its own on a free loopback port, once it answers: its URL.
    (Another process: the load generator and the server do not share one interpreter.)"""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.http_server", root, str(port)],
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
    uvicorn.run(build(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
