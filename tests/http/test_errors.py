"""The app's error layer answers what Starlette's ``ExceptionMiddleware`` answers with the
same handlers, for any error an endpoint raises (async and sync endpoints and handlers, by
class and by status, before and after the answer started)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Message, Scope

from lenslet_http.errors import ErrorAnswers


class _Refused(Exception):
    pass


class _RefusedHarder(_Refused):
    pass


class _Unknown(Exception):
    pass


#: name -> what the endpoint raises
_RAISED: dict[str, Callable[[], Exception]] = {
    "refused": lambda: _Refused("no"),
    "harder": lambda: _RefusedHarder("never"),  # by its base class's handler
    "missing": lambda: HTTPException(404, "not here"),
    "teapot": lambda: HTTPException(418, "short and stout"),  # by its status
    "unchanged": lambda: HTTPException(304, headers={"ETag": '"x"'}),
    "value": lambda: ValueError("a sync handler's"),
}


async def _refused(request: Request, exc: Exception) -> Response:
    return JSONResponse({"refused": str(exc), "path": request.url.path}, status_code=422)


def _value(request: Request, exc: Exception) -> Response:  # plain: run in a thread
    return PlainTextResponse(f"value {exc}", status_code=400)


async def _teapot(request: Request, exc: Exception) -> Response:
    return PlainTextResponse("by status", status_code=418)


_HANDLERS: dict[Any, Any] = {_Refused: _refused, ValueError: _value}
_BY_STATUS: dict[Any, Any] = {418: _teapot}


def _routes() -> list[Route]:
    async def raising(request: Request) -> Response:
        raise _RAISED[request.path_params["name"]]()

    def raising_sync(request: Request) -> Response:  # Starlette runs it, in its own wrapper
        raise _RAISED[request.path_params["name"]]()

    async def late(request: Request) -> Response:
        class Late(Response):
            async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
                await send({"type": "http.response.start", "status": 200, "headers": []})
                raise _Refused("after the start")

        return Late()

    async def unknown(request: Request) -> Response:
        raise _Unknown("nobody handles this")

    return [
        Route("/async/{name}", raising),
        Route("/sync/{name}", raising_sync),
        Route("/late", late),
        Route("/unknown", unknown),
    ]


async def _ask(app: ASGIApp, path: str) -> tuple[int, bytes, dict[bytes, bytes]] | str:
    sent: list[Message] = []
    scope: Scope = {
        "type": "http", "method": "GET", "path": path, "root_path": "", "query_string": b"",
        "headers": [(b"host", b"test")], "scheme": "http", "server": ("test", 80),
    }  # fmt: skip

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    try:
        await app(scope, receive, send)
    except Exception as exc:  # what goes on up, to the server error layer
        return f"{type(exc).__name__}: {exc}"
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], body, dict(start["headers"])


@pytest.mark.parametrize("name", sorted(_RAISED))
@pytest.mark.parametrize("kind", ["async", "sync"])
def test_an_error_is_answered_as_starlettes_middleware_answers_it(kind: str, name: str) -> None:
    path = f"/{kind}/{name}"
    ours = anyio.run(_ask, ErrorAnswers(Router(_routes()), _HANDLERS, _BY_STATUS), path)
    theirs = anyio.run(_ask, ExceptionMiddleware(Router(_routes()), _HANDLERS), path)
    assert not isinstance(ours, str), ours
    if name == "teapot":
        # Starlette's middleware takes status handlers as int keys of the same mapping.
        theirs = anyio.run(
            _ask, ExceptionMiddleware(Router(_routes()), {**_HANDLERS, **_BY_STATUS}), path
        )
    assert ours == theirs


@pytest.mark.parametrize("path", ["/late", "/unknown"])
def test_what_cannot_be_answered_goes_on_up_as_with_starlette(path: str) -> None:
    ours = anyio.run(_ask, ErrorAnswers(Router(_routes()), _HANDLERS), path)
    theirs = anyio.run(_ask, ExceptionMiddleware(Router(_routes()), _HANDLERS), path)
    assert isinstance(ours, str)
    assert isinstance(theirs, str)
    assert ours.split(":")[0] == theirs.split(":")[0]  # the same kind of error, reworded


def test_an_http_error_without_a_handler_is_answered_as_starlette_answers_it() -> None:
    ours = anyio.run(_ask, ErrorAnswers(Router(_routes()), {}), "/async/missing")
    theirs = anyio.run(_ask, ExceptionMiddleware(Router(_routes())), "/async/missing")
    assert not isinstance(ours, str)
    assert ours == theirs
    assert ours[:2] == (404, b"not here")
