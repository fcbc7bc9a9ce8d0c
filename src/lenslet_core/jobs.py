"""Background work: jobs as plain records, run by an engine with strict priorities.

A :class:`Job` is data only (kind, root, logical path), so an engine that runs jobs on other
machines can take the same records; what a kind of job does is a handler registered with the
engine beside the :class:`Kind` (its name, priority, whether a running job serves new requests,
workers of its own). The engine knows no kinds of its own: lenslet's are in :mod:`work`. Any
engine implements :class:`Engine`; :class:`~lenslet_core.local_engine.LocalEngine` is the
default, in-process one.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio
import anyio.abc

from .errors import LensletError, QueueFull
from .timings import TimingSnapshot

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["Engine", "EngineStats", "Handler", "Job", "JobHandle", "JobState", "Kind"]

JobState = Literal["queued", "running", "done", "failed", "cancelled"]


@dataclasses.dataclass(frozen=True)
class Kind:
    """A kind of job as an engine schedules it: ``priority`` (lower runs first);
    ``joins_running``: a running job serves a new request for the same path (a thumbnail made
    from the image as it is; other kinds run again, as their job may have read what has since
    changed); ``dedicated_workers`` take only this kind; ``local``: it works on the state of
    the process that submits it (its rollup, its health in memory), so an engine that runs
    jobs on other machines runs these in that process all the same."""

    name: str
    priority: int
    joins_running: bool = False
    dedicated_workers: int = 0
    local: bool = False


@dataclasses.dataclass(frozen=True)
class Job:
    """One unit of background work: plain, serializable data."""

    kind: str
    root: str
    path: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.path)

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "root": self.root, "path": self.path}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Job:
        return cls(data["kind"], data["root"], data.get("path", ""))


#: What runs a kind of job; its return value is the job's result.
Handler = Callable[[Job], Awaitable[Any]]


class JobHandle:
    """A submitted job: its state, and a way to wait for its outcome."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.state: JobState = "queued"
        self.attempts = 0
        self.error: LensletError | None = None
        self.submitted = time.monotonic()
        self.finished: float | None = None
        self._result: Any = None
        self._done = anyio.Event()
        self._scope: anyio.CancelScope | None = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    async def wait(self, within: float | None = None) -> bool:
        """Wait up to ``within`` seconds (``None``: as long as it takes) for the job to end;
        returns whether it has."""
        with anyio.move_on_after(math.inf if within is None else max(within, 0)):
            await self._done.wait()
        return self.done

    def result(self) -> Any:
        """What the job's handler returned; raises its error if it failed."""
        if self.state == "failed" and self.error is not None:
            raise self.error
        if self.state == "cancelled":
            raise QueueFull(f"{self.job.kind} job for {self.job.path!r} was cancelled")
        if not self.done:
            raise RuntimeError("the job has not ended yet")
        return self._result

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {**self.job.to_json(), "state": self.state}
        data["attempts"] = self.attempts
        if self.error is not None:
            data["error"] = {"code": self.error.code, "message": self.error.message}
        return data

    def _end(self, state: JobState, result: Any = None, error: LensletError | None = None) -> None:
        self.state, self._result, self.error = state, result, error
        self.finished = time.monotonic()
        self._done.set()


@dataclasses.dataclass(frozen=True)
class EngineStats:
    """The queue as health reports it."""

    queued: dict[str, int]
    running: int
    done: int
    failed: int
    retried: int
    recent_failures: list[dict[str, Any]]
    #: Time from submit to first start, per kind.
    waits: dict[str, TimingSnapshot] = dataclasses.field(default_factory=dict)
    #: The most jobs waiting at once since the engine started (never above its queue size).
    peak: int = 0
    #: The kinds registered, highest priority first.
    kinds: tuple[str, ...] = ()
    #: A distributed engine's cluster: its scheduler, whether it answers, its workers.
    cluster: dict[str, Any] | None = None

    @property
    def depth(self) -> int:
        return sum(self.queued.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "depth": self.depth,
            "peak": self.peak,
            "queued": self.queued,
            "running": self.running,
            "done": self.done,
            "failed": self.failed,
            "retried": self.retried,
            "recentFailures": self.recent_failures,
            **({"cluster": self.cluster} if self.cluster is not None else {}),
        }


class Engine(Protocol):
    """What lenslet needs of a job engine; a distributed one implements the same."""

    @property
    def remote(self) -> bool:
        """Whether jobs run in other processes now: an index run then sends each folder as a
        job of its own instead of indexing it here."""

    def bind(self, root: str, settings: Settings) -> None:
        """The gallery this engine runs jobs for (before it is entered): an engine that runs
        jobs elsewhere sends both with each job, so its workers open the same gallery."""

    def register(self, kind: Kind, handler: Handler) -> None:
        """Run jobs of ``kind`` with ``handler`` (before the engine is entered)."""

    async def __aenter__(self) -> Engine: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...

    async def close(self, *, finish: bool = True) -> None:
        """Stop taking jobs; ``finish``: run what is queued first, else abandon it."""

    async def submit(self, job: Job, *, wait_for_room: bool = True) -> JobHandle:
        """Queue a job (or join the same one queued); :class:`QueueFull` when there is no room
        and ``wait_for_room`` is off, or the engine is not running."""

    def status(self, job: Job) -> JobHandle | None:
        """The handle of a job like ``job`` waiting or running, if any."""

    async def cancel(self, job: Job) -> bool:
        """Cancel the jobs like ``job``; whether there was one."""

    def stats(self) -> EngineStats:
        """The queue as health and metrics report it."""

    def retry_after(self, job: Job) -> float:
        """Seconds a caller might wait before asking again about ``job``."""
