"""``lenslet serve`` as a real process: it serves, indexes what is missing, and stops on Ctrl-C."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from tests.conftest import S3
from tests.imagegen import jpeg_bytes, png_bytes, write
from tests.servers import serving


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
