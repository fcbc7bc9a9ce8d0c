"""Routing: the path a mounted app routes by, and lenslet's router choosing what Starlette's
router chooses for any path and method, with the exact paths looked up first."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette._utils import get_route_path
from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.routing import Router as StarletteRouter
from starlette.types import Message, Receive, Scope, Send

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


class _Refused(Exception):
    pass


async def _failing(request: Request) -> Response:
    if request.method == "PUT":
        raise HTTPException(409, "taken")
    raise _Refused(request.method)


def _sync(request: Request) -> Response:
    return PlainTextResponse(f"sync {request.method}")


async def _asgi(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse(f"asgi {scope['method']}")(scope, receive, send)


class _AsgiApp:
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _asgi(scope, receive, send)


async def _refused(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(f"refused {exc} at {request.url.path}", status_code=422)


_BY_METHOD = {"GET": _answering("both get"), "PUT": _failing}


async def _both(request: Request) -> Response:
    """What Starlette calls for ``/both``: the endpoint of the request's method."""
    return await _BY_METHOD["GET" if request.method == "HEAD" else request.method](request)


def _routes() -> list[Route | Mount]:
    """Exact routes first (two for one path: the first wins; endpoints that raise, a sync one
    and ASGI apps among them), then a route with a parameter that shadows an exact route
    listed after it, and a mount."""
    return [
        Exact("/thumb", _answering("thumb"), methods=["GET"]),
        Exact("/item", _answering("item"), methods=["GET", "PUT"]),
        Exact("/thumb", _answering("second thumb"), methods=["GET", "POST"]),
        Exact("/any", _answering("any")),
        Exact("/fails", _failing, methods=["GET", "PUT"]),
        Exact("/both", _both, methods=["GET", "PUT"], by_method=_BY_METHOD),
        Exact("/sync", _sync, methods=["GET"]),
        Exact("/asgi", _AsgiApp()),
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
    ["/thumb", "/item", "/any", "/late", "/fails", "/both", "/sync", "/asgi", "/other", "/thumb/",
     "/item/", "/ui/x.js", "/ui", "/", "", "/gallery/thumb", "/galleryx/item", "/gallery",
     "/gallery/"]
)  # fmt: skip
_METHODS = st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE"])


@settings(max_examples=200)
@given(_PATHS, _METHODS, st.sampled_from(["", "/gallery"]))
def test_lenslets_router_answers_what_starlettes_answers(path: str, method: str, root: str) -> None:
    scope: Scope = {
        "type": "http", "method": method, "path": path, "root_path": root, "query_string": b"",
        "headers": [(b"host", b"test")], "scheme": "http", "server": ("test", 80),
    }  # fmt: skip
    handlers = {_Refused: _refused}  # and Starlette's own for HTTPException
    ours = anyio.run(_ask, ExceptionMiddleware(Router(_routes()), handlers), scope)
    theirs = anyio.run(_ask, ExceptionMiddleware(StarletteRouter(_routes()), handlers), scope)
    assert ours == theirs


def test_only_the_leading_exact_routes_are_looked_up() -> None:
    router = Router(_routes())
    assert sorted(router.exact) == ["/any", "/asgi", "/both", "/fails", "/item", "/sync", "/thumb"]
    assert router.exact["/thumb"].methods == {"GET", "HEAD"}


def test_an_async_endpoint_is_called_directly_and_any_other_the_way_starlette_calls_it() -> None:
    router = Router(_routes())
    assert router.exact["/fails"].direct is _failing
    assert router.exact["/both"].by_method == {
        "GET": _BY_METHOD["GET"], "HEAD": _BY_METHOD["GET"], "PUT": _failing
    }  # fmt: skip
    assert router.exact["/sync"].direct is None  # Starlette runs it in a thread
    assert router.exact["/asgi"].direct is None  # an ASGI app is given the scope
