"""Running lenslet's background work for the time an app serves: its :class:`Lenslet` entered
(when the app opened it from a root), an index at start-up and a watch (when asked for).

An app run on its own does this in its lifespan. An app mounted under a host does not: ASGI
hosts run only their own lifespan, not a mounted app's. The host runs :func:`background` in its
lifespan instead::

    gallery = create_app("/photos", index_on_start=True, watch=True)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async with background(gallery):
            yield

    host = Starlette(routes=[Mount("/gallery", gallery)], lifespan=lifespan)

A mounted app whose work nobody started says so in the log at its first request
(:class:`WarnNotStarted`), instead of silently neither indexing nor watching.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import anyio
import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from lenslet_core import Lenslet, LensletError, release_memory

from .served import LensletApp

__all__ = ["WarnNotStarted", "background"]

log = logging.getLogger("lenslet.http")


@contextlib.asynccontextmanager
async def background(app: LensletApp) -> AsyncIterator[None]:
    """Run an app's background work (see the module docstring) until the block ends; then
    stop it promptly (queued jobs of a Lenslet the app opened are abandoned: every file is
    written atomically, so none is left half-written)."""
    served = app.served
    lens = served.lens
    async with contextlib.AsyncExitStack() as stack:
        if served.owned:
            await stack.enter_async_context(lens)
        tg = await stack.enter_async_context(anyio.create_task_group())
        if served.index_on_start:
            tg.start_soon(_index, lens)
        if served.watch:
            tg.start_soon(_watch, lens)
        tg.start_soon(_release_memory)
        served.started = True
        try:
            yield
        finally:
            served.started = False
            tg.cancel_scope.cancel()  # an unfinished start-up index stops with the server
            if served.owned:
                await lens.stop_work()


#: Seconds between two returns of freed memory to the system (see lenslet_core.memory).
RELEASE_EVERY = 10.0


async def _release_memory() -> None:
    """A burst of uploads or thumbnails leaves the allocator holding its peak: give back what
    is free, now and then (in a thread: it takes a few milliseconds)."""
    while True:
        await anyio.sleep(RELEASE_EVERY)
        if not await anyio.to_thread.run_sync(release_memory):
            return  # not glibc: nothing to do


async def _index(lens: Lenslet) -> None:
    try:
        report = await lens.index()
    except LensletError as exc:
        log.error("indexing %s at start-up failed: %s", lens.url, exc.message)
        return
    log.info("indexed %d images in %d folders at start-up", report.items, report.folders)


async def _watch(lens: Lenslet) -> None:
    try:
        await lens.watch()
    except LensletError as exc:  # not a local root, watchfiles missing: serve without it
        log.warning("not watching %s for changes: %s", lens.url, exc.message)


class WarnNotStarted:
    """Middleware: at the first request, a warning in the log when the app's background work
    was asked for (or its Lenslet is the app's to open) and nobody started it. Its one look
    taken, it steps out of the app's stack: later requests never pass through it."""

    def __init__(self, app: ASGIApp, *, owner: LensletApp) -> None:
        self.app = app
        self.owner = owner
        self.checked = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.checked and scope["type"] == "http":
            self.checked = True
            self._step_out()
            served = self.owner.served
            wanted = [
                what
                for what, asked in (
                    ("opening its gallery", served.owned),
                    ("index_on_start", served.index_on_start),
                    ("watch", served.watch),
                )
                if asked
            ]
            if wanted and not served.started:
                log.warning(
                    "lenslet's app is serving but its background work (%s) never started: a "
                    "mounted app's lifespan does not run; run `async with "
                    "lenslet_http.background(app):` in the host's lifespan",
                    ", ".join(wanted),
                )
        await self.app(scope, receive, send)

    def _step_out(self) -> None:
        """The layer above this one (Starlette's error middleware) calls the one below."""
        layer: object = self.owner.middleware_stack
        while layer is not None and getattr(layer, "app", None) is not self:
            layer = getattr(layer, "app", None)
        if layer is not None:
            layer.app = self.app  # type: ignore[attr-defined]
