"""``lenslet index``: write manifests, thumbnails, rollup and health; ``--watch`` keeps them
current."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from typing import Annotated, Any

import anyio
import anyio.to_thread
import orjson
import typer

from lenslet_core import (
    Engine,
    IndexProgress,
    IndexReport,
    Lenslet,
    Settings,
    Wave,
    release_memory,
)

from .typer_app import (
    Exit,
    Root,
    Scheduler,
    WatchInterval,
    Yes,
    app,
    engine_for,
    errors_to_exit,
    takes_root,
)


@app.command()
@takes_root
def index(
    root: Root,
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
            min=1,
            help="Concurrent storage calls of each kind (default: cores on local disk; "
            "raise for a NAS).",
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
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Keep running: index new, changed and deleted images as they come "
            "(an S3 root is listed every --watch-interval seconds; Ctrl-C stops).",
        ),
    ] = False,
    watch_interval: WatchInterval = None,
    yes: Yes = False,
    scheduler: Scheduler = None,
) -> None:
    """Write every folder's manifest, the missing thumbnails, the search rollup and the health
    file under ROOT, and report the files that were skipped. With --scheduler, each folder is
    a job on the cluster's workers; the rollup and health are written here."""
    root.check_scope(yes)
    with errors_to_exit():
        settings = root.settings(
            page_size=page_size,
            max_pixels=max_pixels,
            io_concurrency=io_concurrency,
            thumbnails=thumbs,
            thumb_cache=thumb_cache,
            watch_interval=watch_interval,
        )
        show = not json_output if progress is None else progress

        def tell(report: IndexReport) -> None:
            if json_output:
                typer.echo(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
            else:
                _print_report(report)

        engine = engine_for(scheduler)
        if watch:
            _index_and_watch(root.url, settings, engine, path, recursive, show, json_output, tell)
        else:
            report = _run_index(root.url, settings, engine, path, recursive, show)
            tell(report)
    raise typer.Exit(Exit.OK if watch else _exit_code(report))


def _exit_code(report: IndexReport) -> int:
    """0 clean, 1 some files skipped; 3 when the storage refused the run as a whole (not one
    folder could be read: an outage is a failure, not "some files were skipped")."""
    if report.ok:
        return Exit.OK
    if report.folders == 0 and any(s.error is not None for s in report.skipped):
        return Exit.FAILED
    return Exit.SKIPPED


def _index_and_watch(
    root: str,
    settings: Settings,
    engine: Engine | None,
    path: str,
    recursive: bool,
    show: bool,
    json_output: bool,
    tell: Callable[[IndexReport], None],
) -> None:
    """Watch first, then index (so that nothing changed during the first pass is missed),
    then index waves of changes until Ctrl-C, one line per wave."""

    live = sys.stderr.isatty() and not json_output
    status: Any = None  # on a terminal: one live line, redrawn at each wave
    waves = changes = 0

    def tell_wave(wave: Wave) -> None:
        nonlocal waves, changes
        waves, changes = waves + 1, changes + wave.changes
        folders = len(wave.folders) + len(wave.new_folders)
        if json_output:
            document = {
                "changes": wave.changes,
                "folders": sorted(wave.folders),
                "newFolders": sorted(wave.new_folders),
                "removed": sorted(wave.removed),
            }
            typer.echo(orjson.dumps(document).decode())
        elif status is not None:
            status.update(
                f"watching {root}: {_count(waves, 'wave')}, {_count(changes, 'change')} so far; "
                f"the last at {time.strftime('%H:%M:%S')}: {_count(wave.changes, 'change')}, "
                f"{_count(folders, 'folder')} indexed (Ctrl-C stops)"
            )
        else:
            typer.echo(
                f"watch: {_count(wave.changes, 'change')}, {_count(folders, 'folder')} indexed",
                err=True,
            )

    async def run() -> None:
        nonlocal status
        lenslet = Lenslet(root, settings, engine=engine)
        async with lenslet as lens, anyio.create_task_group() as tg:
            listening = anyio.Event()
            tg.start_soon(functools.partial(lens.watch, path, on_wave=tell_wave, ready=listening))
            tg.start_soon(_release_memory)  # what a wave's thumbnails held goes back
            await listening.wait()  # what changes from here on is seen
            progress = _plain_progress() if show else None
            report = await lens.index(path, recursive=recursive, on_progress=progress)
            tell(report)
            typer.echo(f"watching {root} for changes (Ctrl-C stops)", err=True)
            if live:
                from rich.console import Console

                status = Console(stderr=True).status(f"watching {root}: no change yet")
                status.start()

    try:
        anyio.run(run)
    except KeyboardInterrupt:
        if status is not None:
            status.stop()
        typer.echo("stopped watching", err=True)


async def _release_memory(every: float = 10.0) -> None:
    while True:
        await anyio.sleep(every)
        if not await anyio.to_thread.run_sync(release_memory):
            return  # not glibc: nothing to give back


def _run_index(
    root: str, settings: Settings, engine: Engine | None, path: str, recursive: bool, show: bool
) -> IndexReport:
    async def run(on_progress: Callable[[IndexProgress], None] | None) -> IndexReport:
        async with Lenslet(root, settings, engine=engine) as lens:
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
        if not announced and p.listed:
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


def _count(count: int, thing: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{count:,} {thing}" if count == 1 else f"{count:,} {thing}s"


def _files(count: int) -> str:
    return _count(count, "file")


def _print_report(report: IndexReport) -> None:
    typer.echo(
        f"indexed {_count(report.items, 'image')} in {_count(report.folders, 'folder')} of "
        f"{report.root} "
        f"in {report.seconds:.2f}s ({report.items_per_second:.1f} items/s): "
        f"{report.analyzed} read, {report.reused} unchanged, "
        f"{_count(report.manifests_written, 'manifest')} written, "
        f"{_count(report.thumbnails_made, 'thumbnail')} made"
    )
    if report.thumbnails.startswith("off:"):
        typer.echo(f"thumbnails {report.thumbnails}")
    if report.sidecars_refreshed:
        typer.echo(f"updated EXIF basics in {_count(report.sidecars_refreshed, 'sidecar')}")
    if report.unsupported:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(report.unsupported.items()))
        total = sum(report.unsupported.values())
        typer.echo(
            f"not shown: {_files(total)} lenslet cannot show ({kinds}); it shows JPEG, PNG and WebP"
        )
    if report.skipped:
        typer.echo(f"skipped {_files(len(report.skipped))}:")
        for skipped in report.skipped:
            typer.echo(f"  {skipped.path}: {skipped.reason} [{skipped.code}]")
