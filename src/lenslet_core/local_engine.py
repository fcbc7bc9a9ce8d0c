"""The in-process job engine, lenslet's default: jobs run as tasks on the event loop the engine
was entered on (CPU and I/O inside handlers go through the imaging and storage seams, which
bound them).

- kinds run by priority, highest first (lenslet's: thumbnail → index → rollup → health); a
  kind's dedicated workers take only its jobs, so a request for a thumbnail never waits behind
  a long index job;
- a job is de-duplicated by ``(kind, path)`` while queued (and, for a kind that joins running
  jobs, while running): a thousand requests for one missing thumbnail make one job, and every
  caller waits on it;
- the queue is bounded: a full queue makes submitters wait (or refuses with :class:`QueueFull`
  when they cannot);
- transient storage errors are retried with jittered exponential backoff; permanent failures
  are kept (the most recent ones) for health;
- closing finishes or abandons the queued work; files are only ever written atomically, so an
  abandoned job leaves no partial file.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from .errors import JobFailed, LensletError, QueueFull, StorageError
from .jobs import EngineStats, Handler, Job, JobHandle, Kind
from .settings import Settings
from .timings import Timings, TimingSnapshot

__all__ = ["LocalEngine"]

log = logging.getLogger("lenslet.jobs")

#: Failures kept for health, most recent last.
_FAILURES_KEPT = 100


class LocalEngine:
    """Runs jobs in this process, as tasks on the event loop it was entered on. CPU and I/O
    inside handlers go through the imaging and storage seams, which bound them."""

    def __init__(
        self,
        kinds: Mapping[Kind, Handler] | None = None,
        *,
        workers: int = 4,
        queue_size: int = 10_000,
        attempts: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self._kinds: dict[str, Kind] = {}
        self._handlers: dict[str, Handler] = {}
        self._waits: dict[str, Timings] = {}
        self.workers = workers
        self.queue_size = queue_size
        self.attempts = attempts
        self.backoff = backoff
        self._heap: list[tuple[int, int, JobHandle]] = []
        #: Jobs waiting to run (queued, or waiting for a retry), and jobs running, by key.
        self._handles: dict[tuple[str, str], JobHandle] = {}
        self._active: dict[tuple[str, str], JobHandle] = {}
        self._queued: collections.Counter[str] = collections.Counter()
        self._running = 0
        self._seq = itertools.count()
        self._changed = anyio.Condition()
        self._tg: anyio.abc.TaskGroup | None = None
        self._scopes: set[anyio.CancelScope] = set()
        self._closing = False
        self._retrying = 0
        self._done = 0
        self._failed = 0
        self._retried = 0
        self._peak = 0
        self._failures: collections.deque[dict[str, Any]] = collections.deque(maxlen=_FAILURES_KEPT)
        self._seconds: dict[str, float] = {}
        for kind, handler in (kinds or {}).items():
            self.register(kind, handler)

    def register(self, kind: Kind, handler: Handler) -> None:
        """Run jobs of ``kind`` with ``handler``; refused once the engine runs, or when its
        dedicated workers would leave none for the other kinds."""
        if self._tg is not None:
            raise RuntimeError("register kinds before the engine is entered")
        dedicated = sum(k.dedicated_workers for k in self._kinds.values() if k.name != kind.name)
        dedicated += kind.dedicated_workers
        if self.workers <= dedicated:
            raise ValueError(
                f"a local engine needs at least {dedicated + 1} workers ({dedicated} dedicated "
                "to their kinds, one for the rest)"
            )
        self._kinds[kind.name] = kind
        self._handlers[kind.name] = handler
        self._waits[kind.name] = Timings()

    @property
    def remote(self) -> bool:
        """Never: every job runs here."""
        return False

    def bind(self, root: str, settings: Settings) -> None:
        """Nothing to keep: the handlers registered hold their gallery."""

    @property
    def kinds(self) -> tuple[Kind, ...]:
        """The registered kinds, highest priority first."""
        return tuple(sorted(self._kinds.values(), key=lambda k: k.priority))

    async def __aenter__(self) -> LocalEngine:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        everything = tuple(k.name for k in self.kinds)
        general = self.workers
        for kind in self.kinds:
            for _ in range(kind.dedicated_workers):
                self._spawn(self._worker, (kind.name,))
                general -= 1
        for _ in range(general):
            self._spawn(self._worker, everything)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        await self.close(finish=exc_type is None)
        assert self._tg is not None
        try:
            # The workers are cancelled by now; the caller's own exception (if any) goes on
            # as it is, not wrapped in the task group's exception group (nor swallowed).
            await self._tg.__aexit__(None, None, None)
            return None
        finally:
            # Whatever did not run is told so: nobody waits forever on an abandoned job.
            waiting = [*self._handles.values(), *self._active.values()]
            for handle in [*waiting, *(entry[2] for entry in self._heap)]:
                if not handle.done:
                    handle._end("cancelled")
            self._handles.clear()
            self._active.clear()
            self._heap.clear()
            self._queued.clear()

    async def close(self, *, finish: bool = True) -> None:
        """Stop taking jobs; with ``finish`` first run what is queued (retries of failed jobs
        excepted), else abandon it and cancel what is running. Idempotent."""
        # While finishing, running jobs may still queue follow-up work (a thumbnail's manifest
        # update); new work is refused only once the queue is empty.
        while (
            finish
            and not self._closing
            and (self._queued.total() or self._running or self._retrying)
        ):
            async with self._changed:
                await self._changed.wait()
        self._closing = True
        async with self._changed:
            self._changed.notify_all()  # submitters waiting for room now hear "closed"
        # Each task of the engine has a scope of its own: the caller's task, which entered the
        # engine's task group, is not cancelled with them.
        for scope in list(self._scopes):
            scope.cancel()

    # -- the interface ---------------------------------------------------------------------------

    async def submit(self, job: Job, *, wait_for_room: bool = True) -> JobHandle:
        """Queue ``job`` unless the same job is already waiting to run (then that one's handle;
        for a thumbnail, also one that is running). A full queue makes this wait for room, or
        raise :class:`QueueFull` with ``wait_for_room=False``."""
        while True:
            if self._closing or self._tg is None:
                raise QueueFull("the job engine is not running (shutting down or not started)")
            existing = self._handles.get(job.key)
            if existing is not None and not existing.done:
                return existing
            kind = self._kinds.get(job.kind)
            if kind is None:
                raise ValueError(f"this engine has no handler for {job.kind!r} jobs")
            running = self._active.get(job.key)
            if running is not None and not running.done and kind.joins_running:
                return running
            if self._queued.total() < self.queue_size:
                break
            if not wait_for_room:
                raise QueueFull(
                    f"the job queue is full ({self.queue_size:,} jobs waiting); try again later"
                )
            async with self._changed:
                await self._changed.wait()
        handle = JobHandle(job)
        self._handles[job.key] = handle
        await self._push(handle)
        return handle

    def status(self, job: Job) -> JobHandle | None:
        """The handle of a job like ``job`` that is waiting to run, else of one running."""
        return self._handles.get(job.key) or self._active.get(job.key)

    async def cancel(self, job: Job) -> bool:
        """Cancel the jobs like ``job`` that are queued, waiting for a retry or running;
        returns whether there was one."""
        found = False
        waiting = self._handles.pop(job.key, None)
        if waiting is not None and not waiting.done:
            found = True
            if waiting.state == "queued":
                self._queued[job.kind] -= 1
            waiting._end("cancelled")  # a retry waiting for its time then does nothing
            async with self._changed:
                self._changed.notify_all()  # room for submitters waiting on a full queue
        running = self._active.get(job.key)
        if running is not None and not running.done and running._scope is not None:
            found = True
            running._scope.cancel()  # it ends "cancelled" when its handler stops
        return found

    def stats(self) -> EngineStats:
        names = tuple(k.name for k in self.kinds)
        queued: dict[str, int] = {k: self._queued[k] for k in names if self._queued[k]}
        waits: dict[str, TimingSnapshot] = {k: self._waits[k].snapshot() for k in names}
        return EngineStats(
            queued,
            self._running,
            self._done,
            self._failed,
            self._retried,
            list(self._failures),
            waits,
            self._peak,
            names,
        )

    def retry_after(self, job: Job) -> float:
        """Seconds a caller might wait before asking again: the work queued at or above the
        job's priority, at the pace jobs of each kind have run so far."""
        rank = self._kinds[job.kind].priority
        ahead = sum(
            self._queued[kind.name] * self._seconds.get(kind.name, 0.05)
            for kind in self.kinds
            if kind.priority <= rank
        )
        return max(1.0, min(60.0, ahead / max(self.workers - 1, 1)))

    # -- inside ----------------------------------------------------------------------------------

    async def _push(self, handle: JobHandle) -> None:
        handle.state = "queued"
        priority = self._kinds[handle.job.kind].priority
        heapq.heappush(self._heap, (priority, next(self._seq), handle))
        self._queued[handle.job.kind] += 1
        self._peak = max(self._peak, self._queued.total())
        async with self._changed:
            self._changed.notify_all()

    def _take(self, kinds: tuple[str, ...]) -> JobHandle | None:
        """The first job by priority this worker may take; never a second run of a job
        whose earlier run is still going (it waits its turn, e.g. a rollup save)."""
        later: list[tuple[int, int, JobHandle]] = []
        taken: JobHandle | None = None
        while self._heap:
            handle = self._heap[0][2]
            if handle.done:  # cancelled while queued
                heapq.heappop(self._heap)
            elif handle.job.kind not in kinds:
                break  # strict priority: nothing this worker may take is first
            elif handle.job.key in self._active:
                later.append(heapq.heappop(self._heap))
            else:
                taken = heapq.heappop(self._heap)[2]
                break
        for entry in later:
            heapq.heappush(self._heap, entry)
        if taken is None:
            return None
        key = taken.job.key
        self._queued[taken.job.kind] -= 1
        if self._handles.get(key) is taken:
            del self._handles[key]
        self._active[key] = taken
        return taken

    async def _worker(self, kinds: tuple[str, ...]) -> None:
        while True:
            async with self._changed:
                handle = self._take(kinds)
                while handle is None:
                    await self._changed.wait()
                    handle = self._take(kinds)
                self._running += 1
            try:
                await self._run(handle)
            finally:
                self._running -= 1
                async with self._changed:
                    self._changed.notify_all()

    async def _run(self, handle: JobHandle) -> None:
        job = handle.job
        handle.state = "running"
        handle.attempts += 1
        started = time.monotonic()
        if handle.attempts == 1:
            self._waits[job.kind].observe(started - handle.submitted)
        with anyio.CancelScope() as scope:
            handle._scope = scope
            try:
                result = await self._handlers[job.kind](job)
            except StorageError as exc:
                if handle.attempts < self.attempts and not self._closing:
                    self._retried += 1
                    self._retry(handle)
                    return
                self._fail(handle, exc)
                return
            except LensletError as exc:
                self._fail(handle, exc)
                return
            except Exception as exc:
                log.exception("%s job for %r raised", job.kind, job.path)
                failure = JobFailed(f"{job.kind} job for {job.path!r} failed: {exc!r}")
                failure.__cause__ = exc
                self._fail(handle, failure)
                return
            finally:
                handle._scope = None
            self._done += 1
            elapsed = time.monotonic() - started
            previous = self._seconds.get(job.kind, elapsed)
            self._seconds[job.kind] = previous * 0.8 + elapsed * 0.2
            self._forget(handle)
            handle._end("done", result)
        if scope.cancelled_caught and not handle.done:
            self._forget(handle)
            handle._end("cancelled")

    def _retry(self, handle: JobHandle) -> None:
        """Run a job that met a transient error again after a backoff; if the same job was
        submitted anew meanwhile, that run serves this handle too."""
        key = handle.job.key
        if self._active.get(key) is handle:
            del self._active[key]
        assert self._tg is not None
        newer = self._handles.get(key)
        if newer is not None and not newer.done:
            self._spawn(self._follow, handle, newer)
            return
        self._handles[key] = handle
        self._retrying += 1
        self._spawn(self._retry_later, handle)

    async def _follow(self, handle: JobHandle, newer: JobHandle) -> None:
        try:
            await newer.wait()
            if not handle.done:
                handle._end(newer.state, newer._result, newer.error)
        finally:
            if not handle.done:  # the engine closed first
                handle._end("cancelled")

    def _spawn(self, func: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Start a task of the engine, in a cancel scope that :meth:`close` cancels."""
        assert self._tg is not None

        async def run() -> None:
            with anyio.CancelScope() as scope:
                self._scopes.add(scope)
                if self._closing:
                    scope.cancel()  # started after close() cancelled the others
                try:
                    await func(*args)
                finally:
                    self._scopes.discard(scope)

        self._tg.start_soon(run)

    async def _retry_later(self, handle: JobHandle) -> None:
        try:
            delay = self.backoff * 2 ** (handle.attempts - 1)
            await anyio.sleep(delay * random.uniform(0.5, 1.5))
            if handle.done:
                return
            if self._closing:
                self._forget(handle)
                handle._end("cancelled")
            else:
                await self._push(handle)
        finally:
            self._retrying -= 1
            async with self._changed:
                self._changed.notify_all()

    def _fail(self, handle: JobHandle, error: LensletError) -> None:
        self._failed += 1
        self._forget(handle)
        handle._end("failed", error=error)
        self._failures.append(handle.to_json())

    def _forget(self, handle: JobHandle) -> None:
        for table in (self._handles, self._active):
            if table.get(handle.job.key) is handle:
                del table[handle.job.key]
