"""One lock per key: holders of one key take turns, other keys go at once, nothing is kept."""

from __future__ import annotations

import anyio
import pytest

from lenslet_core.keyedlock import KeyedLock

pytestmark = pytest.mark.anyio


async def test_holders_of_one_key_take_turns_and_other_keys_do_not_wait() -> None:
    lock = KeyedLock()
    inside: list[str] = []
    first_in, release = anyio.Event(), anyio.Event()
    order: list[str] = []

    async def hold(key: str, name: str, *, first: bool = False) -> None:
        async with lock(key):
            inside.append(name)
            order.append(f"{name} in")
            assert inside.count(name) == 1
            if first:
                first_in.set()
                await release.wait()
            inside.remove(name)
            order.append(f"{name} out")

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: hold("a.jpg", "one", first=True))
        await first_in.wait()
        tg.start_soon(hold, "a.jpg", "two")  # waits for "one"
        with anyio.fail_after(5):
            await hold("b.jpg", "other")  # another key: not held up by "one"
        assert order == ["one in", "other in", "other out"]
        release.set()
    assert order == ["one in", "other in", "other out", "one out", "two in", "two out"]


async def test_a_key_nobody_holds_or_awaits_is_dropped() -> None:
    lock = KeyedLock()
    async with lock("a.jpg"):
        assert "a.jpg" in lock._locks
    assert lock._locks == {}
    with pytest.raises(RuntimeError):
        async with lock("b.jpg"):
            raise RuntimeError("the holder failed")
    assert lock._locks == {}  # released and dropped all the same
