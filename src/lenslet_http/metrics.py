"""``GET /metrics``: Prometheus text, for operators and the benchmark report.

The PRD's success measures: folder pages served from an existing manifest against rebuilt
(goal 95%), thumbnails served from a file against made on request (goal above 85%), the time
from a new image to its folder indexed with its thumbnail (SLA two minutes), the job queue by
kind (depth, wait, failures), and the latency of each route. Each app has a registry of its
own (no process-wide state); the facade's counts are read when Prometheus scrapes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lenslet_core import Lenslet, Timings, TimingSnapshot

from .openapi import Answer, Operation, operation
from .routing import route_path

__all__ = ["Metrics", "Timed"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _FacadeCollector(Collector):
    def __init__(self, lens: Lenslet) -> None:
        self.lens = lens

    def collect(self) -> Iterator[Metric]:
        stats = self.lens.stats()
        served, rebuilt = stats.pages_served, stats.pages_rebuilt
        folders = CounterMetricFamily(
            "lenslet_folder_pages",
            "Folder pages answered, by where they came from",
            labels=["source"],
        )
        folders.add_metric(["manifest"], served)
        folders.add_metric(["rebuilt"], rebuilt)
        yield folders
        thumbs = CounterMetricFamily(
            "lenslet_thumbnails", "Thumbnails asked for, by outcome", labels=["outcome"]
        )
        for outcome, count in stats.thumbnails.items():
            thumbs.add_metric([outcome], count)
        yield thumbs
        jobs = stats.jobs
        queued = GaugeMetricFamily("lenslet_jobs_queued", "Jobs waiting, by kind", labels=["kind"])
        for kind in jobs.kinds:
            queued.add_metric([kind], jobs.queued.get(kind, 0))
        yield queued
        yield GaugeMetricFamily("lenslet_jobs_running", "Jobs running", value=jobs.running)
        yield CounterMetricFamily("lenslet_jobs_done", "Jobs done", value=jobs.done)
        yield CounterMetricFamily("lenslet_jobs_failed", "Jobs failed", value=jobs.failed)
        yield CounterMetricFamily("lenslet_jobs_retried", "Job retries", value=jobs.retried)
        if jobs.cluster is not None:  # a distributed engine: its scheduler and workers
            yield GaugeMetricFamily(
                "lenslet_cluster_connected",
                "Whether the cluster's scheduler answers (1) or not (0)",
                value=int(bool(jobs.cluster.get("connected"))),
            )
            yield GaugeMetricFamily(
                "lenslet_cluster_workers",
                "Workers of the cluster",
                value=int(jobs.cluster.get("workers", 0)),
            )
            yield CounterMetricFamily(
                "lenslet_cluster_jobs_ran_here",
                "Jobs the cluster lost on their way, run in this process instead",
                value=int(jobs.cluster.get("ranHere", 0)),
            )
        waits = HistogramMetricFamily(
            "lenslet_job_wait_seconds", "Time jobs waited in the queue, by kind", labels=["kind"]
        )
        for name, snapshot in jobs.waits.items():
            waits.add_metric([name], _buckets(snapshot), snapshot.total)
        yield waits
        lag = stats.arrival_lag
        arrivals = HistogramMetricFamily(
            "lenslet_new_image_indexed_seconds",
            "From a new image's arrival (its mtime) to its folder's manifest and thumbnail",
        )
        arrivals.add_metric([], _buckets(lag), lag.total)
        yield arrivals


class _LatencyCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(
            "lenslet_http_request_seconds",
            "Time to answer a request, by route, method and status",
            labels=["route", "method", "status"],
        )
        for (route, method, status), timings in list(self.metrics.latency.items()):
            snapshot = timings.snapshot()
            family.add_metric([route, method, str(status)], _buckets(snapshot), snapshot.total)
        yield family


def _buckets(snapshot: TimingSnapshot) -> list[tuple[str, float]]:
    return [
        ("+Inf" if bound == float("inf") else repr(bound), float(n))
        for bound, n in snapshot.cumulative()
    ]


class Metrics:
    """The registry of one app: request latency (an ASGI middleware) and the facade's counts."""

    #: Seconds: the buckets of request latency.
    BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0)

    def __init__(self, lens: Lenslet) -> None:
        self.routes: frozenset[str] = frozenset()
        #: (route, method, status) -> its requests' latency. Counted on the event loop in
        #: plain numbers (a Prometheus histogram's lock and calls cost more than the count).
        self.latency: dict[tuple[str, str, int], Timings] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_FacadeCollector(lens))
        self.registry.register(_LatencyCollector(self))

    @operation(
        Operation(
            "Prometheus metrics: pages served and rebuilt, thumbnails, the job queue, latency",
            {200: Answer("The text exposition format", None, "text/plain")},
        )
    )
    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE)

    def observe(self, path: str, method: str, status: int, seconds: float) -> None:
        """One request's latency. Known routes by name; anything else as "other", so labels
        stay few (each label set's histogram is looked up once)."""
        key = (path if path in self.routes else "other", method, status)
        timings = self.latency.get(key)
        if timings is None:
            timings = self.latency[key] = Timings(self.BUCKETS)
        timings.observe(seconds)


class Timed:
    """Middleware: each request's latency into :class:`Metrics`."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        # Not a coroutine of its own: it hands back what ``send`` gives to be awaited, so a
        # message passes this layer without one more frame (a read route sends two).
        def sending(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.observe(route_path(scope), scope["method"], status, seconds)
