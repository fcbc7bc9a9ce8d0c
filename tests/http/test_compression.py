"""The one gzip path, over a real Starlette app and httpx."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Mount, Route

from lenslet_http.compression import Compression

pytestmark = pytest.mark.anyio

BIG = orjson.dumps({"items": [{"name": f"{n:05d}.jpg", "w": 640} for n in range(2000)]})


def app() -> tuple[Compression, list[int]]:
    made: list[int] = []

    async def page(request: Request) -> Response:
        made.append(1)
        tag = request.query_params.get("tag", "b1")
        return Response(BIG, media_type="application/json", headers={"ETag": f'"{tag}"'})

    async def hits(request: Request) -> Response:
        n = int(request.query_params.get("n", "2000"))
        return Response(BIG[: n * 20] + b"]}", media_type="application/json")  # no ETag

    async def small(request: Request) -> Response:
        return Response(b'{"ok":true}', media_type="application/json")

    async def image(request: Request) -> Response:
        return Response(b"\xff\xd8" + b"x" * 5000, media_type="image/jpeg")

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[bytes]:
            yield b"data: one\n\n"
            yield b"data: two\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    routes = [Route(p, f) for p, f in [("/page", page), ("/hits", hits), ("/small", small),
                                        ("/image", image), ("/events", events)]]  # fmt: skip
    return Compression(Starlette(routes=routes), skip=("/image",)), made


async def fetch(asgi: Compression, url: str, gzip_ok: bool = True) -> httpx.Response:
    headers = {"Accept-Encoding": "gzip" if gzip_ok else "identity"}
    transport = httpx.ASGITransport(app=asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(url, headers=headers)


async def test_json_is_gzipped_for_clients_that_accept_it() -> None:
    asgi, _ = app()
    answer = await fetch(asgi, "/page")
    assert answer.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in answer.headers["vary"]
    assert int(answer.headers["content-length"]) < len(BIG) // 4
    assert answer.content == BIG  # httpx decodes it: the same bytes
    plain = await fetch(asgi, "/page", gzip_ok=False)
    assert "content-encoding" not in plain.headers
    assert "Accept-Encoding" in plain.headers["vary"]  # a cache must keep both apart
    assert plain.content == BIG


async def test_a_representation_is_compressed_once() -> None:
    asgi, made = app()
    first = await fetch(asgi, "/page")
    second = await fetch(asgi, "/page")
    assert first.content == second.content == BIG
    assert len(made) == 2  # the route answered twice ...
    assert len(asgi._kept) == 1  # ... and its bytes were compressed once
    await fetch(asgi, "/page?tag=b2")  # another build: compressed anew, kept beside
    assert len(asgi._kept) == 2
    kept = next(iter(asgi._kept.values()))
    assert gzip.decompress(kept) == BIG


async def test_an_answer_without_an_etag_is_kept_by_its_bytes() -> None:
    asgi, _ = app()
    first = await fetch(asgi, "/hits")
    second = await fetch(asgi, "/hits")
    assert first.headers["content-encoding"] == second.headers["content-encoding"] == "gzip"
    assert first.content == second.content == BIG[: 2000 * 20] + b"]}"
    assert len(asgi._kept) == 1  # the same bytes: compressed once
    other = await fetch(asgi, "/hits?n=1000")  # other hits: other bytes, compressed anew
    assert other.content == BIG[: 1000 * 20] + b"]}"
    assert len(asgi._kept) == 2


async def test_small_answers_images_and_streams_pass_through() -> None:
    asgi, _ = app()
    small = await fetch(asgi, "/small")
    assert "content-encoding" not in small.headers
    assert "vary" not in small.headers  # never compressed: it does not vary
    assert small.json() == {"ok": True}
    image = await fetch(asgi, "/image")
    assert "content-encoding" not in image.headers
    assert image.content.startswith(b"\xff\xd8")
    events = await fetch(asgi, "/events")
    assert "content-encoding" not in events.headers
    assert events.text == "data: one\n\ndata: two\n\n"


async def test_a_skipped_route_is_passed_by_whatever_it_answers() -> None:
    page = orjson.dumps({"big": "x" * 5000})

    async def json_image(request: Request) -> Response:
        return Response(page, media_type="application/json")

    asgi = Compression(Starlette(routes=[Route("/image", json_image)]), skip=("/image",))
    answer = await fetch(asgi, "/image")
    assert "content-encoding" not in answer.headers
    assert "vary" not in answer.headers
    assert answer.content == page
    mounted = Starlette(routes=[Mount("/gallery", asgi)])
    transport = httpx.ASGITransport(app=mounted)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        inside = await client.get("/gallery/image", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in inside.headers  # its path in the app, not the host's
    assert inside.content == page
