"""Memory given back: the allocator calls work here (glibc) and do nothing elsewhere."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys

import pytest

from lenslet_core import release_memory


def test_release_and_limit_arenas_on_this_machine() -> None:
    assert release_memory() is True  # glibc here: malloc_trim ran
    code = (
        "from lenslet_core import limit_memory_arenas as limit; assert limit(2) is True; "
        "assert limit() is True"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_freed_buffers_go_back_to_the_system() -> None:
    code = """
import gc
from lenslet_core import release_memory

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

before = rss()
held = [bytearray(100_000) for _ in range(2_000)]  # 200 MB in buffers under the mmap threshold
for chunk in held:
    chunk[::4096] = b"x" * len(chunk[::4096])
peak = rss()
del held
gc.collect()
release_memory()
after = rss()
assert peak - before > 150_000_000, (before, peak)
assert after - before < 60_000_000, (before, peak, after)
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_calls_say_no_rather_than_fail_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    import lenslet_core.memory as memory

    memory._glibc.cache_clear()
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    try:
        assert memory.release_memory() is False
        assert memory.limit_memory_arenas(2) is False
    finally:
        memory._glibc.cache_clear()  # found again with the real find_library
