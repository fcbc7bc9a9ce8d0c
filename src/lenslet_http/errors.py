"""The app's innermost layer: an error an endpoint raises is answered by its handler (the one
place errors become answers, :func:`~lenslet_http.responses.error_answer`).

It does what Starlette's ``ExceptionMiddleware`` does for HTTP with the same handlers, for
less a request: that one makes a ``Request`` before calling the app (used only when something
fails) and passes each message through a coroutine of its own; here the request is made for
the handler, and messages pass by a plain function. The handlers are left in the scope where
Starlette's routes look for them, so a route Starlette runs itself (a sync endpoint, a mount)
maps its errors the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ErrorAnswers", "Handler"]

#: What answers an error: given the request it failed and the error, a response (``async``, or
#: plain and run in a thread).
Handler = Callable[[Request, Exception], Any]


class ErrorAnswers:
    """ASGI middleware: an exception from ``app`` is answered by the handler of its nearest
    class in ``handlers`` (an ``HTTPException`` first by its status in ``by_status``, and
    without a handler as Starlette answers it; none: it goes on up, to the server error
    layer). An error after the answer has started cannot be answered and goes on up too."""

    def __init__(
        self,
        app: ASGIApp,
        handlers: Mapping[type[Exception], Handler],
        by_status: Mapping[int, Handler] | None = None,
    ) -> None:
        self.app = app
        self.handlers: dict[type[Exception], Handler] = {HTTPException: _plain, **handlers}
        #: Handlers of an ``HTTPException`` by its status, before those by class.
        self.by_status = dict(by_status or {})
        self._in_scope = (self.handlers, self.by_status)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # the lifespan (lenslet has no websockets)
            await self.app(scope, receive, send)
            return
        scope["starlette.exception_handlers"] = self._in_scope
        started = False

        def sending(message: Message) -> Awaitable[None]:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            return send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            if started:
                raise RuntimeError("an error after the answer started cannot be answered") from exc
            request = Request(scope, receive, send)
            if inspect.iscoroutinefunction(handler):
                response = await handler(request, exc)
            else:  # as Starlette runs one: in a thread
                response = await run_in_threadpool(handler, request, exc)
            if response is not None:
                await response(scope, receive, sending)
            exc.__traceback__ = None  # an error raised again must not keep each request's frames

    def _handler(self, exc: Exception) -> Handler | None:
        if self.by_status and isinstance(exc, HTTPException):
            handler = self.by_status.get(exc.status_code)
            if handler is not None:
                return handler
        for kind in type(exc).__mro__:
            handler = self.handlers.get(kind)
            if handler is not None:
                return handler
        return None


async def _plain(request: Request, exc: Exception) -> Response:
    """An ``HTTPException`` no handler was given for, answered as Starlette answers it."""
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
