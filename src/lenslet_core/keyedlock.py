"""One lock per key (a path), created on first use and dropped when nobody holds or awaits it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio

__all__ = ["KeyedLock"]


class KeyedLock:
    """Serialises work on the same key inside one process, e.g. writes to one sidecar, so
    in-process writers queue instead of racing (across processes, conditional writes decide)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[anyio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def __call__(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(key, (anyio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]
