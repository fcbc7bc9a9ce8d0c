"""A job engine on a Dask cluster (``pip install 'lenslet-core[dask]'``): the jobs of servers and
index runs go to ``lenslet worker`` processes on any number of machines, all sharing one root.

    engine = DaskEngine("tcp://scheduler:8786")
    async with Lenslet("s3://photos", settings, engine=engine) as lens:
        await lens.index()  # one job per folder, on the workers

What it does with lenslet's jobs:

- a job goes to the scheduler as a task of ``lenslet_core.dask_worker.run`` with the job and the
  gallery's settings as its arguments (data, never a live object); a worker opens the gallery of
  the job's root once and runs the job there, with lenslet's own handler;
- every task key starts with ``"lenslet"`` (one task group, so the scheduler keeps the kinds'
  priorities strictly); a kind that joins running jobs (thumbnails) has one key per image, so
  any number of servers asking for one thumbnail make one task; other kinds get a key per
  request (a running index job must not swallow a change made after it listed its folder);
- transient storage errors are retried by the worker's engine; a worker that dies takes its
  task to another worker (the scheduler's own rule); a future is released as soon as its
  outcome is known, so the same key asked for later is new work, not an old result;
- kinds that work on this process's state (``Kind.local``: rollup, health) run here, in an
  in-process engine; so does every job while the cluster cannot take it (the scheduler lost,
  or no worker), and a job the cluster lost on its way is run here too: nothing is dropped;
- a heartbeat asks the scheduler how it is every half second, so health says within about a
  second that it went away (and when it is back).

The engine needs the asyncio event loop (Dask's client runs on it).
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import logging
import time
import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
from distributed import Client, Future

from .errors import EngineUnavailable, JobFailed, LensletError, QueueFull
from .jobs import EngineStats, Handler, Job, JobHandle, Kind
from .local_engine import LocalEngine
from .settings import Settings

__all__ = ["DaskEngine", "task_key"]

log = logging.getLogger("lenslet.jobs")

#: The first part of every task key of lenslet's (its task group on the scheduler).
PREFIX = "lenslet"

NO_WORKERS = "the scheduler has no workers"

#: Seconds the scheduler may be without workers before the tasks sent to it run here.
WORKERLESS_GRACE = 3.0


def task_key(job: Job, kind: Kind, token: str = "", *, variant: str = "") -> tuple[str, ...]:
    """The task key of ``job``: one per image for a kind that joins running jobs (the same
    key from every client that makes the same ``variant`` of it — thumbnails of one size and
    quality — so the scheduler makes one task of them), else one per request (``token``)."""
    if kind.joins_running:
        return (PREFIX, job.kind, job.root, job.path, variant)
    return (PREFIX, job.kind, job.root, job.path, token)


class DaskEngine:
    """Runs lenslet's jobs on the Dask cluster whose scheduler is at ``address`` (see the
    module docstring). ``connect_timeout``: seconds to reach the scheduler at start-up (then
    :class:`EngineUnavailable`); ``heartbeat``: seconds between two checks of the scheduler
    while running."""

    def __init__(
        self,
        address: str,
        *,
        connect_timeout: float = 5.0,
        heartbeat: float = 0.5,
    ) -> None:
        self.address = address
        self.connect_timeout = connect_timeout
        self.heartbeat = heartbeat
        self._root: str | None = None
        self._settings: Settings | None = None
        self._variant = ""
        self._local: LocalEngine | None = None
        self._kinds: dict[str, Kind] = {}
        self._handlers: dict[str, Handler] = {}
        #: Since when the scheduler has had no worker (``None``: it has some).
        self._workerless: float | None = None
        self._client: Client | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._closing = False
        #: Jobs on the cluster by task key, with their futures; the latest key of each job.
        self._handles: dict[tuple[str, ...], JobHandle] = {}
        self._futures: dict[tuple[str, ...], Future[Any]] = {}
        self._latest: dict[tuple[str, str], tuple[str, ...]] = {}
        self._cancelled: set[tuple[str, ...]] = set()
        self._running: set[tuple[str, ...]] = set()
        self._tokens = itertools.count()
        self._client_id = uuid.uuid4().hex[:12]
        self._connected = False
        self._workers = 0
        self._threads = 0
        self._error: str | None = None
        self._since = time.time()
        self._done = 0
        self._failed = 0
        self._ran_here = 0
        #: Seconds from submit to outcome, as a moving average.
        self._pace = 0.1
        self._failures: collections.deque[dict[str, Any]] = collections.deque(maxlen=100)
        self._changed = anyio.Event()

    # -- set-up --------------------------------------------------------------------------------

    @property
    def remote(self) -> bool:
        """Whether jobs go to the cluster now: the scheduler answers and has workers."""
        return self._client is not None and self._connected and self._workers > 0

    def bind(self, root: str, settings: Settings) -> None:
        """The gallery the jobs are for, sent with each job; the in-process engine for local
        kinds and for falling back is made to these settings."""
        if self._local is not None:
            raise RuntimeError("a DaskEngine runs the jobs of one gallery")
        self._root, self._settings = root, settings
        self._variant = f"{settings.thumb_size}q{settings.thumb_quality}"
        self._local = LocalEngine(
            workers=max(2, settings.cpu_concurrency * 2),
            queue_size=settings.queue_size,
            attempts=settings.job_attempts,
        )

    def register(self, kind: Kind, handler: Handler) -> None:
        """Run ``kind``: on the cluster, with the workers' handler (the same code), or here
        with ``handler`` (a local kind, or the cluster unusable)."""
        self._kinds[kind.name] = kind
        self._handlers[kind.name] = handler
        self._local_engine().register(kind, handler)

    async def check(self) -> None:
        """Fail now with :class:`EngineUnavailable` when the scheduler does not answer (what
        entering the engine does too, for a server that must not start without it)."""
        client = await self._connect()
        await client.close(timeout=2)

    async def _connect(self, within: float | None = None) -> Client:
        timeout = self.connect_timeout if within is None else within
        try:
            with anyio.fail_after(timeout + 1):
                return await Client(
                    self.address,
                    asynchronous=True,
                    timeout=timeout,
                    set_as_default=False,
                    name=f"lenslet-{self._client_id}",
                )
        except (OSError, TimeoutError, ValueError) as exc:
            raise EngineUnavailable(
                f"the Dask scheduler at {self.address} does not answer ({exc}); start it with "
                "`dask scheduler` and its workers with `lenslet worker --scheduler ADDRESS`"
            ) from exc

    async def __aenter__(self) -> DaskEngine:
        local = self._local_engine()
        self._client = await self._connect()
        await self._check()
        await local.__aenter__()
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._beat)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            await self.close(finish=exc_type is None)
        finally:
            assert self._tg is not None
            self._tg.cancel_scope.cancel()
            try:
                await self._tg.__aexit__(None, None, None)
            finally:
                await self._local_engine().__aexit__(exc_type, exc, tb)
                for handle in self._handles.values():
                    if not handle.done:
                        handle._end("cancelled")
                if self._client is not None:
                    await self._client.close(timeout=2)
        return None

    async def close(self, *, finish: bool = True) -> None:
        """Stop taking jobs; ``finish``: first wait for the jobs on the cluster, else cancel
        them (a task a worker runs ends as it would; files are only written atomically)."""
        local = self._local_engine()
        while finish and not self._closing and any(not h.done for h in self._handles.values()):
            await self._wait_for_change()
        self._closing = True
        if not finish and self._client is not None and self._futures:
            try:
                with anyio.move_on_after(2):
                    await self._client.cancel(list(self._futures.values()))
            except (OSError, TimeoutError):
                pass  # the scheduler is gone: what it held is gone with it
        await local.close(finish=finish)

    # -- the interface ---------------------------------------------------------------------------

    async def submit(self, job: Job, *, wait_for_room: bool = True) -> JobHandle:
        """Send ``job`` to the cluster (a local kind, or while the cluster cannot take it: to
        the in-process engine); a thumbnail already asked for joins that task."""
        if self._tg is None or self._client is None:
            raise QueueFull("the job engine is not running (not started, or stopped)")
        kind = self._kinds.get(job.kind)
        if kind is None:
            raise ValueError(f"this engine has no handler for {job.kind!r} jobs")
        if kind.local or self._closing or not self.remote:
            # Closing, the in-process engine decides: follow-ups of work it finishes are
            # still taken, new work is refused once it is done.
            return await self._local_engine().submit(job, wait_for_room=wait_for_room)
        token = f"{self._client_id}-{next(self._tokens)}"
        key = task_key(job, kind, token, variant=self._variant)
        existing = self._handles.get(key)
        if existing is not None and not existing.done:
            return existing
        from .dask_worker import run

        handle = JobHandle(job)
        future = self._client.submit(
            run,
            job,
            self._settings,
            key=key,
            priority=-kind.priority,
            pure=False,
            retries=0,  # a worker's engine retries storage errors; the scheduler, lost workers
        )
        self._handles[key], self._futures[key], self._latest[job.key] = handle, future, key
        self._tg.start_soon(self._follow, key, handle, future)
        return handle

    def status(self, job: Job) -> JobHandle | None:
        key = self._latest.get(job.key)
        handle = self._handles.get(key) if key is not None else None
        if handle is not None and not handle.done:
            return handle
        return self._local_engine().status(job)

    async def cancel(self, job: Job) -> bool:
        found = await self._local_engine().cancel(job)
        key = self._latest.get(job.key)
        future = self._futures.get(key) if key is not None else None
        if key is not None and future is not None and self._client is not None:
            self._cancelled.add(key)
            try:
                with anyio.move_on_after(2):
                    await self._client.cancel([future])
            except (OSError, TimeoutError):
                pass
            found = True
        return found

    def stats(self) -> EngineStats:
        local = self._local.stats() if self._local is not None else EngineStats({}, 0, 0, 0, 0, [])
        queued = dict(local.queued)
        running = local.running
        for key, handle in self._handles.items():
            if handle.done:
                continue
            if key in self._running:
                running += 1
            else:
                queued[handle.job.kind] = queued.get(handle.job.kind, 0) + 1
        cluster: dict[str, Any] = {
            "scheduler": self.address,
            "connected": self._connected,
            "since": self._since,
            "workers": self._workers,
            "threads": self._threads,
            "ranHere": self._ran_here,
        }
        if self._error is not None:
            cluster["error"] = self._error
        return EngineStats(
            queued,
            running,
            local.done + self._done,
            local.failed + self._failed,
            local.retried,
            [*local.recent_failures, *self._failures][-100:],
            local.waits,
            local.peak,
            local.kinds,
            cluster,
        )

    def retry_after(self, job: Job) -> float:
        """The jobs this process has on the cluster, at the pace they have ended, over the
        cluster's threads (at least 1 s, at most a minute)."""
        kind = self._kinds.get(job.kind)
        if kind is None or kind.local or not self.remote:
            return self._local_engine().retry_after(job)
        waiting = sum(1 for h in self._handles.values() if not h.done)
        return max(1.0, min(60.0, waiting * self._pace / max(self._threads, 1)))

    # -- inside ----------------------------------------------------------------------------------

    def _local_engine(self) -> LocalEngine:
        if self._local is None:
            raise RuntimeError("bind the engine to its gallery first (Lenslet does)")
        return self._local

    async def _wait_for_change(self) -> None:
        await self._changed.wait()
        self._changed = anyio.Event()

    def _tell(self) -> None:
        self._changed.set()

    async def _follow(self, key: tuple[str, ...], handle: JobHandle, future: Future[Any]) -> None:
        """Wait for a task's outcome and hand it to its handle; a task the cluster lost (not
        cancelled by anyone) is run here."""
        try:
            try:
                result = await future
            except concurrent.futures.CancelledError:
                if self._closing or key in self._cancelled:
                    handle._end("cancelled")
                    return
                await self._run_here(handle)
                return
            except LensletError as exc:
                self._fail(handle, exc)
                return
            except Exception as exc:
                if self._connected and not self._closing:
                    failure = JobFailed(f"{handle.job.kind} job for {handle.job.path!r} "
                                        f"failed on the cluster: {exc!r}")  # fmt: skip
                    failure.__cause__ = exc
                    self._fail(handle, failure)
                    return
                await self._run_here(handle)  # lost with the connection to the scheduler
                return
            self._done += 1
            self._pace = self._pace * 0.8 + (time.monotonic() - handle.submitted) * 0.2
            handle._end("done", result)
        finally:
            if not handle.done:  # the engine stopped while this waited: nobody waits forever
                handle._end("cancelled")
            self._forget(key, handle)
            future.release()
            self._tell()

    def _fail(self, handle: JobHandle, error: LensletError) -> None:
        self._failed += 1
        handle._end("failed", error=error)
        self._failures.append(handle.to_json())

    async def _run_here(self, handle: JobHandle) -> None:
        """Run a job the cluster lost with its handler, in this task: not through the
        in-process queue, whose workers may all be jobs waiting for this one."""
        job = handle.job
        log.info("the cluster lost a %s job for %r: running it here", job.kind, job.path)
        self._ran_here += 1
        try:
            result = await self._handlers[job.kind](job)
        except LensletError as exc:
            self._fail(handle, exc)
        except Exception as exc:
            log.exception("%s job for %r raised", job.kind, job.path)
            failure = JobFailed(f"{job.kind} job for {job.path!r} failed: {exc!r}")
            failure.__cause__ = exc
            self._fail(handle, failure)
        else:
            self._done += 1
            handle._end("done", result)

    def _forget(self, key: tuple[str, ...], handle: JobHandle) -> None:
        if self._handles.get(key) is handle:
            del self._handles[key]
            self._futures.pop(key, None)
        if self._latest.get(handle.job.key) == key:
            del self._latest[handle.job.key]
        self._cancelled.discard(key)
        self._running.discard(key)

    async def _check(self) -> None:
        """Ask the scheduler how it is: its workers, and which of this engine's tasks run."""
        assert self._client is not None
        scheduler = self._client.scheduler
        try:
            if self._client.status in ("closing", "closed") or scheduler is None:
                # The client gave up reconnecting by itself: a new one, once the scheduler is
                # back (its old tasks were lost with it and have run here).
                self._client = await self._connect(within=max(self.heartbeat * 2, 1.0))
                scheduler = self._client.scheduler
                assert scheduler is not None
            with anyio.fail_after(max(self.heartbeat * 2, 1.0)):
                identity = await scheduler.identity()
                processing: Mapping[str, Any] = await scheduler.processing()
        except (OSError, TimeoutError, EngineUnavailable) as exc:
            if self._connected or self._error is None:
                log.warning("the Dask scheduler at %s does not answer: jobs run here until it "
                            "is back", self.address)  # fmt: skip
                self._since = time.time()
            self._connected = False
            self._workers = self._threads = 0
            if not isinstance(exc, EngineUnavailable):  # that one keeps the last reason
                self._error = f"the scheduler does not answer ({str(exc) or type(exc).__name__})"
            return
        workers = identity.get("workers", {})
        if not self._connected:
            if self._error is not None:
                log.warning("the Dask scheduler at %s answers again", self.address)
            self._since = time.time()
        self._connected = True
        self._workers = len(workers)
        self._threads = sum(int(w.get("nthreads", 1)) for w in workers.values())
        if workers:
            self._workerless = None
        elif self._workerless is None:
            self._workerless = time.monotonic()
        elif time.monotonic() - self._workerless > WORKERLESS_GRACE and self._futures:
            # The tasks sent wait on the scheduler for a worker that may never come: they run
            # here instead (cancelled there by this engine, not by anyone who asked for them).
            lost = list(self._futures.values())
            with anyio.move_on_after(2):
                await self._client.cancel(lost)
        if not workers and self._error != NO_WORKERS:
            log.warning(
                "the Dask scheduler at %s has no workers: jobs run here until one joins "
                "(lenslet worker --scheduler %s)",
                self.address,
                self.address,
            )
        self._error = None if workers else NO_WORKERS
        self._running = {tuple(k) for keys in processing.values() for k in keys} & set(
            self._handles
        )
        for key in self._running:
            self._handles[key].state = "running"

    async def _beat(self) -> None:
        while True:
            await anyio.sleep(self.heartbeat)
            try:
                await self._check()
            except Exception as exc:  # a bug here must not stop the server's work
                log.exception("checking the Dask scheduler at %s failed", self.address)
                self._connected = False
                self._error = f"checking the scheduler failed: {exc!r}"
