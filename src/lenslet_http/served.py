"""What the endpoints of one app share: its gallery, how it was asked to serve, and the
answers it keeps encoded. One typed object the app carries as a plain attribute, so an
endpoint finds it in one lookup (Starlette's ``app.state`` is a dictionary behind
``__getattr__``: about a microsecond a name, several times a request)."""

from __future__ import annotations

import dataclasses
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp

from lenslet_core import Lenslet

from .encoded import EncodedAnswers, EncodedPages
from .errors import ErrorAnswers
from .routing import Router

__all__ = ["LensletApp", "Served", "served"]


@dataclasses.dataclass(eq=False)
class Served:
    """One app's gallery and the choices :func:`~lenslet_http.create_app` was given."""

    lens: Lenslet
    #: Whether the app opened the gallery (and so opens and closes it with its lifespan).
    owned: bool
    index_on_start: bool
    watch: bool
    thumb_wait: float
    presign: int | None
    #: Uploads read at once.
    uploads: anyio.Semaphore
    pages: EncodedPages = dataclasses.field(default_factory=EncodedPages)
    #: Items by path, and searches by their query string, each kept encoded.
    items: EncodedAnswers = dataclasses.field(default_factory=EncodedAnswers)
    found: EncodedAnswers = dataclasses.field(default_factory=EncodedAnswers)
    #: Whether its background work runs (:func:`~lenslet_http.background`).
    started: bool = False
    #: The OpenAPI document, described from the route table on its first request.
    openapi: dict[str, Any] | None = None


class LensletApp(Starlette):
    """The Starlette app :func:`~lenslet_http.create_app` makes: a Starlette app that carries
    its :class:`Served` and finds its exact routes by path
    (:class:`~lenslet_http.routing.Router`)."""

    served: Served

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # The same routes and lifespan, found as Starlette finds them, the exact paths first.
        self.router = Router(self.router.routes, lifespan=options.get("lifespan"))

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette's stack (its server error layer outermost, then the app's middleware)
        with :class:`~lenslet_http.errors.ErrorAnswers` innermost in place of Starlette's
        ``ExceptionMiddleware``: the same handlers, the handler of ``Exception`` in the
        server error layer."""
        last_resort = self.exception_handlers.get(Exception, self.exception_handlers.get(500))
        handlers, by_status = {}, {}
        for key, handler in self.exception_handlers.items():
            if isinstance(key, int):
                if key != 500:
                    by_status[key] = handler
            elif key is not Exception:
                handlers[key] = handler
        app: ASGIApp = ErrorAnswers(self.router, handlers, by_status)
        layers = [
            Middleware(ServerErrorMiddleware, handler=last_resort, debug=self.debug),
            *self.user_middleware,
        ]
        for cls, args, kwargs in reversed(layers):
            app = cls(app, *args, **kwargs)
        return app


def served(request: Request) -> Served:
    """What the app that routed ``request`` serves."""
    app: LensletApp = request.scope["app"]
    return app.served
