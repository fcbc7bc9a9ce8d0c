"""Presigned links (``create_app(presign=...)``, ``lenslet serve --presign``): on S3, originals
and thumbnails are answered with a redirect to the loopback S3 server, which serves the bytes."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx

from lenslet_core import Lenslet
from lenslet_http import create_app
from tests.conftest import S3
from tests.imagegen import jpeg_bytes, write
from tests.servers import serving_app


async def _indexed(s3: S3, image: bytes) -> None:
    s3.put("gallery/a/x.jpg", image)
    async with Lenslet(s3.url(), s3.settings) as lens:
        await lens.index()


def test_s3_originals_and_thumbnails_are_links_to_the_bucket(s3: S3) -> None:
    image = jpeg_bytes(640, 480)
    anyio.run(_indexed, s3, image)
    app = create_app(s3.url(), s3.settings, presign=120)
    with serving_app(app) as url, httpx.Client(base_url=url) as http:
        original = http.get("/file", params={"path": "a/x.jpg"})
        assert original.status_code == 307
        link = original.headers["location"]
        assert link.startswith(s3.endpoint)  # the bucket serves it, not lenslet
        assert "Signature" in link or "X-Amz-Signature" in link
        assert original.headers["cache-control"] == "private, max-age=60"
        assert httpx.get(link).content == image  # following the link gives the bytes
        thumb = http.get("/thumb", params={"path": "a/x.jpg"})
        assert thumb.status_code == 307
        assert httpx.get(thumb.headers["location"]).content[8:12] == b"WEBP"
        missing = http.get("/file", params={"path": "a/none.jpg"})
        assert missing.status_code == 404  # no link to what is not there


def test_a_local_root_serves_its_files_itself(tmp_path: Path) -> None:
    write(tmp_path / "x.jpg", jpeg_bytes())
    with serving_app(create_app(str(tmp_path), presign=120)) as url:
        answer = httpx.get(f"{url}/file", params={"path": "x.jpg"})
    assert answer.status_code == 200
    assert answer.content == (tmp_path / "x.jpg").read_bytes()


def test_a_thumbnail_not_made_yet_is_made_and_served_here(s3: S3) -> None:
    s3.put("gallery/b/y.jpg", jpeg_bytes(320, 240))
    with serving_app(create_app(s3.url(), s3.settings, presign=120)) as url:
        answer = httpx.get(f"{url}/thumb", params={"path": "b/y.jpg", "wait": "10"})
    assert answer.status_code == 200
    assert answer.content[8:12] == b"WEBP"
