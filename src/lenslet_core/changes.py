"""Which folders changed, for whoever shows them (an open gallery page): a small in-process
feed. Writes through this process (sidecars, uploads, moves, deletes) and index runs of
watched changes (other processes sharing the root, files copied in) publish the folders they
changed; each subscriber gets them in order. A subscriber that does not keep up loses changes
rather than holding the writers up (a page then simply refreshes what it shows later).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ["ChangeFeed"]

#: Change sets a subscriber may fall behind by before it misses some.
BACKLOG = 256


class ChangeFeed:
    """Folders changed, published to every subscriber (see the module docstring)."""

    def __init__(self) -> None:
        self._subscribers: set[MemoryObjectSendStream[frozenset[str]]] = set()

    def publish(self, folders: Iterable[str]) -> None:
        changed = frozenset(folders)
        if not changed:
            return
        for stream in list(self._subscribers):
            with contextlib.suppress(anyio.WouldBlock, anyio.BrokenResourceError):
                stream.send_nowait(changed)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[MemoryObjectReceiveStream[frozenset[str]]]:
        """The change sets published from now on, until the block is left."""
        send, receive = anyio.create_memory_object_stream[frozenset[str]](BACKLOG)
        self._subscribers.add(send)
        try:
            async with receive:
                yield receive
        finally:
            self._subscribers.discard(send)
            send.close()

    def __len__(self) -> int:
        return len(self._subscribers)
