"""A small in-memory cache of answers that stay good for a few seconds: what many clients ask
for again and again (a hot thumbnail, an image's item) is answered without a storage call.

Entries are fresh for ``fresh_for`` seconds after they were read from storage. This process's
own writes drop or replace them at once; another process's change is seen once an entry is
older than that — the same promise folder pages make (``manifest_ttl``). The cache is bounded
by weight (bytes, or entries), least recently used first out.

A read that began before a write must not put back what the write replaced: take
:attr:`Fresh.epoch` before reading and give it to :meth:`Fresh.put`, which then keeps nothing
if anything was forgotten meanwhile.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Fresh"]

V = TypeVar("V")


def _one(_: object) -> int:
    return 1


class Fresh(Generic[V]):
    """Values by key, each fresh for ``fresh_for`` seconds; at most ``max_weight`` in all (by
    ``weigh``; one value heavier than an eighth of it is not kept)."""

    def __init__(self, max_weight: int, fresh_for: float, weigh: Callable[[V], int] = _one) -> None:
        self.max_weight = max_weight
        self.fresh_for = fresh_for
        self.weigh = weigh
        self._kept: collections.OrderedDict[str, tuple[V, int, float]] = collections.OrderedDict()
        self._weight = 0
        self._epoch = 0

    @property
    def epoch(self) -> int:
        """Counts the forgets: what a read takes before it reads."""
        return self._epoch

    def get(self, key: str) -> V | None:
        """The value kept for ``key``, if it is fresh."""
        kept = self._kept.get(key)
        if kept is None:
            return None
        value, _, read_at = kept
        if time.monotonic() - read_at > self.fresh_for:
            self._drop(key)
            return None
        self._kept.move_to_end(key)
        return value

    def put(self, key: str, value: V, *, since: int | None = None) -> None:
        """Keep ``value`` for ``key``, as read from storage now; with ``since`` (the
        :attr:`epoch` taken before the read), only if nothing was forgotten since."""
        if since is not None and since != self._epoch:
            return  # a write may have replaced what was read
        self._drop(key)
        weight = self.weigh(value)
        if self.fresh_for <= 0 or weight > self.max_weight // 8:
            return
        self._kept[key] = (value, weight, time.monotonic())
        self._weight += weight
        while self._weight > self.max_weight:
            _, (_, old, _) = self._kept.popitem(last=False)
            self._weight -= old

    def forget(self, key: str) -> None:
        """Drop what is kept for ``key`` (it is being written, moved or deleted)."""
        self._epoch += 1
        self._drop(key)

    def _drop(self, key: str) -> None:
        kept = self._kept.pop(key, None)
        if kept is not None:
            self._weight -= kept[1]

    @property
    def weight(self) -> int:
        """What is kept, by ``weigh``."""
        return self._weight
