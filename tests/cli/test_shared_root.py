"""Several real lenslet processes on one root — two ``lenslet serve`` and the CLI — on the
loopback S3 server and on local disk: what one writes, the others and a fourth process find."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import S3
from tests.imagegen import jpeg_bytes, write
from tests.servers import lenslet, serving


def found(root: str, options: tuple[str, ...], tag: str) -> list[str]:
    answer = lenslet("search", root, tag, "--json", *options)
    assert answer.returncode == 0, answer.stderr
    return [hit["path"] for hit in orjson.loads(answer.stdout)["items"]]


def _every_writer_is_found(
    root: str, options: tuple[str, ...], add_sidecar: Callable[[str, bytes], object]
) -> None:
    first = lenslet("index", root, *options)
    assert first.returncode == 0, first.stderr
    add_sidecar("a/one.jpg.json", b'{"tags": ["by-hand"]}')  # written by another tool
    second = lenslet("index", root, *options)  # the CLI's rollup save after another's
    assert second.returncode == 0, second.stderr
    assert found(root, options, "by-hand") == ["a/one.jpg"]
    with (
        serving(root, "--no-index", *options) as (_, one),
        serving(root, "--no-index", *options) as (_, two),
    ):
        for url, image, tag in ((one, "a/two.jpg", "via-one"), (two, "a/three.jpg", "via-two")):
            answer = httpx.put(f"{url}/item", params={"path": image}, json={"tags": [tag]})
            assert answer.status_code == 200, answer.text
        # Each server saves its rollup within about a second of the edit.
        deadline = time.monotonic() + 20
        while True:
            hits = {t: found(root, options, t) for t in ("via-one", "via-two", "by-hand")}
            if hits == {
                "via-one": ["a/two.jpg"],
                "via-two": ["a/three.jpg"],
                "by-hand": ["a/one.jpg"],
            }:
                break
            assert time.monotonic() < deadline, hits
            time.sleep(0.3)
        for url in (one, two):
            health = httpx.get(f"{url}/health", timeout=10).json()
            assert health["jobs"]["failed"] == 0, health


@pytest.mark.slow
def test_servers_and_the_cli_share_an_s3_root(s3: S3) -> None:
    for name in ("one", "two", "three"):
        s3.put(f"gallery/a/{name}.jpg", jpeg_bytes(48, 36, seed=len(name)))
    _every_writer_is_found(
        s3.url(), ("--endpoint-url", s3.endpoint), lambda key, data: s3.put(f"gallery/{key}", data)
    )


@pytest.mark.slow
def test_servers_and_the_cli_share_a_local_root(gallery: Path) -> None:
    for name in ("one", "two", "three"):
        write(gallery / "a" / f"{name}.jpg", jpeg_bytes(48, 36, seed=len(name)))
    _every_writer_is_found(str(gallery), (), lambda key, data: write(gallery / key, data))
