"""Real lenslet processes and servers for tests: ``lenslet serve`` servers, CLI runs, and any
ASGI app under a real uvicorn in a thread."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

from lenslet_cli.serve import KEEP_ALIVE


def lenslet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """One run of the real CLI as a process of its own (``env``: added to this one's)."""
    return subprocess.run(
        [sys.executable, "-m", "lenslet_cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(
    *args: str, stdout: int = subprocess.DEVNULL
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``lenslet serve ARGS --port P`` as a process, once it answers ``/health``; killed if a
    test leaves it running (``stdout``: where its request log goes)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lenslet_cli", "serve", *args, "--port", str(port)],
        stdout=stdout,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the server did not answer"
            try:
                httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        elif proc.stderr is not None and not proc.stderr.closed:
            proc.stderr.close()  # a test that killed or stopped it itself


@contextlib.contextmanager
def serving_app(app: Any) -> Iterator[str]:
    """A real uvicorn server for ``app`` on a free loopback port, lifespan and all."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, lifespan="on", log_level="warning", ws="none", http="h11",
        timeout_keep_alive=KEEP_ALIVE,  # as `lenslet serve`: longer than httpx keeps one
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()
