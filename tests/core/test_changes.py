"""The change feed: every subscriber gets each set of changed folders, in order; a slow one
loses changes instead of holding writers up; writes through the facade publish their folder."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from lenslet_core import Lenslet, Settings
from lenslet_core.changes import BACKLOG, ChangeFeed
from tests.imagegen import jpeg_bytes, write

pytestmark = pytest.mark.anyio


async def test_every_subscriber_gets_every_change_in_order() -> None:
    feed = ChangeFeed()
    feed.publish(["before"])  # nobody listens yet: nobody gets it
    async with feed.subscribe() as one, feed.subscribe() as two:
        assert len(feed) == 2
        feed.publish(["a", "b"])
        feed.publish([])  # nothing changed: nothing sent
        feed.publish(["c"])
        for stream in (one, two):
            assert await stream.receive() == {"a", "b"}
            assert await stream.receive() == {"c"}
    assert len(feed) == 0
    feed.publish(["after"])  # no subscriber left: no error


async def test_a_subscriber_that_falls_behind_loses_changes_not_the_writer() -> None:
    feed = ChangeFeed()
    async with feed.subscribe() as slow:
        for n in range(BACKLOG + 10):
            feed.publish([str(n)])  # never blocks
        got = []
        with anyio.move_on_after(0.2):
            while True:
                got.append(await slow.receive())
    assert len(got) == BACKLOG
    assert got[0] == {"0"}


async def test_writes_publish_their_folders(gallery: Path) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    (gallery / "b").mkdir()
    async with Lenslet(str(gallery), Settings(cpu_concurrency=2)) as lens, lens.subscribe() as seen:
        await lens.update_item("a/x.jpg", {"tags": ["t"]})
        assert await seen.receive() == {"a"}
        await lens.move("a/x.jpg", "b")
        assert await seen.receive() == {"a", "b"}
        await lens.upload("b", "y.jpg", jpeg_bytes(seed=2))
        assert await seen.receive() == {"b"}
