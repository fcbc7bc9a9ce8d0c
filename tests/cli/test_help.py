"""Every command's --help reads as written: no artefacts of the help renderer."""

from __future__ import annotations

import re

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
