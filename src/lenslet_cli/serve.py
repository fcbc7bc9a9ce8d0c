"""``lenslet serve``: the HTTP API of a gallery root, with uvicorn."""

from __future__ import annotations

import contextlib
import enum
import errno
import socket
from typing import Annotated

import anyio
import typer

from lenslet_core import Lenslet

from .logs import log_config
from .typer_app import (
    Exit,
    Root,
    Scheduler,
    WatchInterval,
    Yes,
    app,
    engine_for,
    errors_to_exit,
    missing_extra,
    takes_root,
)

#: Seconds an idle connection is kept open. Longer than clients keep theirs (httpx 5 s,
#: browsers often more): at uvicorn's 5 s, a client reusing a connection just as the server
#: closed it got a reset, and a tag it was writing an error instead of an answer.
KEEP_ALIVE = 75


class Level(str, enum.Enum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


class Form(str, enum.Enum):
    text = "text"
    json = "json"


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
    yes: Yes = False,
    thumb_cache: Annotated[
        str | None,
        typer.Option(help="Where thumbnails go when an image's folder is read-only."),
    ] = None,
    presign: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=7 * 24 * 3600,
            help="On S3: answer /file and /thumb with a redirect to a presigned URL good for "
            "this many seconds (originals never stream through the server).",
        ),
    ] = None,
    log_level: Annotated[
        Level,
        typer.Option(help="The least a log line must be to be written.", rich_help_panel="Logs"),
    ] = Level.info,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log", help="A line per request.", rich_help_panel="Logs"
        ),
    ] = True,
    log_format: Annotated[
        Form,
        typer.Option(help="Lines as text, or one JSON object each.", rich_help_panel="Logs"),
    ] = Form.text,
    root_path: Annotated[
        str,
        typer.Option(
            help="The path prefix a reverse proxy serves lenslet under (e.g. /gallery).",
            rich_help_panel="Behind a proxy",
        ),
    ] = "",
    proxy_headers: Annotated[
        bool,
        typer.Option(
            "--proxy-headers/--no-proxy-headers",
            help="Take the client's address and scheme from X-Forwarded-For/-Proto.",
            rich_help_panel="Behind a proxy",
        ),
    ] = True,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            help="The proxies whose X-Forwarded-* headers are trusted (comma-separated, or *).",
            rich_help_panel="Behind a proxy",
        ),
    ] = "127.0.0.1",
    scheduler: Scheduler = None,
) -> None:
    """Serve ROOT over HTTP: folders, items, thumbnails, originals, search and health. With
    --scheduler, thumbnails made on request and the watch's index jobs run on the cluster."""
    try:
        import uvicorn

        from lenslet_http import create_app
    except ImportError as exc:
        raise missing_extra(exc, "serving", "http") from exc
    root.check_scope(yes)
    with errors_to_exit():
        settings = root.settings(
            readonly=read_only, thumb_cache=thumb_cache, watch_interval=watch_interval
        )
        # The root is checked before the server starts: a root that cannot be used is one
        # clear line and exit code, not a traceback from the server's start-up.
        lens = Lenslet(root.url, settings)
        anyio.run(lens.check)
        engine = engine_for(scheduler)
        if engine is not None:
            anyio.run(engine.check)  # a scheduler that does not answer: exit 3, not a server
        watching = (lens.local if watch is None else watch) and not read_only
        web = create_app(
            root.url,
            settings,
            token=token,
            cors_origins=cors or (),
            index_on_start=index,
            watch=watching,
            ui=ui,
            presign=presign,
            engine=engine,
        )
        listening = _listen(host, port)
        bound = listening.getsockname()[1]
        shown = f"http://{_url_host(host)}:{bound}/" + ("" if ui else " (no page: --no-ui)")
        typer.echo(f"lenslet: serving {root.url} at {shown} (Ctrl-C stops)", err=True)
        # Open pages hold an event stream (/events) that never ends by itself: Ctrl-C closes
        # them after a moment instead of waiting for every browser to go.
        config = uvicorn.Config(
            web,
            log_config=log_config(log_level.value, log_format.value),
            log_level=log_level.value,
            access_log=access_log,
            root_path=root_path.rstrip("/"),
            proxy_headers=proxy_headers,
            forwarded_allow_ips=forwarded_allow_ips,
            ws="none",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=KEEP_ALIVE,
        )
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: uvicorn has shut down cleanly
            uvicorn.Server(config).run(sockets=[listening])
    raise typer.Exit(Exit.OK)


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything says "serving"; a port in use, a host that
    is not this machine's or a port that needs privileges is one line and exit 2."""
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        listening = socket.create_server((host, port), family=_family(host), backlog=2048)
        # Answers go out as two writes (head, then body): without TCP_NODELAY the body waits
        # for the client's delayed ACK, 40 ms a request on a kept-alive connection. asyncio
        # sets it only on sockets made with IPPROTO_TCP, which create_server's are not;
        # accepted connections take it from the listening socket.
        listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return listening
    except socket.gaierror as exc:
        typer.echo(f"lenslet: cannot listen on {host!r}: not an address of this machine "
                   f"({exc.strerror})", err=True)  # fmt: skip
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            why = "is in use (another server?): choose another with --port"
        elif exc.errno in (errno.EACCES, errno.EPERM):
            why = "needs privileges: choose one above 1023 with --port"
        else:
            why = f"cannot be listened on: {exc.strerror or exc}"
        typer.echo(f"lenslet: port {port} on {host} {why}", err=True)
    raise typer.Exit(Exit.USAGE)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
