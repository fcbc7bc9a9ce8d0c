from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from lenslet_cli import app
from tests.imagegen import jpeg_bytes, make_tree, write

runner = CliRunner()


def index(root: Path) -> int:
    return runner.invoke(app, ["index", str(root), "--no-progress"]).exit_code


def test_before_any_index_it_says_how_to_make_one(gallery: Path) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    result = runner.invoke(app, ["health", str(gallery)])
    assert result.exit_code == 2
    assert "lenslet index" in result.stderr
    assert "_health.json" in result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in gallery.iterdir()) == ["x.jpg"]  # nothing written


def test_a_clean_tree_is_ok(gallery: Path) -> None:
    made = make_tree(gallery, folders=2, per_folder=2)
    assert index(gallery) == 0
    result = runner.invoke(app, ["health", str(gallery)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "ok"
    assert f"{len(made)} images in 3 folders, 0 without a thumbnail" in lines
    assert any(line.startswith("last index: ") for line in lines)
    assert "PROBLEMS" not in result.stdout


def test_problems_exit_one_and_are_listed(gallery: Path) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    write(gallery / "a" / "bad.jpg", jpeg_bytes(64, 48)[:400])
    write(gallery / "a" / "gone.jpg.json", b'{"v": 1}')
    assert index(gallery) == 1
    result = runner.invoke(app, ["health", str(gallery)])
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines()[0] == "PROBLEMS FOUND"
    assert "skipped files: 1" in result.stdout
    assert "  a/bad.jpg: " in result.stdout
    assert "[corrupt_image]" in result.stdout
    assert "orphan sidecars (no image): 1\n  a/gone.jpg.json" in result.stdout


def test_json(gallery: Path) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    write(gallery / "a" / "bad.jpg", b"not an image at all")
    assert index(gallery) == 1
    result = runner.invoke(app, ["health", str(gallery), "--json"])
    assert result.exit_code == 1
    document = orjson.loads(result.stdout)
    assert document["ok"] is False
    assert document["counts"]["items"] == 1
    assert document["counts"]["skipped"] == 1
    assert [s["path"] for s in document["skipped"]] == ["a/bad.jpg"]
    assert document["jobs"]["failed"] == 0


def test_refresh_indexes_a_root_never_indexed(gallery: Path) -> None:
    made = make_tree(gallery, folders=2, per_folder=2)
    result = runner.invoke(app, ["health", str(gallery), "--refresh", "--json"])
    assert result.exit_code == 0, result.output
    document = orjson.loads(result.stdout)
    assert document["ok"] is True
    assert document["counts"]["items"] == len(made)
    assert document["counts"]["missingThumbnails"] == len(made)  # a refresh makes none
    assert (gallery / "_health.json").exists()
    assert (gallery / "_rollup.json").exists()
    assert runner.invoke(app, ["health", str(gallery)]).exit_code == 0


def test_refresh_reports_problems(gallery: Path) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    write(gallery / "y.jpg", b"")
    result = runner.invoke(app, ["health", str(gallery), "--refresh"])
    assert result.exit_code == 1, result.output
    assert "  y.jpg: empty file (0 bytes) [unsupported_image]" in result.stdout


def test_a_missing_root_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["health", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert "not a folder" in result.stderr


def test_health_prints_problems_as_lines_not_dicts(gallery: Path, tmp_path: Path) -> None:
    write(gallery / "ok.jpg", jpeg_bytes())
    write(gallery / "IMG_1.HEIC", b"\x00\x00\x00\x18ftypheic" + b"x" * 32)
    missing = tmp_path / "nowhere"
    config = {"version": 1, "kind": "pointer", "target": {"type": "local", "path": str(missing)}}
    write(gallery / "p" / ".lenscat.folder.json", orjson.dumps(config))
    runner.invoke(app, ["index", str(gallery), "--pointer-root", str(tmp_path)])
    result = runner.invoke(app, ["health", str(gallery), "--pointer-root", str(tmp_path)])
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    pointer = lines[lines.index("broken pointers: 1") + 1]
    assert pointer.startswith("  p: ")
    assert pointer.endswith("[pointer_broken]")
    assert "{" not in result.stdout  # no Python dict printed
    assert "  1 image/heic" in lines
