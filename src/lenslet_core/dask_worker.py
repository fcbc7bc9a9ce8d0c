"""The worker side of the Dask engine: what runs in a ``lenslet worker`` (or any Dask worker
with lenslet installed).

A task of lenslet's is :func:`run` with a job and its gallery's settings. :class:`LensletPlugin`
keeps one open :class:`~lenslet_core.Lenslet` per (root, settings) on the worker's event loop,
so a worker reads a root's state once and runs every job of it with lenslet's own handlers
(and their follow-up work, in that gallery's in-process engine). A gallery on a worker does as
much CPU work at once as the worker has threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from typing import Any

import orjson
from distributed import Worker, WorkerPlugin, get_worker

from .errors import LensletError, QueueFull, StorageError
from .imaging import limit_libvips_threads
from .jobs import Job, JobHandle
from .lenslet import Lenslet
from .local_engine import LocalEngine
from .settings import Settings
from .work import HEALTH

__all__ = ["PLUGIN", "LensletPlugin", "run"]

log = logging.getLogger("lenslet.worker")

#: The plugin's name on a worker, and the topic of the scheduler's event log where each job a
#: worker starts is told (``client.get_events("lenslet")``: what ran where, and when).
PLUGIN = "lenslet"

#: Seconds a closing worker gives its galleries to finish their follow-up work.
CLOSE_WITHIN = 30.0


class LensletPlugin(WorkerPlugin):
    """The galleries a worker has open, one per (root, settings), each entered in one task of
    the worker's event loop that lives as long as the worker."""

    name = PLUGIN

    def __init__(self) -> None:
        self._open: dict[str, Lenslet] = {}
        self._requests: asyncio.Queue[tuple[str, Settings, asyncio.Future[Lenslet]] | None]
        self._host: asyncio.Task[None] | None = None
        self._threads = 1

    async def setup(self, worker: Worker) -> None:
        self._threads = max(1, worker.state.nthreads)
        # A worker of N threads uses N cores: libvips' own threads too (its default is every
        # core of the machine, which would crowd the other workers on it).
        limit_libvips_threads(self._threads)
        self._requests = asyncio.Queue()
        self._host = asyncio.get_running_loop().create_task(self._keep())

    async def teardown(self, worker: Worker) -> None:
        if self._host is None:
            return
        await self._requests.put(None)
        try:
            await asyncio.wait_for(self._host, CLOSE_WITHIN)
        except asyncio.TimeoutError:
            log.warning("lenslet's galleries did not close within %.0f s", CLOSE_WITHIN)

    async def gallery(self, root: str, settings: Settings) -> Lenslet:
        """The open gallery of ``root`` with ``settings`` (opened on first need)."""
        settings = settings.replace(cpu_concurrency=self._threads)
        key = _key(root, settings)
        lens = self._open.get(key)
        if lens is not None:
            return lens
        host = self._host
        if host is None or host.done():
            raise StorageError("this worker's galleries are closed (the worker is stopping)")
        reply: asyncio.Future[Lenslet] = asyncio.get_running_loop().create_future()
        await self._requests.put((root, settings, reply))
        waiting: set[asyncio.Future[Any]] = {reply, host}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not reply.done():
            raise StorageError("this worker's galleries are closed (the worker is stopping)")
        return reply.result()

    async def _keep(self) -> None:
        """Open galleries as they are asked for, and close them all when the worker closes."""
        async with contextlib.AsyncExitStack() as stack:
            while (request := await self._requests.get()) is not None:
                root, settings, reply = request
                key = _key(root, settings)
                try:
                    if key not in self._open:
                        lens = Lenslet(root, settings, engine=_engine(settings))
                        await stack.enter_async_context(lens)
                        self._open[key] = lens
                        log.info("opened the gallery at %s", lens.url)
                except LensletError as exc:
                    # Not "not found": a root this worker cannot see must not read as a folder
                    # that is gone (the sender would forget it).
                    failure = StorageError(f"this worker cannot open {root}: {exc.message}")
                    if not reply.done():
                        reply.set_exception(failure)
                    continue
                except Exception as exc:
                    if not reply.done():
                        reply.set_exception(exc)
                    continue
                if not reply.done():
                    reply.set_result(self._open[key])


class _WorkerEngine(LocalEngine):
    """A worker gallery's engine: the jobs sent to it and their follow-ups (a folder's manifest
    after its thumbnail, the rollup's changes, merged on save), but no health: a worker knows
    only the folders it worked on, and ``_health.json`` is written whole, by the servers and
    index runs that keep the whole gallery's counts."""

    async def submit(self, job: Job, *, wait_for_room: bool = True) -> JobHandle:
        if job.kind == HEALTH.name:
            raise QueueFull("a worker leaves health to the gallery's servers and index runs")
        return await super().submit(job, wait_for_room=wait_for_room)


def _engine(settings: Settings) -> LocalEngine:
    return _WorkerEngine(
        workers=max(2, settings.cpu_concurrency * 2),
        queue_size=settings.queue_size,
        attempts=settings.job_attempts,
    )


def _key(root: str, settings: Settings) -> str:
    fields = dataclasses.asdict(settings)
    return root + "\0" + orjson.dumps(fields, option=orjson.OPT_SORT_KEYS, default=repr).decode()


_adding = asyncio.Lock()


async def run(job: Job, settings: Settings) -> Any:
    """Run ``job`` in this worker's open gallery of its root: the task every job of the Dask
    engine is. A plain ``dask worker`` gets the plugin at its first job."""
    worker = get_worker()
    async with _adding:
        if not isinstance(worker.plugins.get(PLUGIN), LensletPlugin):
            await worker.plugin_add(LensletPlugin(), name=PLUGIN)
    plugin = worker.plugins[PLUGIN]
    assert isinstance(plugin, LensletPlugin)
    lens = await plugin.gallery(job.root, settings)
    worker.log_event(PLUGIN, {**job.to_json(), "worker": worker.address, "at": time.time()})
    return await lens.run_job(job)
