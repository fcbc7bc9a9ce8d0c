"""The README's examples run as printed: its Python example against a copy of examples/sample,
and its curl lines against a real ``lenslet serve`` of it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import serving

README = Path(__file__).resolve().parent.parent / "README.md"
SAMPLE = README.parent / "examples" / "sample"


def block_after(heading: str, language: str = "") -> str:
    """The first fenced code block after a heading of the README."""
    text = README.read_text(encoding="utf-8")
    start = text.index(heading)
    match = re.search(rf"```{language}\n(.*?)```", text[start:], re.S)
    assert match is not None, heading
    return match.group(1)


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A copy of the sample gallery, with nothing lenslet wrote (as a fresh clone has it)."""
    copy = tmp_path / "examples" / "sample"
    written = ("_index*.json", "_rollup.json", "_health.json", "*.thumbnail", ".lenslet*", "*.json")
    shutil.copytree(SAMPLE, copy, ignore=shutil.ignore_patterns(*written))
    return copy


def test_the_python_example_runs_as_printed(sample: Path) -> None:
    code = block_after("## The Python API", "python")
    script = sample.parent.parent / "example.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], cwd=script.parent, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert re.fullmatch(r"\d+ images; 0 skipped", first), done.stdout
    assert "dawn.jpg" in done.stdout
    assert "bytes of WebP" in done.stdout or "retry after" in done.stdout
    assert "trips/2025/coast/dawn.jpg" in done.stdout  # the search found the tags it wrote


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_curl_lines_answer(sample: Path) -> None:
    lines = block_after("## The HTTP API").replace("\\\n", " ").splitlines()
    commands = [line.split("#")[0].strip() for line in lines if line.startswith("curl")]
    assert len(commands) >= 5
    with serving(str(sample)) as (_, url):
        for command in commands:
            command = command.replace("http://127.0.0.1:7070", url)
            command = command.replace("curl ", "curl -sS --fail --max-time 30 ", 1)
            done = subprocess.run(
                ["bash", "-c", command], cwd=sample.parent, capture_output=True, text=True
            )
            assert done.returncode == 0, (command, done.stderr)
    assert (sample.parent / "t.webp").read_bytes()[8:12] == b"WEBP"
