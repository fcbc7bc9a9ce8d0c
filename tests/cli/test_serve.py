"""``lenslet serve`` as a real process: it serves, indexes what is missing, and stops on Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.conftest import S3
from tests.imagegen import jpeg_bytes, png_bytes, write
from tests.servers import lenslet, serving


def test_serve_answers_indexes_and_stops_cleanly(gallery: Path) -> None:
    write(gallery / "trips" / "a.jpg", jpeg_bytes(320, 240))
    with serving(str(gallery)) as (proc, url):
        health = httpx.get(f"{url}/health", timeout=10)
        assert health.status_code == 200
        deadline = time.monotonic() + 30
        while not (gallery / "_rollup.json").exists():  # the start-up index, in the background
            assert time.monotonic() < deadline, "the start-up index did not finish"
            time.sleep(0.1)
        folders = httpx.get(f"{url}/folders", params={"path": "/trips"}, timeout=10)
        assert [i["path"] for i in folders.json()["items"]] == ["trips/a.jpg"]
        thumb = httpx.get(f"{url}/thumb", params={"path": "trips/a.jpg", "wait": "5"}, timeout=10)
        assert thumb.headers["content-type"] == "image/webp"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert url.encode() in err
    assert not [p for p in gallery.rglob("*") if p.name.endswith(".lenslet-tmp")]


def test_serve_and_index_an_s3_root(s3: S3) -> None:
    from typer.testing import CliRunner

    from lenslet_cli import app

    s3.put("gallery/trips/a.jpg", jpeg_bytes(320, 240))
    s3.put("gallery/trips/b.png", png_bytes(64, 64))
    indexed = CliRunner().invoke(app, ["index", s3.url(), "--endpoint-url", s3.endpoint])
    assert indexed.exit_code == 0, indexed.output
    assert "gallery/trips/a.jpg.thumbnail" in s3.keys("gallery/")
    with serving(s3.url(), "--endpoint-url", s3.endpoint) as (proc, url):
        health = httpx.get(f"{url}/health", timeout=10)
        assert health.json()["storage"] == {"reachable": True}
        folders = httpx.get(f"{url}/folders", params={"path": "/trips"}, timeout=10)
        assert [i["path"] for i in folders.json()["items"]] == ["trips/a.jpg", "trips/b.png"]
        thumb = httpx.get(f"{url}/thumb", params={"path": "trips/a.jpg"}, timeout=10)
        assert thumb.status_code == 200
        assert thumb.headers["content-type"] == "image/webp"
        put = httpx.put(f"{url}/item", params={"path": "trips/a.jpg"}, json={"tags": ["s3"]})
        assert put.status_code == 200, put.text
        ranged = httpx.get(
            f"{url}/file", params={"path": "trips/a.jpg"}, headers={"Range": "bytes=0-1"}
        )
        assert ranged.status_code == 206
        assert ranged.content == b"\xff\xd8"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert b'"s3"' in s3.get("gallery/trips/a.jpg.json")


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def test_ten_clients_sending_huge_bodies_do_not_swell_the_server(gallery: Path) -> None:
    """Ten clients send huge bodies at once — 300 MB sidecars (chunked), 600 MB uploads (above
    max_file_bytes): each is refused as it arrives, the server's memory stays small, and it
    goes on serving."""
    import threading

    write(gallery / "x.jpg", jpeg_bytes(32, 24))
    with serving(str(gallery), "--no-index", "--no-watch") as (proc, url):
        peak = _rss_mib(proc.pid)
        answers: list[int | str] = []

        def body(mib: int, head: bytes = b"") -> Iterator[bytes]:
            yield head
            block = b" " * (1 << 20)
            for _ in range(mib):
                yield block

        def send(n: int) -> None:
            try:
                if n % 2:
                    answer = httpx.put(f"{url}/item?path=x.jpg", content=body(300), timeout=60)
                else:
                    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"'
                    headers = {
                        "Content-Type": "multipart/form-data; boundary=b",
                        "Content-Length": str(600 << 20),
                    }
                    answer = httpx.post(
                        f"{url}/file", content=body(600, part + b"\r\n\r\n"), headers=headers
                    )
                answers.append(answer.status_code)
            except httpx.TransportError as exc:  # the server closed while we were sending
                answers.append(type(exc).__name__)

        threads = [threading.Thread(target=send, args=(n,)) for n in range(10)]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, _rss_mib(proc.pid))
            time.sleep(0.02)
        assert peak < 300, peak
        assert all(a == 413 or isinstance(a, str) for a in answers), answers
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        assert not (gallery / "x.jpg.json").exists()


def test_a_port_in_use_is_one_clear_line_and_exit_2(gallery: Path) -> None:
    write(gallery / "a.jpg", jpeg_bytes())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = lenslet("serve", str(gallery), "--port", str(port), "--no-index")
    assert result.returncode == 2, result.stderr
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert "serving" not in result.stderr  # nothing said it was serving
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_host_that_is_not_this_machines_is_exit_2(gallery: Path) -> None:
    result = lenslet("serve", str(gallery), "--host", "no-such-host.invalid", "--no-index")
    assert result.returncode == 2, result.stderr
    assert "cannot listen on 'no-such-host.invalid'" in result.stderr
    assert "serving" not in result.stderr


def _served_logs(gallery: Path, *args: str) -> tuple[list[dict[str, Any]], bytes]:
    """Serve ``gallery`` until its start-up index is done and one folder is asked for; its
    log lines on stderr (JSON) and what it wrote on stdout (the request log)."""
    with serving(str(gallery), "--log-format", "json", *args, stdout=subprocess.PIPE) as (
        proc,
        url,
    ):
        deadline = time.monotonic() + 20
        while not (gallery / "_rollup.json").exists():  # the start-up index
            assert time.monotonic() < deadline
            time.sleep(0.05)
        httpx.get(f"{url}/folders", params={"path": "a"})
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    return [orjson.loads(line) for line in err.decode().splitlines() if line.startswith("{")], out


def test_json_log_lines_for_a_log_collector_and_a_request_log(gallery: Path) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    lines, requests = _served_logs(gallery)
    messages = [line["message"] for line in lines]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(m.startswith("indexed ") and "1 images" in m for m in messages), messages
    assert any(line["logger"].startswith("uvicorn") for line in lines)
    logged = [orjson.loads(line) for line in requests.decode().splitlines()]
    assert any("GET /folders" in line["message"] for line in logged)  # one JSON line too
    _, quiet = _served_logs(gallery, "--no-access-log")
    assert b"GET /folders" not in quiet


def test_behind_a_proxy_the_links_carry_its_prefix(gallery: Path) -> None:
    write(gallery / "big.jpg", jpeg_bytes(2400, 1800))
    with serving(str(gallery), "--no-index", "--root-path", "/gallery/") as (_, url):
        # the proxy strips /gallery before passing the request on
        answer = httpx.get(
            f"{url}/thumb", params={"path": "big.jpg"}, headers={"Prefer": "respond-async, wait=0"}
        )
        assert answer.status_code == 202  # not made within no wait at all: the 202 says where
        assert answer.headers["location"].startswith("/gallery/thumb?path=")
        document = httpx.get(f"{url}/openapi.json").json()
        assert "/thumb" in document["paths"]


def test_the_listening_socket_sends_answers_without_waiting_for_acks() -> None:
    """Answers go out as two writes; with Nagle's algorithm on, the second waited for the
    client's delayed ACK (40 ms a request on a kept-alive connection). Accepted connections
    take TCP_NODELAY from the listening socket."""
    from lenslet_cli.serve import _listen

    listening = _listen("127.0.0.1", 0)
    try:
        assert listening.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        with socket.create_connection(listening.getsockname()):
            accepted, _ = listening.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        listening.close()


def _answer_on(conn: socket.socket) -> bytes:
    """One answer read from a kept-alive connection: its status line and headers, then as
    many bytes as its Content-Length says."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        assert chunk, "the server closed the connection"
        body += chunk
    return head


def test_an_idle_connection_outlives_a_clients_own_keep_alive(gallery: Path) -> None:
    """A connection idle for longer than httpx keeps one (5 s, uvicorn's own default) is
    still open: the client closes first, so it never reuses one the server is closing."""
    write(gallery / "x.jpg", jpeg_bytes())
    with (
        serving(str(gallery), "--no-index", "--no-watch") as (_, url),
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=10) as conn,
    ):
        ask = b"GET /health HTTP/1.1\r\nHost: lenslet\r\n\r\n"
        conn.sendall(ask)
        assert _answer_on(conn).startswith(b"HTTP/1.1 200")
        time.sleep(6)
        conn.sendall(ask)
        assert _answer_on(conn).startswith(b"HTTP/1.1 200")
