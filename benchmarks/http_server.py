"""A server for the HTTP benchmarks: lenslet's app, and beside it bare Starlette routes that
answer the same bytes from memory (the baseline), in one uvicorn process.

    python -m benchmarks.http_server ROOT PORT
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator

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


if __name__ == "__main__":
    uvicorn.run(build(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
