from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from lenslet_core import Settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    """An empty gallery root on local disk."""
    root = tmp_path / "gallery"
    root.mkdir()
    return root


@pytest.fixture
def memory_fs() -> Iterator[MemoryFileSystem]:
    """fsspec's memory filesystem, emptied before and after (its store is process-global)."""
    fs = MemoryFileSystem()
    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs[:] = [""]
    yield fs
    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs[:] = [""]


@pytest.fixture
def settings() -> Settings:
    return Settings(cpu_concurrency=2, io_concurrency=8)


class Requests:
    """A storage observer that records every request, for tests that count them."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    def __call__(self, op: str, path: str) -> None:
        self.log.append((op, path))

    def count(self, op: str, suffix: str | tuple[str, ...] = "") -> int:
        return sum(1 for o, p in self.log if o == op and p.endswith(suffix))

    def by_op(self) -> collections.Counter[str]:
        return collections.Counter(o for o, _ in self.log)

    def clear(self) -> None:
        self.log.clear()


@pytest.fixture
def requests() -> Requests:
    return Requests()


class S3:
    """One fresh bucket on the loopback S3 server, and the server's log of requests."""

    def __init__(self, endpoint: str, bucket: str) -> None:
        self.endpoint = endpoint
        self.bucket = bucket
        self.settings = Settings(cpu_concurrency=2, io_concurrency=8).with_s3(endpoint_url=endpoint)

    def url(self, prefix: str = "gallery") -> str:
        return f"s3://{self.bucket}/{prefix}".rstrip("/")

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def put(self, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=self.bucket, Key=key, Body=data)

    def get(self, key: str) -> bytes:
        body: bytes = self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def keys(self, prefix: str = "") -> list[str]:
        pages = (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def requests(self) -> list[tuple[str, str, str]]:
        """The requests that reached the server since the last :meth:`reset`, this bucket's."""
        answer = httpx.get(f"{self.endpoint}/_requests").json()
        mine = f"/{self.bucket}"
        return [(m, p, q) for m, p, q in answer if p == mine or p.startswith(mine + "/")]

    def reset(self) -> None:
        httpx.delete(f"{self.endpoint}/_requests")

    def peak(self) -> int:
        """The most requests to this bucket the server answered at once since :meth:`reset`."""
        answer: int = httpx.get(f"{self.endpoint}/_peak/{self.bucket}").json()
        return answer


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 in a process of its own on a loopback port, for the whole session."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    os.environ.update(
        {k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.s3server", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        proc.stdout.close()  # the server says nothing more there
        assert line.startswith("s3 server on "), f"the S3 server did not start: {line!r}"
        yield "http://" + line.split()[-1]
    finally:
        proc.terminate()
        proc.wait(20)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def s3(s3_endpoint: str) -> S3:
    """A new, empty bucket for one test."""
    import uuid

    store = S3(s3_endpoint, f"t-{uuid.uuid4().hex[:20]}")
    store.client().create_bucket(Bucket=store.bucket)
    store.reset()
    return store
