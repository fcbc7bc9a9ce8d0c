"""``lenslet search``: find images by name, tag or note in a root's rollup."""

from __future__ import annotations

from typing import Annotated

import anyio
import orjson
import typer

from lenslet_core import Hit, Lenslet

from .typer_app import (
    EXIT_OK,
    EndpointUrl,
    PointerRoots,
    Profile,
    Region,
    app,
    errors_to_exit,
    settings_from,
    storage_settings,
)


@app.command()
def search(
    root: Annotated[str, typer.Argument(help="The gallery root: a folder or a storage URL.")],
    query: Annotated[str, typer.Argument(help="Text to find in names, tags and notes.")],
    limit: Annotated[int, typer.Option(min=1, help="At most this many results.")] = 50,
    path: Annotated[str, typer.Option(help="Only under this folder (logical).")] = "",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    endpoint_url: EndpointUrl = None,
    region: Region = None,
    profile: Profile = None,
    pointer_root: PointerRoots = None,
) -> None:
    """Find images whose name, tags or notes contain QUERY (any case): exact tag matches
    first, then by path. Reads ROOT's _rollup.json (written by `lenslet index`)."""
    with errors_to_exit():

        async def run() -> tuple[list[Hit], bool]:
            settings = settings_from(
                readonly=True, **storage_settings(endpoint_url, region, profile, pointer_root)
            )
            async with Lenslet(root, settings) as lens:
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
        if not found:
            typer.echo(f"nothing matches {query!r}", err=True)
        if not indexed:
            typer.echo(f"{root} has no _rollup.json yet: run `lenslet index {root}`", err=True)
    raise typer.Exit(EXIT_OK)
