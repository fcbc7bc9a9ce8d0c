"""``lenslet search``: find images by name, tag or note in a root's rollup."""

from __future__ import annotations

from typing import Annotated

import anyio
import orjson
import typer

from lenslet_core import Hit, Lenslet

from .typer_app import Exit, Root, app, errors_to_exit, takes_root


@app.command()
@takes_root
def search(
    root: Root,
    query: Annotated[str, typer.Argument(help="Text to find in names, tags and notes.")],
    limit: Annotated[int, typer.Option(min=1, help="At most this many results.")] = 50,
    path: Annotated[str, typer.Option(help="Only under this folder (logical).")] = "",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Find images whose name, tags or notes contain QUERY (any case): exact tag matches
    first, then by path. Reads ROOT's _rollup.json (written by `lenslet index`)."""
    with errors_to_exit():

        async def run() -> tuple[tuple[Hit, ...], bool]:
            async with Lenslet(root.url, root.settings(readonly=True)) as lens:
                found = await lens.find(query, limit=limit, path=path)
                return found, await lens.indexed()

        found, indexed = anyio.run(run)
    if json_output:
        document = {"query": query, "items": [item.to_json() for item in found]}
        typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    else:
        for hit in found:
            item = hit.found
            tags = f"  [{', '.join(item.tags)}]" if item.tags else ""
            notes = f"  {item.notes}" if item.notes else ""
            typer.echo(f"{item.path}{tags}{notes}")
        if not found and indexed:
            typer.echo(f"nothing matches {query!r}", err=True)
    if not indexed:
        typer.echo(
            f"lenslet: {root.url} has no _rollup.json yet: run `lenslet index {root.url}`",
            err=True,
        )
        raise typer.Exit(Exit.USAGE)  # as `lenslet health` on a root never indexed
    raise typer.Exit(Exit.OK)
