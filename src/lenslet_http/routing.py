"""Finding a request's route: the paths without parameters by one dictionary lookup, the rest
as Starlette's router finds them (in order, one match each)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.routing import Router as _StarletteRouter
from starlette.types import Receive, Scope, Send

__all__ = ["Endpoint", "Exact", "Router", "route_path"]

#: What a route calls with a request.
Endpoint = Callable[[Request], Awaitable[Response]]


def route_path(scope: Scope) -> str:
    """A request's path inside this app: without the prefix it is mounted at in a host (as
    Starlette's router reads it: ``/gallery/x`` under ``/gallery`` is ``/x``, ``/galleryx``
    stays as it is)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if not root or not path.startswith(root):
        return path
    if path == root:
        return ""
    return path[len(root) :] if path[len(root)] == "/" else path


class Exact(Route):
    """A route whose path has no parameters, told by comparing strings (no regular
    expression run).

    An ``async`` endpoint is called with nothing between it and the router. Starlette wraps
    each route's call, and its ``send``, in a second exception handler; the app's own one,
    the innermost middleware just outside the router, maps the same errors with the same
    handlers. ``by_method`` names the ``async`` endpoint of each method that ``endpoint``
    (which Starlette and the description see) passes the request on to: the router calls
    that one directly (``HEAD`` the ``GET`` one's)."""

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        by_method: Mapping[str, Endpoint] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(path, endpoint, **options)
        # What Starlette calls with a request (a function, not an ASGI app), and async.
        called = inspect.isfunction(endpoint) or inspect.ismethod(endpoint)
        self.direct: Endpoint | None = (
            endpoint if called and inspect.iscoroutinefunction(endpoint) else None
        )
        #: method -> the endpoint called directly for it (none: the way Starlette calls it)
        self.by_method: dict[str, Endpoint] = {}
        if by_method is not None:
            self.by_method = {m.upper(): e for m, e in by_method.items()}
            if "GET" in self.by_method:
                self.by_method.setdefault("HEAD", self.by_method["GET"])
        elif self.direct is not None:
            self.by_method = dict.fromkeys(self.methods or (), self.direct)
        allowed = self.methods or self.by_method.keys()
        self.by_method = {m: e for m, e in self.by_method.items() if m in allowed}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        direct = self.by_method.get(scope["method"])
        if direct is None and (self.methods or self.direct is None):
            await super().handle(scope, receive, send)  # a sync endpoint, or the 405
            return
        response = await (direct or self.endpoint)(Request(scope, receive, send))
        await response(scope, receive, send)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or route_path(scope) != self.path:
            return Match.NONE, {}
        child = {"endpoint": self.endpoint, "path_params": dict(scope.get("path_params", {}))}
        if self.methods and scope["method"] not in self.methods:
            return Match.PARTIAL, child
        return Match.FULL, child


class Router(_StarletteRouter):
    """Starlette's router, which tries each route in turn, with the :class:`Exact` routes
    looked up by path first: a read route is asked for thousands of times a second, and each
    route tried before it costs a match. What the lookup does not answer whole (another
    method, a path with parameters, a slash to redirect) goes the usual way, so the answers
    are Starlette's."""

    def __init__(self, routes: Sequence[BaseRoute], **options: object) -> None:
        super().__init__(routes, **options)  # type: ignore[arg-type]
        #: The leading run of exact routes: a route after any other could be shadowed by it.
        self.exact: dict[str, Exact] = {}
        for route in self.routes:
            if not isinstance(route, Exact):
                break
            self.exact.setdefault(route.path, route)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self.exact.get(route_path(scope))
            if route is not None and (not route.methods or scope["method"] in route.methods):
                scope.setdefault("router", self)
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                scope["path_params"] = dict(scope.get("path_params", {}))
                await route.handle(scope, receive, send)
                return
        await super().app(scope, receive, send)
