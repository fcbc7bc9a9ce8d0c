"""A real Dask cluster on loopback for tests and benchmarks: ``dask scheduler`` and
``lenslet worker`` processes, each killable on its own."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from tests.servers import free_port


class Cluster:
    """A scheduler and its workers, as processes; ``address`` is the scheduler's."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.env = env
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        #: What reads each worker's log once it has joined (so its pipe never fills).
        self._drains: list[subprocess.Popen[bytes]] = []

    def start_scheduler(self) -> None:
        self.scheduler = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", str(self.port), "--no-dashboard", "--no-show"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.env,
        )  # fmt: skip

    def start_worker(self, nthreads: int = 1, *, prefix: tuple[str, ...] = ()) -> str:
        """One more ``lenslet worker`` (``prefix``: a command it runs under); returns its
        address once it is registered."""
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "lenslet_cli", "worker", "--scheduler",
             self.address, "--nthreads", str(nthreads), "--host", "127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=self.env,
        )  # fmt: skip
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline().decode()
            if not line and proc.poll() is not None:
                break
            if line.startswith("lenslet: worker ") and " ready " in line:
                address = line.split()[2]
                # The rest of its log is not read: send it nowhere, so it never blocks.
                drain = subprocess.Popen(["cat"], stdin=proc.stderr, stdout=subprocess.DEVNULL)
                proc.stderr.close()
                self.workers[address] = proc
                self._drains.append(drain)
                return address
        proc.kill()
        raise AssertionError(f"the worker did not start: {proc.stderr.read().decode()}")

    def kill_worker(self, address: str) -> None:
        proc = self.workers.pop(address)
        proc.kill()
        proc.wait(10)

    def kill_scheduler(self) -> None:
        assert self.scheduler is not None
        self.scheduler.kill()
        self.scheduler.wait(10)

    def stop(self) -> None:
        for proc in [*self.workers.values(), self.scheduler]:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for drain in self._drains:
            drain.wait(10)

    def events(self) -> list[dict[str, Any]]:
        """The jobs the workers started, in order, from the scheduler's event log."""
        from distributed import Client

        with Client(self.address, timeout=10, set_as_default=False) as client:
            return [event for _, event in client.get_events("lenslet")]


@contextlib.contextmanager
def cluster(workers: int = 2, *, env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """A scheduler and ``workers`` one-thread ``lenslet worker``s on loopback."""
    running = Cluster({**os.environ, **(env or {})})
    try:
        running.start_scheduler()
        for _ in range(workers):
            running.start_worker()
        yield running
    finally:
        running.stop()
