"""The ``lenslet`` command: thin Typer commands over :class:`lenslet_core.Lenslet`."""

from __future__ import annotations

from . import health, index, search, serve  # noqa: F401  (each registers its command)
from .typer_app import app

__all__ = ["app", "main"]


def main() -> None:
    """The console script's entry point."""
    app()
