from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path

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
