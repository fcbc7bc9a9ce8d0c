"""The ``lenslet`` command: thin Typer commands over :class:`lenslet_core.Lenslet`.

Exit codes: 0 done and clean, 1 done but some files were skipped (listed with reasons), 2 usage
error (bad option, missing root), 3 lenslet failed, 130 interrupted.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import anyio
import orjson
import typer

from lenslet_core import (
    IndexProgress,
    IndexReport,
    InvalidPath,
    Lenslet,
    LensletError,
    NotFound,
    PointerNotSupported,
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
    except (SettingsError, InvalidPath, PointerNotSupported) as exc:
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


def _settings(**changes: Any) -> Settings:
    given = {k: v for k, v in changes.items() if v is not None}
    return Settings(**given)


@app.command()
def index(
    root: Annotated[str, typer.Argument(help="The gallery root: a folder or a storage URL.")],
    path: Annotated[str, typer.Option(help="Only this folder (logical, under the root).")] = "",
    recursive: Annotated[
        bool, typer.Option("--recursive/--no-recursive", help="Also index sub-folders.")
    ] = True,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print a JSON summary instead of text.")
    ] = False,
    page_size: Annotated[
        int | None, typer.Option(min=1, help="Items per manifest page (default 5000).")
    ] = None,
    max_pixels: Annotated[
        int | None, typer.Option(min=1, help="Refuse images above this many pixels.")
    ] = None,
    io_concurrency: Annotated[
        int | None,
        typer.Option(
            min=1, help="Concurrent storage calls (default: cores on local disk; raise for a NAS)."
        ),
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Show progress on stderr: a bar on a terminal, plain lines otherwise "
            "(default: on, unless --json).",
        ),
    ] = None,
    thumbs: Annotated[
        bool,
        typer.Option("--thumbs/--no-thumbs", help="Make missing thumbnails (default: on)."),
    ] = True,
    thumb_cache: Annotated[
        str | None,
        typer.Option(
            help="Where thumbnails go when an image's folder is read-only (a path or URL)."
        ),
    ] = None,
) -> None:
    """Write every folder's manifest and the missing thumbnails under ROOT, and report the files
    that were skipped."""
    with errors_to_exit():
        settings = _settings(
            page_size=page_size,
            max_pixels=max_pixels,
            io_concurrency=io_concurrency,
            thumbnails=thumbs,
            thumb_cache=thumb_cache,
        )
        show = not json_output if progress is None else progress
        report = _run_index(root, settings, path, recursive, show)
        if json_output:
            typer.echo(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
        else:
            _print_report(report)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_SKIPPED)


def _run_index(
    root: str, settings: Settings, path: str, recursive: bool, show: bool
) -> IndexReport:
    async def run(on_progress: Callable[[IndexProgress], None] | None) -> IndexReport:
        async with Lenslet(root, settings) as lens:
            return await lens.index(path, recursive=recursive, on_progress=on_progress)

    if not show:
        return anyio.run(run, None)
    if sys.stderr.isatty():
        return _with_rich_progress(run)
    return anyio.run(run, _plain_progress())


def _with_rich_progress(
    run: Callable[[Callable[[IndexProgress], None]], Any],
) -> IndexReport:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        TextColumn("[bold]indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8.1f} items/s"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[folder]}", style="dim"),
    )
    started = time.perf_counter()
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("index", total=None, rate=0.0, folder="")

        def on_progress(p: IndexProgress) -> None:
            rate = p.images_done / max(time.perf_counter() - started, 1e-6)
            bar.update(
                task,
                total=p.images_total or None,
                completed=p.images_done,
                rate=rate,
                folder=p.current or "/",
            )

        result: IndexReport = anyio.run(run, on_progress)
        return result


def _plain_progress(every: float = 2.0) -> Callable[[IndexProgress], None]:
    """Progress for logs (no terminal): one line when the walk has found the work, then one
    line every ``every`` seconds."""
    started = last = time.perf_counter()
    announced = False

    def on_progress(p: IndexProgress) -> None:
        nonlocal last, announced
        if not announced and p.images_total and p.folders_done == 0:
            announced = True
            typer.echo(
                f"indexing: found {p.images_total} images in {p.folders_total} folders", err=True
            )
        now = time.perf_counter()
        if now - last < every:
            return
        last = now
        rate = p.images_done / max(now - started, 1e-6)
        typer.echo(
            f"indexing: {p.images_done}/{p.images_total} images, "
            f"{p.folders_done}/{p.folders_total} folders, {rate:.1f} items/s",
            err=True,
        )

    return on_progress


def _print_report(report: IndexReport) -> None:
    typer.echo(
        f"indexed {report.items} images in {report.folders} folders of {report.root} "
        f"in {report.seconds:.2f}s ({report.items_per_second:.1f} items/s): "
        f"{report.analyzed} read, {report.reused} unchanged, "
        f"{report.manifests_written} manifests written, "
        f"{report.thumbnails_made} thumbnails made"
    )
    if report.thumbnails.startswith("off:"):
        typer.echo(f"thumbnails {report.thumbnails}")
    if report.sidecars_refreshed:
        typer.echo(f"updated EXIF basics in {report.sidecars_refreshed} sidecars")
    if report.skipped:
        typer.echo(f"skipped {len(report.skipped)} files:")
        for skipped in report.skipped:
            typer.echo(f"  {skipped.path}: {skipped.reason} [{skipped.code}]")


def main() -> None:
    """The console script's entry point."""
    app()


__all__ = ["app", "main"]
