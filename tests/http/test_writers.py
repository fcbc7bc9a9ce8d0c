"""Many writers, one sidecar: two real ``lenslet serve`` processes on one root (local disk and
the loopback S3 server), eight clients each, writing the way existing clients do. No tag a
server acknowledged is ever lost, and a client that echoes what it read can remove a tag."""

from __future__ import annotations

import concurrent.futures
import datetime
import itertools
from pathlib import Path

import httpx
import pytest

from tests.conftest import S3
from tests.imagegen import jpeg_bytes, write
from tests.servers import serving

#: PUTs per way of writing, spread over 2 servers x 8 clients.
PUTS = 300
CLIENTS_PER_SERVER = 8
WAYS = ("if-match", "echo", "own-stamp", "tags-only")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def _write(http: httpx.Client, image: str, way: str, tag: str) -> None:
    """One client's edit: add ``tag``, written ``way``."""
    params = {"path": image}
    headers: dict[str, str] = {}
    if way == "tags-only":
        body: dict[str, object] = {"tags": [tag]}
    else:
        seen = http.get("/item", params=params)
        assert seen.status_code == 200, seen.text
        document = seen.json()
        body = {**document, "tags": [*document["tags"], tag]}
        if way == "if-match":
            headers["If-Match"] = seen.headers["etag"]
        elif way == "own-stamp":  # a stamp of its own instead of the one it read
            body = {"tags": body["tags"], "updatedAt": _now()}
    answer = http.put("/item", params=params, json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert tag in answer.json()["tags"]


def _campaign(urls: list[str], images: dict[str, str]) -> None:
    clients = [
        httpx.Client(base_url=u, timeout=60) for u in urls for _ in range(CLIENTS_PER_SERVER)
    ]
    try:
        with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
            jobs = []
            for way, image in images.items():
                spread = itertools.cycle(clients)
                for n in range(PUTS):
                    jobs.append(pool.submit(_write, next(spread), image, way, f"{way}-{n}"))
            for job in jobs:
                job.result()  # acknowledged, or the test fails here
        for way, image in images.items():
            for url in urls:  # every server answers the same, whole set
                final = httpx.get(f"{url}/item", params={"path": image}, timeout=30).json()
                wanted = {f"{way}-{n}" for n in range(PUTS)}
                assert wanted <= set(final["tags"]), (way, len(wanted - set(final["tags"])))
        # A client that echoes the version it read removes a tag for good.
        image = images["echo"]
        seen = httpx.get(f"{urls[0]}/item", params={"path": image}, timeout=30).json()
        removed = {**seen, "tags": [t for t in seen["tags"] if t != "echo-0"]}
        answer = httpx.put(f"{urls[1]}/item", params={"path": image}, json=removed, timeout=30)
        assert "echo-0" not in answer.json()["tags"]
        for url in urls:
            final = httpx.get(f"{url}/item", params={"path": image}, timeout=30).json()
            assert "echo-0" not in final["tags"]
            assert len(final["tags"]) == PUTS - 1
    finally:
        for http in clients:
            http.close()


@pytest.mark.slow
def test_two_servers_sixteen_clients_lose_no_tag_on_local_disk(gallery: Path) -> None:
    images = {way: f"w/{way}.jpg" for way in WAYS}
    for image in images.values():
        write(gallery / image, jpeg_bytes(32, 24))
    args = (str(gallery), "--no-index", "--no-watch")
    with serving(*args) as (_, one), serving(*args) as (_, two):
        _campaign([one, two], images)


@pytest.mark.slow
def test_two_servers_sixteen_clients_lose_no_tag_on_s3(s3: S3) -> None:
    images = {way: f"w/{way}.jpg" for way in WAYS}
    for image in images.values():
        s3.put(f"gallery/{image}", jpeg_bytes(32, 24))
    args = (s3.url(), "--endpoint-url", s3.endpoint, "--no-index")
    with serving(*args) as (_, one), serving(*args) as (_, two):
        _campaign([one, two], images)


def test_an_edit_through_one_server_is_read_at_once_through_the_other(gallery: Path) -> None:
    """Each server keeps the items it answered (its kernel tells it of every change to their
    folders): an edit through one server, a sidecar written by hand, a folder renamed by
    hand, are each in the very next answer of the other."""
    write(gallery / "a" / "x.jpg", jpeg_bytes(32, 24))
    args = (str(gallery), "--no-index", "--no-watch")
    with (
        serving(*args) as (_, one),
        serving(*args) as (_, two),
        httpx.Client(base_url=one) as first,
        httpx.Client(base_url=two) as second,
    ):
        for n in range(40):
            writer, reader = (first, second) if n % 2 else (second, first)
            assert reader.get("/item", params={"path": "a/x.jpg"}).status_code == 200
            seen = writer.get("/item", params={"path": "a/x.jpg"})
            put = writer.put(
                "/item",
                params={"path": "a/x.jpg"},
                json={"tags": [f"t{n}"]},
                headers={"If-Match": seen.headers["etag"]},
            )
            assert put.status_code == 200, put.text
            read = reader.get("/item", params={"path": "a/x.jpg"})
            assert f"t{n}" in read.json()["tags"]
            assert read.json()["tags"] == put.json()["tags"]
            if n > 1:  # (the first sidecar's index job rewrites it once: another ETag)
                assert read.headers["etag"] == put.headers["etag"]
        (gallery / "a" / "x.jpg.json").write_text('{"tags": ["by hand"]}')
        for http in (first, second):
            assert http.get("/item", params={"path": "a/x.jpg"}).json()["tags"] == ["by hand"]
        (gallery / "a").rename(gallery / "b")
        for http in (first, second):
            assert http.get("/item", params={"path": "a/x.jpg"}).status_code == 404
            assert http.get("/item", params={"path": "b/x.jpg"}).json()["tags"] == ["by hand"]
