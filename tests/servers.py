"""Real lenslet processes for tests: ``lenslet serve`` servers and CLI runs."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx


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
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``lenslet serve ARGS --port P`` as a process, once it answers ``/health``; killed if a
    test leaves it running."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lenslet_cli", "serve", *args, "--port", str(port)],
        stdout=subprocess.DEVNULL,
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
