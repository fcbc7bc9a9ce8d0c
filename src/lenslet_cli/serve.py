"""``lenslet serve``: the HTTP API of a gallery root, with uvicorn."""

from __future__ import annotations

from typing import Annotated

import anyio
import typer

from lenslet_core import Lenslet

from .typer_app import Exit, Root, WatchInterval, app, errors_to_exit, takes_root


@app.command()
@takes_root
def serve(
    root: Root,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 7070,
    token: Annotated[
        str | None,
        typer.Option(envvar="LENSLET_TOKEN", help="Require 'Authorization: Bearer TOKEN'."),
    ] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Refuse every write (sidecars, thumbnails).")
    ] = False,
    cors: Annotated[
        list[str] | None, typer.Option(help="An origin browsers may call from (repeatable).")
    ] = None,
    index: Annotated[
        bool,
        typer.Option("--index/--no-index", help="Index what is missing in the background."),
    ] = True,
    ui: Annotated[bool, typer.Option("--ui/--no-ui", help="Serve the gallery page at /.")] = True,
    watch: Annotated[
        bool | None,
        typer.Option(
            "--watch/--no-watch",
            help="Index images copied in while serving (default: on for a local root; an S3 "
            "root is listed whole every --watch-interval seconds, so only when asked).",
        ),
    ] = None,
    watch_interval: WatchInterval = None,
    thumb_cache: Annotated[
        str | None,
        typer.Option(help="Where thumbnails go when an image's folder is read-only."),
    ] = None,
) -> None:
    """Serve ROOT over HTTP: folders, items, thumbnails, originals, search and health."""
    try:
        import uvicorn

        from lenslet_http import create_app
    except ImportError as exc:
        typer.echo(
            f"lenslet: serving needs the http extra ({exc.name} is missing): "
            "pip install 'lenslet-core[http]'",
            err=True,
        )
        raise typer.Exit(Exit.USAGE) from exc
    with errors_to_exit():
        settings = root.settings(
            readonly=read_only, thumb_cache=thumb_cache, watch_interval=watch_interval
        )
        # The root is checked before the server starts: a root that cannot be used is one
        # clear line and exit code, not a traceback from the server's start-up.
        lens = Lenslet(root.url, settings)
        anyio.run(lens.check)
        watching = (lens.local if watch is None else watch) and not read_only
        web = create_app(
            root.url,
            settings,
            token=token,
            cors_origins=cors or (),
            index_on_start=index,
            watch=watching,
            ui=ui,
        )
        shown = f"http://{host}:{port}/" + ("" if ui else " (no page: --no-ui)")
        typer.echo(f"lenslet: serving {root.url} at {shown} (Ctrl-C stops)", err=True)
        # Open pages hold an event stream (/events) that never ends by itself: Ctrl-C closes
        # them after a moment instead of waiting for every browser to go.
        uvicorn.run(
            web, host=host, port=port, log_level="info", ws="none", timeout_graceful_shutdown=2
        )
    raise typer.Exit(Exit.OK)
