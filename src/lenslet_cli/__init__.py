"""lenslet_cli: the ``lenslet`` command line (Typer), installed with ``lenslet-core[cli]``."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["app", "main"]


def main() -> None:
    """The ``lenslet`` console script: a clear message instead of a traceback when the
    ``cli`` extra is not installed."""
    try:
        from .main import main as run
    except ImportError as exc:
        print(
            f"lenslet: the command line needs its extra ({exc.name} is missing): "
            "pip install 'lenslet-core[cli]'",
            file=sys.stderr,
        )
        raise SystemExit(2) from exc
    run()


def __getattr__(name: str) -> Any:
    if name == "app":
        from .main import app

        return app
    raise AttributeError(name)
