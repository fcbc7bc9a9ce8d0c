"""``lenslet health``: what is wrong with a gallery, from its ``_health.json``."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import orjson
import typer

from lenslet_core import Lenslet

from .typer_app import Exit, Root, app, errors_to_exit, takes_root

#: Paths printed per kind of problem (``--json`` has them all).
SHOWN = 20


@app.command()
@takes_root
def health(
    root: Root,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Index ROOT first, so the counts are current.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the JSON document.")] = False,
) -> None:
    """Print ROOT's health: counts of images, folders, missing thumbnails, orphan sidecars and
    thumbnails, skipped files with reasons, broken pointers and the last index run. Exits 1
    when anything is broken."""
    with errors_to_exit():

        async def run() -> dict[str, Any] | None:
            settings = root.settings() if refresh else root.settings(readonly=True)
            async with Lenslet(root.url, settings) as lens:
                if not refresh:
                    return await lens.stored_health()
                await lens.index(thumbnails=False)
                return await lens.health_report()

        document = anyio.run(run)
    if document is None:
        typer.echo(
            f"lenslet: {root.url} has no _health.json yet: run `lenslet index {root.url}` "
            "(or `lenslet health --refresh`)",
            err=True,
        )
        raise typer.Exit(Exit.USAGE)
    if json_output:
        typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    else:
        _print(document)
    raise typer.Exit(Exit.OK if document["ok"] else Exit.SKIPPED)


def _failure(failure: dict[str, Any]) -> str:
    """A failed job as a line: what it was for, and why it failed."""
    error = failure.get("error") or {}
    where = failure.get("path") or "/"
    why = f"{error.get('message', '?')} [{error.get('code', '?')}]"
    return f"{failure.get('kind', 'job')} {where}: {why}"


def _print(document: dict[str, Any]) -> None:
    counts = document["counts"]
    typer.echo("ok" if document["ok"] else "PROBLEMS FOUND")
    typer.echo(
        f"{counts['items']} images in {counts['folders']} folders, "
        f"{counts['missingThumbnails']} without a thumbnail"
    )
    last = document.get("lastIndex")
    if last:
        typer.echo(
            f"last index: {last.get('startedAt')} to {last.get('finishedAt')}, "
            f"{last.get('items')} images at {last.get('itemsPerSecond')} items/s"
        )
    jobs = document.get("jobs") or {}
    if jobs:
        typer.echo(f"jobs: {jobs.get('depth', 0)} queued, {jobs.get('failed', 0)} failed")
    sections = (
        (
            "skipped files",
            [f"{s['path']}: {s['reason']} [{s['code']}]" for s in document["skipped"]],
        ),
        ("orphan sidecars (no image)", document["orphanSidecars"]),
        ("orphan thumbnails (no image)", document["orphanThumbnails"]),
        (
            "broken pointers",
            [f"{p['path']}: {p['reason']} [{p['code']}]" for p in document["pointers"]["broken"]],
        ),
        ("failed jobs", [_failure(f) for f in jobs.get("recentFailures", [])]),
        (
            "not shown (lenslet shows JPEG, PNG and WebP)",
            [f"{n} {kind}" for kind, n in sorted((document.get("unsupported") or {}).items())],
        ),
    )
    for title, lines in sections:
        if not lines:
            continue
        typer.echo(f"{title}: {len(lines)}")
        for line in lines[:SHOWN]:
            typer.echo(f"  {line}")
        if len(lines) > SHOWN:
            typer.echo(f"  ... and {len(lines) - SHOWN} more (see --json)")
