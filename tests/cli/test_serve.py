"""``lenslet serve`` as a real process: it serves, indexes what is missing, and stops on Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.imagegen import jpeg_bytes, write


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_answers_indexes_and_stops_cleanly(gallery: Path) -> None:
    write(gallery / "trips" / "a.jpg", jpeg_bytes(320, 240))
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lenslet_cli", "serve", str(gallery), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the server did not answer"
            try:
                health = httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert health.status_code == 200
        while not (gallery / "_rollup.json").exists():  # the start-up index, in the background
            assert time.monotonic() < deadline, "the start-up index did not finish"
            time.sleep(0.1)
        folders = httpx.get(f"{url}/folders", params={"path": "/trips"}, timeout=10)
        assert [i["path"] for i in folders.json()["items"]] == ["trips/a.jpg"]
        thumb = httpx.get(f"{url}/thumb", params={"path": "trips/a.jpg", "wait": "5"}, timeout=10)
        assert thumb.headers["content-type"] == "image/webp"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}".encode() in err
    assert not [p for p in gallery.rglob("*") if p.name.endswith(".lenslet-tmp")]
