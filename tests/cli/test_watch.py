"""``lenslet index --watch`` as a real process: it picks up a new file and stops on Ctrl-C."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import orjson

from tests.imagegen import jpeg_bytes, write


def _read_until(stream: IO[bytes], wanted: bytes, seconds: float = 30) -> bytes:
    """Read a process's output (unbuffered, so select sees all of it) until it holds
    ``wanted``."""
    seen = b""
    deadline = time.monotonic() + seconds
    while wanted not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {wanted!r} in {seen!r}"
        ready, _, _ = select.select([stream], [], [], left)
        if ready:
            chunk = os.read(stream.fileno(), 65536)
            assert chunk, f"the process ended before {wanted!r}: {seen!r}"
            seen += chunk
    return seen


def _with_ctrl_c() -> None:
    """In the child: Ctrl-C as a terminal sends it. A suite started in the background by a
    non-interactive shell (``pytest &``) has SIGINT ignored, and children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_watch_picks_up_a_new_image_and_stops_cleanly_on_ctrl_c(gallery: Path) -> None:
    write(gallery / "a" / "first.jpg", jpeg_bytes(seed=1))
    proc = subprocess.Popen(
        [sys.executable, "-m", "lenslet_cli", "index", str(gallery), "--watch", "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_with_ctrl_c,
    )
    try:
        assert proc.stderr is not None
        _read_until(proc.stderr, b"watching")  # said once the watcher listens
        write(gallery / "a" / "second.jpg", jpeg_bytes(seed=2))
        _read_until(proc.stderr, b"watch: ")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert b"stopped watching" in err
    assert b"indexed 1 image " in out
    items = orjson.loads((gallery / "a" / "_index.json").read_bytes())["items"]
    assert [i["name"] for i in items] == ["first.jpg", "second.jpg"]
    assert (gallery / "a" / "second.jpg.thumbnail").exists()
    assert not [p for p in gallery.rglob("*") if p.name.endswith(".lenslet-tmp")]


def test_on_a_terminal_the_watch_is_one_live_status_line(gallery: Path) -> None:
    import pty

    write(gallery / "a" / "first.jpg", jpeg_bytes(seed=1))
    terminal, side = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lenslet_cli", "index", str(gallery), "--watch", "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=side,
        env={**os.environ, "COLUMNS": "160", "TERM": "xterm"},
        preexec_fn=_with_ctrl_c,
    )
    os.close(side)
    try:
        with os.fdopen(terminal, "rb", buffering=0) as screen:
            _read_until(screen, b"no change yet")  # the live line, once it listens
            write(gallery / "a" / "second.jpg", jpeg_bytes(seed=2))
            seen = _read_until(screen, b"1 wave, ")
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert b"watch: " not in seen  # not a line per wave: the one line is redrawn
    assert b"\x1b[" in seen  # drawn with terminal control sequences
