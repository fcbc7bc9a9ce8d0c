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


def test_large_buffers_are_reused_and_still_go_back_to_the_system(tmp_path: object) -> None:
    code = """
import gc, resource, sys
from lenslet_core import keep_large_buffers, release_memory

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

def reads(path, times):
    started = faults()
    for _ in range(times):
        with open(path, "rb") as file:
            data = file.read()  # an image read whole, as indexing does
        del data
    return (faults() - started) / times

path = sys.argv[1]
with open(path, "wb") as file:
    file.write(bytes(range(256)) * 24_000)  # 6 MB, a 1080p PNG's size
assert keep_large_buffers() is True
reads(path, 2)
assert reads(path, 10) < 50, "the buffer's pages are reused"  # (1,465 pages in fresh memory)
before = rss()
held = [bytearray(6_000_000) for _ in range(20)]  # a burst: 120 MB in image-sized buffers
for chunk in held:
    chunk[::4096] = b"x" * len(chunk[::4096])
del held, chunk
gc.collect()
release_memory()
assert rss() - before < 30_000_000, (before, rss())
"""
    subprocess.run([sys.executable, "-c", code, str(tmp_path) + "/image.png"], check=True)


def test_the_calls_say_no_rather_than_fail_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    import lenslet_core.memory as memory

    memory._glibc.cache_clear()
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    try:
        assert memory.release_memory() is False
        assert memory.limit_memory_arenas(2) is False
        assert memory.keep_large_buffers() is False
    finally:
        memory._glibc.cache_clear()  # found again with the real find_library
