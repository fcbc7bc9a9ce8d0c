"""The ``lenslet`` Typer app and what its commands share: the one mapping of errors to messages
and exit codes, and settings from options. Each command is a module of its own.

Exit codes: 0 done and clean, 1 done but something is wrong (files skipped, health not ok:
listed with reasons), 2 usage error (bad option, missing root), 3 lenslet failed, 130
interrupted.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from lenslet_core import (
    InvalidPath,
    LensletError,
    NotFound,
    Settings,
    SettingsError,
    __version__,
)

app = typer.Typer(
    name="lenslet",
    help="A backend for file-based image galleries: the files beside the images are the database.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_OK, EXIT_SKIPPED, EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lenslet {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """lenslet: index and serve image folders on local disk or object storage."""


@contextmanager
def errors_to_exit() -> Iterator[None]:
    """The one place the CLI turns lenslet's errors (and Ctrl-C) into a message and exit code."""
    try:
        yield
    except (SettingsError, InvalidPath) as exc:
        typer.echo(f"lenslet: {exc.message}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    except NotFound as exc:
        typer.echo(f"lenslet: {exc.message}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    except LensletError as exc:
        typer.echo(f"lenslet: {exc.message} [{exc.code}]", err=True)
        raise typer.Exit(EXIT_FAILED) from exc
    except KeyboardInterrupt as exc:
        typer.echo("lenslet: interrupted; every file written so far is complete", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from exc
    except Exception as exc:
        # A bug, not bad input: say so with its traceback, but never as "some files skipped".
        traceback.print_exc()
        typer.echo(f"lenslet: unexpected error: {exc!r} (please report it)", err=True)
        raise typer.Exit(EXIT_FAILED) from exc


#: Options every command takes for ``s3://`` roots (credentials: the standard AWS chain).
EndpointUrl = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        help="S3-compatible endpoint for s3:// roots, e.g. http://127.0.0.1:9000.",
        rich_help_panel="S3",
    ),
]
Region = Annotated[
    str | None, typer.Option("--region", help="S3 region of the bucket.", rich_help_panel="S3")
]
Profile = Annotated[
    str | None,
    typer.Option("--profile", help="AWS profile for the credentials.", rich_help_panel="S3"),
]


WatchInterval = Annotated[
    float | None,
    typer.Option(min=0.1, help="Seconds between two listings of an S3 root (default 30)."),
]
PointerRoots = Annotated[
    list[str] | None,
    typer.Option(
        "--pointer-root",
        help="A local folder pointer folders may target (repeatable; others are refused).",
    ),
]


def storage_settings(
    endpoint_url: str | None,
    region: str | None,
    profile: str | None,
    pointer_roots: list[str] | None = None,
) -> dict[str, Any]:
    """The storage options every command shares, as settings fields (for
    :func:`settings_from`): S3's, and the local folders pointers may target."""
    return {
        "s3_endpoint_url": endpoint_url,
        "s3_region": region,
        "s3_profile": profile,
        "pointer_roots": tuple(pointer_roots) if pointer_roots else None,
    }


def settings_from(**changes: Any) -> Settings:
    """Settings from the options given (``None``: not given, keep the default)."""
    given = {k: v for k, v in changes.items() if v is not None}
    return Settings(**given)


__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SKIPPED",
    "EXIT_USAGE",
    "EndpointUrl",
    "PointerRoots",
    "Profile",
    "Region",
    "WatchInterval",
    "app",
    "errors_to_exit",
    "storage_settings",
    "settings_from",
]
