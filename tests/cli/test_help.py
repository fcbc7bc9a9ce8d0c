"""Every command's --help reads as written: no artefacts of the help renderer."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from lenslet_cli import app

COMMANDS = ["index", "serve", "search", "health"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_no_renderer_artefacts(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    text = result.stdout
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "ROOT" in usage  # the usage names the argument plainly ...
    assert not re.search(r"\{\w+\}", text), text  # ... not as {root}
    assert "<bool>" not in text, text
    assert "<str>" not in text, text
    assert "--endpoint-url" in text  # the shared storage options are there
    assert "The gallery root" in text  # and the argument's own help


def test_every_option_can_be_set_by_an_environment_variable(tmp_path: Path) -> None:
    from tests.imagegen import jpeg_bytes, write

    write(tmp_path / "a" / "x.jpg", jpeg_bytes())
    write(tmp_path / "b" / "y.jpg", jpeg_bytes(seed=1))
    env = {"LENSLET_PATH": "a", "LENSLET_THUMBS": "false", "LENSLET_JSON": "1"}
    result = CliRunner().invoke(app, ["index", str(tmp_path)], env=env)
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["path"] == "a"  # --path and --json from the environment
    assert (tmp_path / "a" / "_index.json").exists()
    assert not (tmp_path / "b" / "_index.json").exists()
    assert not (tmp_path / "a" / "x.jpg.thumbnail").exists()  # --no-thumbs too
    text = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).stdout
    for name in ("LENSLET_PORT", "LENSLET_TOKEN", "LENSLET_ENDPOINT_URL", "LENSLET_READ_ONLY"):
        assert name in text, name  # and --help says so
