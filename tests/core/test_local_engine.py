from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lenslet_core import (
    CorruptImage,
    Job,
    JobFailed,
    JobHandle,
    LocalEngine,
    QueueFull,
    StorageError,
)
from lenslet_core.jobs import Handler, Kind
from lenslet_core.work import INDEX, KINDS, THUMBNAIL

NAMES = [kind.name for kind in KINDS]

pytestmark = pytest.mark.anyio

ROOT = "/photos"


@contextlib.asynccontextmanager
async def running(engine: LocalEngine) -> AsyncIterator[LocalEngine]:
    """The engine, entered; an exception of the body (a failed assert) is raised again after
    the engine's exit even if the exit were to swallow it (as it once did, see
    ``test_an_exception_in_the_body_propagates_as_itself``): no test here passes unchecked."""
    failure: BaseException | None = None
    async with engine:
        try:
            yield engine
        except BaseException as exc:
            failure = exc
            raise
    if failure is not None:
        raise failure


class Workbench:
    """Handlers for every kind of job. Each records the job it starts and returns
    ``"kind:path"``; a job :meth:`occupy` submitted waits for :meth:`release` first, so a test
    can keep every worker busy while it queues work."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.held: dict[str, anyio.Event] = {}
        self._released = anyio.Event()

    @property
    def handlers(self) -> dict[Kind, Handler]:
        return dict.fromkeys(KINDS, self.run)

    async def run(self, job: Job) -> str:
        name = f"{job.kind}:{job.path}"
        self.started.append(name)
        held = self.held.get(name)
        if held is not None:
            held.set()
            await self._released.wait()
        return name

    async def occupy(self, engine: LocalEngine) -> list[JobHandle]:
        """Keep every worker busy: index jobs for the general workers first, then a thumbnail
        job for the worker that only takes thumbnails. Returns once all of them run."""
        jobs = [Job("index", ROOT, f"hold{n}") for n in range(1, engine.workers)]
        jobs.append(Job("thumbnail", ROOT, "hold0"))
        handles = []
        for job in jobs:
            started = self.held[f"{job.kind}:{job.path}"] = anyio.Event()
            handles.append(await engine.submit(job))
            await started.wait()
        assert engine.stats().running == engine.workers
        return handles

    def release(self) -> None:
        self._released.set()


# -- priority and de-duplication -----------------------------------------------------------------


async def test_jobs_run_by_priority_highest_first() -> None:
    bench = Workbench()
    async with running(LocalEngine(bench.handlers, workers=3)) as engine:
        await bench.occupy(engine)
        # Queued lowest priority first, so arrival order alone would give the opposite.
        jobs = [Job(kind, ROOT, f"p{n}") for n in range(2) for kind in reversed(NAMES)]
        handles = [await engine.submit(job) for job in jobs]
        assert engine.stats().queued == dict.fromkeys(NAMES, 2)
        assert engine.stats().depth == 2 * len(NAMES)
        bench.started.clear()
        bench.release()
        for handle in handles:
            assert await handle.wait(5)
    assert bench.started == [
        "thumbnail:p0",
        "thumbnail:p1",
        "index:p0",
        "index:p1",
        "folder:p0",
        "folder:p1",
        "rollup:p0",
        "rollup:p1",
        "health:p0",
        "health:p1",
    ]
    assert [h.result() for h in handles] == [f"{j.kind}:{j.path}" for j in jobs]


async def test_one_worker_takes_only_thumbnails_so_they_never_wait_behind_index_work() -> None:
    bench = Workbench()
    async with running(LocalEngine(bench.handlers, workers=2)) as engine:
        bench.held["index:hold"] = held = anyio.Event()
        await engine.submit(Job("index", ROOT, "hold"))
        await held.wait()  # the one general worker is busy
        index = await engine.submit(Job("index", ROOT, "folder"))
        thumbnail = await engine.submit(Job("thumbnail", ROOT, "a.jpg"))
        assert await thumbnail.wait(5)
        assert thumbnail.result() == "thumbnail:a.jpg"
        await anyio.wait_all_tasks_blocked()
        assert index.state == "queued"  # the idle thumbnail worker leaves it alone
        bench.release()
    assert index.result() == "index:folder"


async def test_a_thousand_submits_of_one_job_run_it_once() -> None:
    calls = 0
    submitted = 0
    all_submitted = anyio.Event()

    async def make(job: Job) -> bytes:
        nonlocal calls
        calls += 1
        await all_submitted.wait()
        return b"thumbnail of " + job.path.encode()

    handles: list[JobHandle] = []
    results: list[bytes] = []

    async with running(LocalEngine({THUMBNAIL: make}, workers=2)) as engine:

        async def ask() -> None:
            nonlocal submitted
            handle = await engine.submit(Job("thumbnail", ROOT, "a.jpg"))
            handles.append(handle)
            submitted += 1
            if submitted == 1000:
                assert engine.stats().depth + engine.stats().running == 1
                all_submitted.set()
            await handle.wait()
            results.append(handle.result())

        async with anyio.create_task_group() as tg:
            for _ in range(1000):
                tg.start_soon(ask)
    assert calls == 1
    assert len(handles) == 1000
    assert all(h is handles[0] for h in handles)
    assert results == [b"thumbnail of a.jpg"] * 1000


async def test_a_job_that_ended_runs_again_when_submitted_again() -> None:
    bench = Workbench()
    async with running(LocalEngine(bench.handlers, workers=2)) as engine:
        first = await engine.submit(Job("index", ROOT, "a"))
        assert await first.wait(5)
        assert engine.status(Job("index", ROOT, "a")) is None
        second = await engine.submit(Job("index", ROOT, "a"))
        assert await second.wait(5)
    assert second is not first
    assert bench.started == ["index:a", "index:a"]


# -- the bounded queue ---------------------------------------------------------------------------


async def test_a_full_queue_refuses_or_makes_the_submitter_wait_for_room() -> None:
    bench = Workbench()
    async with running(LocalEngine(bench.handlers, workers=2, queue_size=2)) as engine:
        await bench.occupy(engine)
        first = await engine.submit(Job("index", ROOT, "q0"))
        await engine.submit(Job("index", ROOT, "q1"))
        with pytest.raises(QueueFull, match="full"):
            await engine.submit(Job("index", ROOT, "q2"), wait_for_room=False)
        # A job already queued is no new work: its handle, full queue or not.
        assert await engine.submit(Job("index", ROOT, "q0"), wait_for_room=False) is first

        admitted = anyio.Event()
        late: list[JobHandle] = []

        async def submit_when_there_is_room() -> None:
            late.append(await engine.submit(Job("index", ROOT, "q2")))
            admitted.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(submit_when_there_is_room)
            await anyio.wait_all_tasks_blocked()
            assert not admitted.is_set()
            assert engine.stats().depth == 2
            bench.release()
            await admitted.wait()
        assert await late[0].wait(5)
        # The most ever waiting is the queue size, however many submitters waited for room.
        assert (engine.stats().peak, engine.stats().to_json()["peak"]) == (2, 2)
    assert late[0].result() == "index:q2"


async def test_cancelling_a_queued_job_makes_room_for_a_waiting_submitter() -> None:
    bench = Workbench()
    async with running(LocalEngine(bench.handlers, workers=2, queue_size=1)) as engine:
        await bench.occupy(engine)
        await engine.submit(Job("index", ROOT, "q0"))
        admitted = anyio.Event()

        async def submit_when_there_is_room() -> None:
            await engine.submit(Job("index", ROOT, "q1"))
            admitted.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(submit_when_there_is_room)
            await anyio.wait_all_tasks_blocked()
            assert not admitted.is_set()
            assert await engine.cancel(Job("index", ROOT, "q0"))
            await anyio.wait_all_tasks_blocked()
            try:
                # The queue has room now; the running jobs have not moved.
                assert admitted.is_set(), "the submitter still waits although the queue has room"
            finally:
                bench.release()


# -- retries and failures ------------------------------------------------------------------------


async def test_storage_errors_are_retried_with_backoff() -> None:
    calls = 0

    async def flaky(job: Job) -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise StorageError("the bucket timed out", path=job.path)
        return "indexed"

    async with running(LocalEngine({INDEX: flaky}, workers=2, attempts=3, backoff=0.01)) as engine:
        handle = await engine.submit(Job("index", ROOT, "a"))
        assert await handle.wait(5)
        stats = engine.stats()
    assert handle.result() == "indexed"
    assert handle.state == "done"
    assert handle.attempts == 3
    assert (stats.retried, stats.done, stats.failed) == (2, 1, 0)
    assert stats.recent_failures == []


async def test_a_job_that_keeps_failing_on_storage_fails_after_its_attempts() -> None:
    calls = 0

    async def down(job: Job) -> str:
        nonlocal calls
        calls += 1
        raise StorageError("the bucket is down", path=job.path)

    async with running(LocalEngine({INDEX: down}, workers=2, attempts=2, backoff=0.01)) as engine:
        handle = await engine.submit(Job("index", ROOT, "a"))
        assert await handle.wait(5)
        stats = engine.stats()
    assert calls == 2
    with pytest.raises(StorageError, match="down"):
        handle.result()
    assert (stats.retried, stats.done, stats.failed) == (1, 0, 1)
    assert stats.recent_failures[-1]["error"]["code"] == "storage_error"
    assert stats.recent_failures[-1]["attempts"] == 2


async def test_a_permanent_failure_is_not_retried_and_is_kept_for_health() -> None:
    calls = 0
    error = CorruptImage("truncated JPEG", path="a.jpg")

    async def broken(job: Job) -> bytes:
        nonlocal calls
        calls += 1
        raise error

    async with running(LocalEngine({THUMBNAIL: broken}, workers=2, backoff=0.01)) as engine:
        handle = await engine.submit(Job("thumbnail", ROOT, "a.jpg"))
        assert await handle.wait(5)
        stats = engine.stats()
    assert calls == 1
    assert handle.state == "failed"
    with pytest.raises(CorruptImage) as raised:
        handle.result()
    assert raised.value is error
    assert (stats.failed, stats.done, stats.retried) == (1, 0, 0)
    [failure] = stats.recent_failures
    assert failure["kind"] == "thumbnail"
    assert failure["path"] == "a.jpg"
    assert failure["error"] == {"code": "corrupt_image", "message": "truncated JPEG"}
    assert stats.to_json()["recentFailures"] == [failure]


async def test_a_handler_bug_fails_its_job_as_job_failed_and_the_engine_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def buggy(job: Job) -> str:
        if job.path == "bad":
            raise RuntimeError("handler bug")
        return "fine"

    with caplog.at_level(logging.ERROR, logger="lenslet.jobs"):
        async with running(LocalEngine({INDEX: buggy}, workers=2)) as engine:
            bad = await engine.submit(Job("index", ROOT, "bad"))
            assert await bad.wait(5)
            good = await engine.submit(Job("index", ROOT, "good"))
            assert await good.wait(5)
            stats = engine.stats()
    with pytest.raises(JobFailed, match="handler bug") as raised:
        bad.result()
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert good.result() == "fine"
    assert (stats.failed, stats.done) == (1, 1)
    assert stats.recent_failures[0]["error"]["code"] == "job_failed"
    assert any(r.exc_info for r in caplog.records)  # the traceback is logged, not lost


# -- cancelling ----------------------------------------------------------------------------------


async def test_cancelling_a_queued_job_ends_it_without_running_it() -> None:
    bench = Workbench()
    async with running(LocalEngine(bench.handlers, workers=2)) as engine:
        await bench.occupy(engine)
        job = Job("index", ROOT, "a")
        handle = await engine.submit(job)
        assert engine.status(job) is handle
        assert not await handle.wait(0)
        assert await engine.cancel(job)
        assert handle.state == "cancelled"
        assert handle.done
        assert engine.status(job) is None
        assert engine.stats().queued == {}
        assert not await engine.cancel(job)  # nothing left to cancel
        bench.release()
    with pytest.raises(QueueFull, match="cancelled"):
        handle.result()
    assert "index:a" not in bench.started


async def test_cancelling_a_running_job_cancels_its_handler() -> None:
    started = anyio.Event()
    stopped = anyio.Event()
    never = anyio.Event()

    async def stuck(job: Job) -> str:
        if job.path != "stuck":
            return "quick"
        started.set()
        try:
            await never.wait()
        except anyio.get_cancelled_exc_class():
            stopped.set()
            raise
        return "unreachable"

    async with running(LocalEngine({INDEX: stuck}, workers=2)) as engine:
        job = Job("index", ROOT, "stuck")
        handle = await engine.submit(job)
        await started.wait()
        assert handle.to_json()["state"] == "running"
        assert await engine.cancel(job)
        assert await handle.wait(5)
        assert stopped.is_set()
        assert handle.state == "cancelled"
        assert engine.stats().running == 0
        after = await engine.submit(Job("index", ROOT, "next"))  # the worker is free again
        assert await after.wait(5)
        stats = engine.stats()
    with pytest.raises(QueueFull):
        handle.result()
    assert after.result() == "quick"
    assert (stats.done, stats.failed) == (1, 0)


async def test_cancelling_a_job_waiting_for_its_retry_stops_it() -> None:
    calls = 0
    failed = anyio.Event()

    async def flaky(job: Job) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            failed.set()
            raise StorageError("the bucket timed out", path=job.path)
        return "indexed"

    async with running(LocalEngine({INDEX: flaky}, workers=2, backoff=0.05)) as engine:
        job = Job("index", ROOT, "a")
        handle = await engine.submit(job)
        await failed.wait()  # the first attempt failed; the retry waits out its backoff
        assert await engine.cancel(job)
        assert await handle.wait(5)
    assert handle.state == "cancelled"
    assert calls == 1


def test_a_local_engine_needs_a_worker_beside_the_thumbnail_worker() -> None:
    with pytest.raises(ValueError, match="at least 2 workers"):
        LocalEngine({THUMBNAIL: Workbench().run}, workers=1)
    engine = LocalEngine({INDEX: Workbench().run}, workers=1)  # no kind wants its own
    with pytest.raises(ValueError, match="at least 2 workers"):
        engine.register(THUMBNAIL, Workbench().run)


# -- closing -------------------------------------------------------------------------------------


async def test_a_clean_exit_finishes_the_queued_jobs() -> None:
    bench = Workbench()
    async with running(LocalEngine(bench.handlers, workers=2)) as engine:
        held = await bench.occupy(engine)
        queued = [await engine.submit(Job(kind, ROOT, "a")) for kind in NAMES]
        assert engine.stats().depth == len(NAMES)
        bench.release()  # the workers go on only once the body has left
    for handle in [*held, *queued]:
        assert handle.state == "done"
    assert [h.result() for h in queued] == [f"{kind}:a" for kind in NAMES]


async def test_an_exception_in_the_body_propagates_as_itself() -> None:
    bench = Workbench()

    async def fail_with_work_queued() -> None:
        async with LocalEngine(bench.handlers, workers=2) as engine:
            await bench.occupy(engine)
            await engine.submit(Job("index", ROOT, "a"))
            raise ValueError("boom")

    # Itself: not swallowed, and not wrapped in the engine's task group's ExceptionGroup.
    with pytest.raises(ValueError, match="boom"):
        await fail_with_work_queued()


async def test_an_exception_in_the_body_abandons_the_queued_work() -> None:
    bench = Workbench()
    held: list[JobHandle] = []
    queued: list[JobHandle] = []
    # Not pytest.raises: whether the exception propagates is the test above's concern.
    with contextlib.suppress(ValueError):
        async with LocalEngine(bench.handlers, workers=2) as engine:
            held = await bench.occupy(engine)
            queued = [await engine.submit(Job(kind, ROOT, "a")) for kind in NAMES]
            raise ValueError("boom")
    assert len(held) == 2
    assert len(queued) == len(NAMES)
    for handle in [*held, *queued]:
        assert handle.done  # nobody waits forever
        assert handle.state == "cancelled"
        with pytest.raises(QueueFull):
            handle.result()
    assert not any(name.endswith(":a") for name in bench.started)


async def test_submitting_to_an_engine_that_is_not_running_is_refused() -> None:
    bench = Workbench()
    engine = LocalEngine(bench.handlers, workers=2)
    with pytest.raises(QueueFull, match="not running"):
        await engine.submit(Job("index", ROOT, "a"))
    async with engine:
        pass
    with pytest.raises(QueueFull, match="not running"):
        await engine.submit(Job("index", ROOT, "a"))
    assert bench.started == []


# -- jobs as records -----------------------------------------------------------------------------


async def test_a_kind_the_engine_has_no_handler_for_is_refused() -> None:
    async with running(LocalEngine({THUMBNAIL: Workbench().run}, workers=2)) as engine:
        with pytest.raises(ValueError, match="no handler"):
            await engine.submit(Job("health", ROOT))


@given(
    kind=st.sampled_from(NAMES),
    root=st.text(min_size=1),
    path=st.text(),
)
def test_a_job_survives_a_json_round_trip(kind: str, root: str, path: str) -> None:
    job = Job(kind, root, path)
    data = json.loads(json.dumps(job.to_json()))
    assert Job.from_json(data) == job
    assert Job.from_json(data).key == (kind, path)


def test_a_job_without_a_path_is_for_the_whole_root() -> None:
    assert Job.from_json({"kind": "health", "root": ROOT}) == Job("health", ROOT, "")


async def test_retry_after_is_at_least_a_second_and_counts_the_work_ahead() -> None:
    bench = Workbench()
    async with running(LocalEngine(bench.handlers, workers=2)) as engine:
        assert engine.retry_after(Job("thumbnail", ROOT, "a.jpg")) == 1.0
        await bench.occupy(engine)
        for n in range(100):
            await engine.submit(Job("health", ROOT, f"h{n}"))
        thumbnail = engine.retry_after(Job("thumbnail", ROOT, "a.jpg"))
        health = engine.retry_after(Job("health", ROOT, "x"))
        bench.release()
    assert thumbnail == 1.0  # health jobs queued behind do not delay a thumbnail
    assert 1.0 < health <= 60.0


async def test_a_job_submitted_while_its_like_runs_runs_again_after_it() -> None:
    """A rollup save asked for while one is being written must not be lost, nor run beside
    it: it waits for the running one, then runs (a thumbnail instead joins the running job)."""
    bench = Workbench()
    first_started = bench.held["rollup:"] = anyio.Event()
    async with running(LocalEngine(bench.handlers, workers=4)) as engine:
        first = await engine.submit(Job("rollup", ROOT))
        await first_started.wait()
        second = await engine.submit(Job("rollup", ROOT))
        third = await engine.submit(Job("rollup", ROOT))
        assert second is not first
        assert third is second  # waiting jobs still de-duplicate
        await anyio.wait_all_tasks_blocked()
        assert bench.started == ["rollup:"]  # free workers did not start it beside the first
        assert engine.status(Job("rollup", ROOT)) is second
        bench._released.set()
        assert await second.wait(5)
    assert bench.started == ["rollup:", "rollup:"]
    assert first.result() == second.result() == "rollup:"


async def test_a_thumbnail_asked_for_while_it_is_made_joins_that_job() -> None:
    bench = Workbench()
    started = bench.held["thumbnail:a.jpg"] = anyio.Event()
    async with running(LocalEngine(bench.handlers, workers=2)) as engine:
        first = await engine.submit(Job("thumbnail", ROOT, "a.jpg"))
        await started.wait()
        assert await engine.submit(Job("thumbnail", ROOT, "a.jpg")) is first
        bench._released.set()
    assert bench.started == ["thumbnail:a.jpg"]


async def test_closing_tells_a_submitter_waiting_for_room() -> None:
    bench = Workbench()
    refused: list[QueueFull] = []
    async with running(LocalEngine(bench.handlers, workers=2, queue_size=1)) as engine:
        await bench.occupy(engine)
        await engine.submit(Job("health", ROOT, "fills-the-queue"))

        async def submit_when_room() -> None:
            try:
                await engine.submit(Job("health", ROOT, "waits"))
            except QueueFull as exc:
                refused.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(submit_when_room)
            await anyio.wait_all_tasks_blocked()
            with anyio.fail_after(5):
                await engine.close(finish=False)
    assert len(refused) == 1


async def test_an_engine_closed_at_once_stops() -> None:
    bench = Workbench()
    with anyio.fail_after(5):
        async with running(LocalEngine(bench.handlers, workers=3)) as engine:
            await engine.close(finish=False)
    assert bench.started == []
