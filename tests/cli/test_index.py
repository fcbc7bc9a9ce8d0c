from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from lenslet_cli import app
from lenslet_core import Manifest
from tests.imagegen import jpeg_bytes, make_tree, png_bytes, write

runner = CliRunner()


def test_clean_tree_exits_zero_with_a_summary(gallery: Path) -> None:
    made = make_tree(gallery, folders=4, per_folder=3)
    result = runner.invoke(app, ["index", str(gallery)])
    assert result.exit_code == 0, result.output
    assert f"indexed {len(made)} images in 5 folders" in result.stdout
    assert "skipped" not in result.stdout
    assert (gallery / "album0" / "nested1" / "_index.json").exists()


def test_skipped_files_exit_one_and_are_listed(gallery: Path) -> None:
    write(gallery / "ok.png", png_bytes())
    write(gallery / "fake.jpg", b"plain text")
    result = runner.invoke(app, ["index", str(gallery)])
    assert result.exit_code == 1
    assert "skipped 1 file:" in result.stdout
    assert "fake.jpg: not a JPEG, PNG or WebP image (by content) [unsupported_image]" in (
        result.stdout
    )


def test_json_summary(gallery: Path) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    write(gallery / "a" / "empty.jpg", b"")
    result = runner.invoke(app, ["index", str(gallery), "--json"])
    assert result.exit_code == 1
    summary = orjson.loads(result.stdout)
    assert summary["items"] == 1
    assert summary["folders"] == 2
    assert summary["skipped"] == [
        {"path": "a/empty.jpg", "reason": "empty file (0 bytes)", "code": "unsupported_image"}
    ]
    assert summary["itemsPerSecond"] > 0
    again = orjson.loads(runner.invoke(app, ["index", str(gallery), "--json"]).stdout)
    assert (again["analyzed"], again["reused"], again["manifestsWritten"]) == (0, 1, 0)


def test_page_size_and_single_folder_options(gallery: Path) -> None:
    for n in range(5):
        write(gallery / "big" / f"{n}.png", png_bytes(seed=n))
    write(gallery / "other" / "x.png", png_bytes())
    result = runner.invoke(
        app, ["index", str(gallery), "--path", "/big", "--page-size", "2", "--no-recursive"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (gallery / "big").glob("_index*")) == [
        "_index_0.json",
        "_index_1.json",
        "_index_2.json",
    ]
    assert not (gallery / "other" / "_index.json").exists()


def test_plain_progress_lines_off_a_terminal(gallery: Path) -> None:
    make_tree(gallery, folders=2, per_folder=2)
    result = runner.invoke(app, ["index", str(gallery)])
    assert result.exit_code == 0
    assert "indexing: found 4 images in 3 folders" in result.stderr
    assert "indexed 4 images" in result.stdout
    quiet = runner.invoke(app, ["index", str(gallery), "--no-progress"])
    assert quiet.stderr == ""
    as_json = runner.invoke(app, ["index", str(gallery), "--json"])
    assert as_json.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["index", "/definitely/not/here"], "is not a folder"),
        (["index", "{root}", "--path", "../up"], "'..' segment"),
        (["index", "{root}", "--page-size", "0"], "page-size"),
        (["index"], "Missing argument"),
    ],
)
def test_usage_errors_exit_two(gallery: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, [a.format(root=gallery) for a in args])
    assert result.exit_code == 2
    assert message in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("lenslet ")


def test_console_script_runs(gallery: Path) -> None:
    write(gallery / "x.webp", jpeg_bytes())
    proc = subprocess.run(
        [sys.executable, "-m", "lenslet_cli", "index", str(gallery), "--json"],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert orjson.loads(proc.stdout)["items"] == 1


def test_ctrl_c_leaves_no_half_written_file(gallery: Path) -> None:
    for n in range(240):
        write(gallery / f"f{n:03d}" / "a.jpg", jpeg_bytes(32, 24, seed=n))
        write(gallery / f"f{n:03d}" / "b.png", png_bytes(24, 24, seed=n))
    proc = subprocess.Popen(
        [sys.executable, "-m", "lenslet_cli", "index", str(gallery)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not any(gallery.glob("f*/_index.json")) and time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130), err
    if proc.returncode == 130:
        assert b"interrupted" in err
    assert not [p for p in gallery.rglob("*") if p.name.endswith(".lenslet-tmp")]
    written = list(gallery.rglob("_index.json"))
    assert written
    for index in written:
        Manifest.decode(index.read_bytes())
    # Every manifest on disk is complete and a new run finishes the job.
    result = runner.invoke(app, ["index", str(gallery), "--json"])
    assert result.exit_code == 0
    assert orjson.loads(result.stdout)["items"] == 480
    assert os.path.exists(gallery / "_index.json")


def test_a_missing_start_folder_is_a_usage_error(gallery: Path) -> None:
    write(gallery / "x.png", png_bytes())
    result = runner.invoke(app, ["index", str(gallery), "--path", "nope"])
    assert result.exit_code == 2
    assert "'nope' does not exist" in result.output


def test_a_broken_pointer_folder_path_fails_with_its_reason(gallery: Path) -> None:
    write(gallery / "ptr" / ".lenscat.folder.json", b'{"version":1,"kind":"pointer"}')
    result = runner.invoke(app, ["index", str(gallery), "--path", "ptr"])
    assert result.exit_code == 3
    assert "pointer folder 'ptr' cannot be followed" in result.output
    assert "[pointer_broken]" in result.output


def test_json_summary_of_a_root_whose_name_is_not_utf8(tmp_path: Path) -> None:
    root = os.path.join(os.fsencode(tmp_path), b"Fotos-\xe9t\xe9")
    os.mkdir(root)
    with open(os.path.join(root, b"a.png"), "wb") as f:
        f.write(png_bytes())
    result = runner.invoke(app, ["index", os.fsdecode(root), "--json"])
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout)
    assert summary["root"].endswith("Fotos-\ufffdt\ufffd")
    assert summary["items"] == 1


def test_a_root_that_holds_the_whole_system_needs_yes() -> None:
    result = runner.invoke(app, ["index", "/", "--no-thumbs"])
    assert result.exit_code == 2, result.output
    assert "holds the whole system" in result.stderr
    assert "--yes" in result.stderr
    served = runner.invoke(app, ["serve", "/home", "--no-index"])
    assert served.exit_code == 2, served.output
