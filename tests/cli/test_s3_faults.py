"""S3 faults as an operator meets them, with real processes: an endpoint that goes down and
comes back (a loopback proxy in front of the S3 server), endpoints from the environment, an
endpoint that is not S3, a bucket name S3 would refuse."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import S3
from tests.imagegen import jpeg_bytes
from tests.proxy import Proxy
from tests.servers import lenslet, serving


@pytest.fixture
def proxy(s3: S3) -> Iterator[Proxy]:
    parts = urlsplit(s3.endpoint)
    assert parts.hostname is not None
    assert parts.port is not None
    front = Proxy((parts.hostname, parts.port))
    front.start()
    yield front
    front.stop()


@pytest.mark.slow
def test_an_outage_fails_fast_and_the_server_recovers(s3: S3, proxy: Proxy) -> None:
    for n in range(3):
        s3.put(f"gallery/a/{n}.jpg", jpeg_bytes(32, 24, seed=n))
        s3.put(f"gallery/b/{n}.jpg", jpeg_bytes(32, 24, seed=n))
    options = ("--endpoint-url", proxy.url)
    assert lenslet("index", s3.url(), *options).returncode == 0
    with serving(s3.url(), "--no-index", *options) as (_, url):
        assert httpx.get(f"{url}/folders", params={"path": "a"}, timeout=10).status_code == 200
        proxy.stop()
        began = time.monotonic()
        health = httpx.get(f"{url}/health", timeout=10)
        assert time.monotonic() - began < 2.5
        assert health.status_code == 503
        assert health.json()["storage"]["reachable"] is False
        began = time.monotonic()
        folders = httpx.get(f"{url}/folders", params={"path": "b"}, timeout=30)
        assert time.monotonic() - began < 10
        assert folders.status_code in (502, 503), folders.text
        assert folders.json()["error"]["code"] == "storage_error"
        began = time.monotonic()
        indexed = lenslet("index", s3.url(), *options)
        searched = lenslet("search", s3.url(), "x", *options)
        assert time.monotonic() - began < 20
        assert (indexed.returncode, searched.returncode) == (3, 3), indexed.stderr
        assert "cannot reach the S3 endpoint" in indexed.stderr
        proxy.start()
        deadline = time.monotonic() + 15
        while httpx.get(f"{url}/health", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "the server did not recover"
            time.sleep(0.2)
        assert httpx.get(f"{url}/folders", params={"path": "b"}, timeout=10).status_code == 200


def test_endpoints_from_the_environment(s3: S3) -> None:
    s3.put("gallery/a/x.jpg", jpeg_bytes(32, 24))
    for variable in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        indexed = lenslet("index", s3.url(), env={variable: s3.endpoint})
        assert indexed.returncode == 0, indexed.stderr


class _NotS3(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        self.send_response(404)
        self.end_headers()

    do_GET = do_HEAD

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_an_endpoint_that_is_not_s3_says_so_and_a_bad_bucket_is_a_usage_error(s3: S3) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotS3)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        wrong = lenslet("index", "s3://some-bucket/g", "--endpoint-url", endpoint)
    finally:
        server.shutdown()
        server.server_close()
    assert wrong.returncode == 3, wrong.stderr
    assert "does not answer like S3" in wrong.stderr
    bad = lenslet("index", "s3://Bad_Bucket!/g", "--endpoint-url", s3.endpoint)
    assert bad.returncode == 2, bad.stderr
    assert bad.stderr.strip().count("\n") == 0
    assert "not a valid S3 bucket name" in bad.stderr


def test_serve_says_in_one_line_why_it_cannot_start(s3: S3) -> None:
    started = lenslet("serve", "s3://no-such-bucket/g", "--endpoint-url", s3.endpoint)
    assert started.returncode == 2, started.stderr
    assert "Traceback" not in started.stderr
    assert started.stderr.strip().count("\n") == 0
    assert "bucket does not exist" in started.stderr
