"""Routing: the path a mounted app routes by, and lenslet's router choosing what Starlette's
router chooses for any path and method, with the exact paths looked up first."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.routing import Router as StarletteRouter
from starlette.types import Message, Scope

from lenslet_http.routing import Exact, Router, route_path

_SEGMENTS = st.lists(st.sampled_from(["", "gallery", "galleryx", "a", "item", "/"]), max_size=4)


@given(_SEGMENTS.map("/".join), _SEGMENTS.map("/".join))
def test_a_path_inside_a_mounted_app_is_what_starlettes_router_reads(path: str, root: str) -> None:
    scope = {"type": "http", "path": path, "root_path": root}
    assert route_path(scope) == get_route_path(scope)


def _answering(name: str) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint that says who it is."""

    async def endpoint(request: Request) -> Response:
        params = ",".join(f"{k}={v}" for k, v in sorted(request.path_params.items()))
        return PlainTextResponse(f"{name} {request.method} {params}")

    return endpoint


def _routes() -> list[Route | Mount]:
    """Exact routes first (two for one path: the first wins), then a route with a parameter
    that shadows an exact route listed after it, and a mount."""
    return [
        Exact("/thumb", _answering("thumb"), methods=["GET"]),
        Exact("/item", _answering("item"), methods=["GET", "PUT"]),
        Exact("/thumb", _answering("second thumb"), methods=["GET", "POST"]),
        Exact("/any", _answering("any")),
        Route("/{name}", _answering("named"), methods=["GET"]),
        Exact("/late", _answering("late"), methods=["GET"]),
        Mount("/ui", routes=[Route("/{file}", _answering("ui"))]),
    ]


async def _ask(app: object, scope: Scope) -> tuple[int, bytes, bytes]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(dict(scope), receive, send)  # type: ignore[operator]
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    headers = dict(start["headers"])
    return start["status"], body, headers.get(b"allow", b"") + headers.get(b"location", b"")


_PATHS = st.sampled_from(
    ["/thumb", "/item", "/any", "/late", "/other", "/thumb/", "/item/", "/ui/x.js", "/ui",
     "/", "", "/gallery/thumb", "/galleryx/item", "/gallery", "/gallery/"]
)  # fmt: skip
_METHODS = st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE"])


@settings(max_examples=200)
@given(_PATHS, _METHODS, st.sampled_from(["", "/gallery"]))
def test_lenslets_router_answers_what_starlettes_answers(path: str, method: str, root: str) -> None:
    scope: Scope = {
        "type": "http", "method": method, "path": path, "root_path": root, "query_string": b"",
        "headers": [(b"host", b"test")], "scheme": "http", "server": ("test", 80),
    }  # fmt: skip
    ours = anyio.run(_ask, Router(_routes()), scope)
    theirs = anyio.run(_ask, StarletteRouter(_routes()), scope)
    assert ours == theirs


def test_only_the_leading_exact_routes_are_looked_up() -> None:
    router = Router(_routes())
    assert sorted(router.exact) == ["/any", "/item", "/thumb"]
    assert router.exact["/thumb"].methods == {"GET", "HEAD"}
