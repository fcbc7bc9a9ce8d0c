from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from lenslet_cli import app
from tests.imagegen import jpeg_bytes, png_bytes, write

runner = CliRunner()


def tagged_tree(root: Path) -> None:
    write(root / "trips" / "beach.jpg", jpeg_bytes())
    write(
        root / "trips" / "beach.jpg.json", b'{"v": 1, "tags": ["sea", "sand"], "notes": "low tide"}'
    )
    write(root / "trips" / "harbour.png", png_bytes())
    write(root / "trips" / "harbour.png.json", b'{"v": 1, "tags": ["seaside"]}')
    write(root / "home" / "cat.jpg", jpeg_bytes(seed=1))
    write(root / "home" / "cat.jpg.json", b'{"v": 1, "tags": ["Sea"], "notes": "sleeping"}')
    write(root / "home" / "dog.png", png_bytes(seed=2))
    result = runner.invoke(app, ["index", str(root), "--no-thumbs", "--no-progress"])
    assert result.exit_code == 0, result.output


def test_search_prints_matching_paths_best_first(gallery: Path) -> None:
    tagged_tree(gallery)
    result = runner.invoke(app, ["search", str(gallery), "sea"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "home/cat.jpg  [Sea]  sleeping",
        "trips/beach.jpg  [sea, sand]  low tide",
        "trips/harbour.png  [seaside]",
    ]


def test_search_matches_names_and_notes(gallery: Path) -> None:
    tagged_tree(gallery)
    by_name = runner.invoke(app, ["search", str(gallery), "DOG"])
    assert by_name.stdout.splitlines() == ["home/dog.png"]
    by_notes = runner.invoke(app, ["search", str(gallery), "tide"])
    assert [line.split()[0] for line in by_notes.stdout.splitlines()] == ["trips/beach.jpg"]


def test_search_json(gallery: Path) -> None:
    tagged_tree(gallery)
    result = runner.invoke(app, ["search", str(gallery), "sand", "--json"])
    assert result.exit_code == 0, result.output
    document = orjson.loads(result.stdout)
    assert document["query"] == "sand"
    [hit] = document["items"]
    found = {k: hit[k] for k in ("path", "name", "tags", "notes")}
    assert found == {
        "path": "trips/beach.jpg",
        "name": "beach.jpg",
        "tags": ["sea", "sand"],
        "notes": "low tide",
    }
    # The same shape as GET /search: a hit carries its folder item's entry too.
    assert hit["type"] == "image/jpeg"
    assert hit["w"] > 0
    assert hit["h"] > 0


def test_search_under_a_folder(gallery: Path) -> None:
    tagged_tree(gallery)
    result = runner.invoke(app, ["search", str(gallery), "sea", "--path", "/trips", "--json"])
    assert result.exit_code == 0, result.output
    paths = [i["path"] for i in orjson.loads(result.stdout)["items"]]
    assert paths == ["trips/beach.jpg", "trips/harbour.png"]
    elsewhere = runner.invoke(app, ["search", str(gallery), "sea", "--path", "trip"])
    assert elsewhere.exit_code == 0
    assert elsewhere.stdout == ""


def test_search_limit(gallery: Path) -> None:
    tagged_tree(gallery)
    result = runner.invoke(app, ["search", str(gallery), "sea", "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["home/cat.jpg"]
    refused = runner.invoke(app, ["search", str(gallery), "sea", "--limit", "0"])
    assert refused.exit_code == 2


def test_nothing_matches(gallery: Path) -> None:
    tagged_tree(gallery)
    result = runner.invoke(app, ["search", str(gallery), "volcano"])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "nothing matches 'volcano'" in result.stderr


def test_a_root_without_a_rollup_has_no_results(gallery: Path) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    result = runner.invoke(app, ["search", str(gallery), "x", "--json"])
    assert result.exit_code == 2, result.output  # never indexed: a usage error, as for health
    assert orjson.loads(result.stdout) == {"query": "x", "items": []}
    assert sorted(p.name for p in gallery.iterdir()) == ["x.jpg"]  # read-only: nothing written


def test_a_missing_root_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["search", str(tmp_path / "missing"), "x"])
    assert result.exit_code == 2
    assert "not a folder" in result.stderr


def test_search_on_a_root_never_indexed_exits_2_and_says_what_to_do(gallery: Path) -> None:
    write(gallery / "a.jpg", jpeg_bytes())
    result = runner.invoke(app, ["search", str(gallery), "sea"])
    assert result.exit_code == 2, result.output
    assert "has no _rollup.json yet" in result.stderr
    assert f"lenslet index {gallery}" in result.stderr
    assert "nothing matches" not in result.stderr  # the one message that helps
