"""lenslet_cli: the ``lenslet`` command line (Typer)."""

from .main import app, main

__all__ = ["app", "main"]
