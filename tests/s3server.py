"""A real S3 API server on loopback for the tests: moto's S3 in its own process, with a log of
the requests that reach it, so tests count what lenslet really asks of S3.

    python -m tests.s3server PORT [LATENCY_MS]

``LATENCY_MS`` holds every S3 answer back that long, as a real bucket's time to first byte does
(tens of milliseconds); a benchmark then measures what concurrency buys, not moto's CPU.
``GET /_requests`` answers the log as JSON (``[[method, path, query], ...]``) and
``DELETE /_requests`` empties it (and the peaks); ``GET /_peak/BUCKET`` answers the most
requests to that bucket the server was answering at once. A bucket named ``slow-…`` has every
answer held back ``SLOW_SECONDS`` whatever ``LATENCY_MS`` is, so that a test can see how many
requests a client keeps in flight; everything else is S3.

Conditional writes (a PUT with ``If-Match`` or ``If-None-Match``) are answered one at a time:
S3 checks the condition and writes in one step, where moto checks, then writes, in one of its
request threads, so two PUTs expecting the same ETag could both succeed (a lost update that S3
itself would never let through).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

LOG_PATH = "/_requests"
PEAK_PATH = "/_peak/"
SLOW_PREFIX = "slow-"
SLOW_SECONDS = 0.2

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


class Logged:
    """A WSGI app that records each request before S3 answers it."""

    def __init__(
        self, app: Callable[[Environ, StartResponse], Iterable[bytes]], latency: float = 0.0
    ) -> None:
        self.app = app
        self.latency = latency
        self.log: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()
        self.conditional = threading.Lock()
        self.in_flight: dict[str, int] = {}
        self.peaks: dict[str, int] = {}

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if path == LOG_PATH:
            with self.lock:
                body = orjson.dumps(self.log)
                if method == "DELETE":
                    self.log.clear()
                    self.peaks.clear()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        if path.startswith(PEAK_PATH):
            with self.lock:
                body = orjson.dumps(self.peaks.get(path[len(PEAK_PATH) :], 0))
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        bucket = path.strip("/").split("/", 1)[0]
        with self.lock:
            self.log.append((method, path, environ.get("QUERY_STRING", "")))
            now = self.in_flight[bucket] = self.in_flight.get(bucket, 0) + 1
            self.peaks[bucket] = max(self.peaks.get(bucket, 0), now)
        try:
            held = SLOW_SECONDS if bucket.startswith(SLOW_PREFIX) else self.latency
            if held:
                time.sleep(held)
            if method == "PUT" and ("HTTP_IF_MATCH" in environ or "HTTP_IF_NONE_MATCH" in environ):
                with self.conditional:  # checked and written as one step, as S3 does
                    return list(self.app(environ, start_response))
            return list(self.app(environ, start_response))
        finally:
            with self.lock:
                self.in_flight[bucket] -= 1


def main(port: int, latency_ms: float = 0.0) -> None:
    app = Logged(DomainDispatcherApplication(create_backend_app), latency_ms / 1000)
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"s3 server on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 0,
        float(sys.argv[2]) if len(sys.argv) > 2 else 0.0,
    )
