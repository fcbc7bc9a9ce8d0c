"""The ASGI app: routes, the facade's lifetime, the one error mapping, auth and CORS."""

from __future__ import annotations

import importlib.resources
import logging
from collections.abc import Sequence

import anyio
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from lenslet_core import (
    Engine,
    InternalError,
    InvalidParameter,
    Lenslet,
    LensletError,
    MethodNotAllowed,
    NotFound,
    Settings,
    SettingsError,
    TooLarge,
)

from .auth import BearerToken
from .compression import Compression
from .images import MAX_UPLOADS
from .lifespan import WarnNotStarted, background
from .metrics import Metrics, Timed
from .params import MAX_WAIT
from .responses import error_answer
from .routes import routes
from .served import LensletApp, Served

__all__ = ["create_app"]

log = logging.getLogger("lenslet.http")


async def _lenslet_error(request: Request, exc: Exception) -> Response:
    """The one handler: every error an endpoint raises is a :class:`LensletError`."""
    assert isinstance(exc, LensletError)
    return error_answer(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no route, a method a route does not take, a form it could not
    read), translated where they enter."""
    assert isinstance(exc, HTTPException)
    path = request.url.path
    mapped: LensletError
    if exc.status_code == 404:
        mapped = NotFound(f"no route {path!r}")
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"{request.method} is not allowed on {path!r} (allowed: {allowed})"
        mapped = MethodNotAllowed(message, allowed=allowed)
    elif exc.status_code == 413:
        mapped = TooLarge(exc.detail)
    else:
        mapped = InvalidParameter(exc.detail)
    return error_answer(mapped)


def _ui_files() -> StaticFiles:
    return StaticFiles(packages=[("lenslet_http", "ui")])


async def _page(request: Request) -> Response:
    """The gallery page (``ui/index.html``); its script and style load relative to it."""
    if not request.url.path.endswith("/"):  # mounted at /gallery: the page is /gallery/
        return RedirectResponse(request.url.replace(path=request.url.path + "/"), 308)
    page = importlib.resources.files("lenslet_http") / "ui" / "index.html"
    return Response(page.read_bytes(), media_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-cache"})  # fmt: skip


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_answer(InternalError("lenslet failed; the server log has the cause"))


def create_app(
    root: str | Lenslet,
    settings: Settings | None = None,
    *,
    token: str | None = None,
    open_health: bool = True,
    cors_origins: Sequence[str] = (),
    index_on_start: bool = False,
    watch: bool = False,
    thumb_wait: float = MAX_WAIT,
    ui: bool = True,
    presign: int | None = None,
    engine: Engine | None = None,
) -> LensletApp:
    """The HTTP surface of a gallery root as a Starlette app.

    Given a root (a path or URL), the app's lifespan opens and closes its :class:`Lenslet`
    (job engine included); given a :class:`Lenslet`, the app uses it as it is (enter it
    yourself). Mounted under a host, the app's own lifespan does not run: run
    :func:`lenslet_http.background` in the host's lifespan (see :mod:`lenslet_http.lifespan`)::

        gallery = create_app("/photos", watch=True)

        @contextlib.asynccontextmanager
        async def lifespan(app):
            async with background(gallery):
                yield

        host = Starlette(routes=[Mount("/gallery", gallery)], lifespan=lifespan)

    ``token`` requires a bearer token on every request (``open_health``: but ``/health``);
    ``cors_origins`` allows browsers from those origins; ``index_on_start`` indexes the root in
    the background once the app starts; ``watch`` keeps a local root indexed while the app runs
    (images copied in appear in their folder, with thumbnails, within seconds);
    ``thumb_wait`` is how long a plain ``GET /thumb`` (an ``<img>``) waits for a thumbnail
    being made before its 503 (clients that send ``Prefer: respond-async`` get a 202 sooner);
    ``ui`` serves lenslet's own gallery page at ``/`` (its files under ``/ui/``);
    ``presign`` (seconds) answers ``GET /file`` and ``GET /thumb`` of an S3 root with a
    redirect to a presigned URL, so large originals never stream through the server;
    ``engine`` runs the background work of a gallery the app opens (default: in-process; a
    :class:`~lenslet_core.dask_engine.DaskEngine` sends it to a cluster).
    """
    if presign is not None and not 1 <= presign <= 7 * 24 * 3600:
        raise SettingsError(f"presign must be 1 s to 7 days (S3's limit), not {presign!r}")
    if not 0 <= thumb_wait <= 300:
        raise SettingsError(f"thumb_wait must be between 0 and 300 seconds, not {thumb_wait!r}")
    if isinstance(root, Lenslet) and engine is not None:
        raise SettingsError("give the engine to the Lenslet you pass, not to create_app")
    lens = root if isinstance(root, Lenslet) else Lenslet(root, settings, engine=engine)
    owned = not isinstance(root, Lenslet)

    # Level 5: most of level 9's saving on JSON at a fraction of its time per request. Images
    # and event streams are never compressed: their routes are not looked at.
    skip = ("/thumb", "/file", "/events")
    middleware = [Middleware(Compression, minimum_size=1024, level=5, skip=skip)]
    if cors_origins:
        middleware.insert(
            0,
            Middleware(
                CORSMiddleware,
                allow_origins=list(cors_origins),
                allow_methods=["GET", "PUT", "POST"],
                allow_headers=[
                    "Authorization",
                    "Content-Type",
                    "If-Match",
                    "If-None-Match",
                    "Prefer",
                    "X-Lenslet-User",
                    "X-Requested-With",
                ],
                expose_headers=["ETag", "Location", "Retry-After", "Content-Range"],
            ),
        )
    if token:
        open_paths = ("/health", "/openapi.json") if open_health else ()
        middleware.append(Middleware(BearerToken, token=token, open_paths=open_paths))
    metrics = Metrics(lens)
    metrics.routes = frozenset(r.path for r in routes if isinstance(r, Route)) | {"/metrics"}
    middleware.insert(0, Middleware(Timed, metrics=metrics))
    page = [Route("/", _page, methods=["GET"]), Mount("/ui", _ui_files())] if ui else []
    app = LensletApp(
        routes=[*routes, Route("/metrics", metrics.endpoint, methods=["GET"]), *page],
        middleware=middleware,
        lifespan=background,
        exception_handlers={
            LensletError: _lenslet_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
    app.served = Served(
        lens,
        owned=owned,
        index_on_start=index_on_start,
        watch=watch,
        thumb_wait=thumb_wait,
        presign=presign,
        uploads=anyio.Semaphore(MAX_UPLOADS),
    )
    app.add_middleware(WarnNotStarted, owner=app)
    return app
