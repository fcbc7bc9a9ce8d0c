"""``lenslet worker``: a Dask worker that runs lenslet's jobs (thumbnails, folders to index)
for the servers and index runs of a cluster (docs/scale-out.md)."""

from __future__ import annotations

import signal
from typing import Annotated, Any

import anyio
import typer

from .typer_app import Exit, app, missing_extra


@app.command()
def worker(
    scheduler: Annotated[
        str,
        typer.Option(
            envvar="LENSLET_SCHEDULER",
            show_envvar=True,
            help="The address of the Dask scheduler (`dask scheduler`), tcp://HOST:8786.",
        ),
    ],
    nthreads: Annotated[
        int | None,
        typer.Option(min=1, help="Jobs run at once, each on a core (default: the cores)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="The worker's name on the scheduler.")] = None,
    host: Annotated[
        str | None,
        typer.Option(help="The address the worker listens on (default: chosen by Dask)."),
    ] = None,
    connect_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds to reach the scheduler before giving up.")
    ] = 10.0,
) -> None:
    """Run lenslet's background work for a Dask cluster until Ctrl-C (or SIGTERM): every
    gallery root a job names is opened here once, with the settings its job brings."""
    try:
        from distributed import Worker

        from lenslet_core import LensletPlugin
    except ImportError as exc:
        raise missing_extra(exc, "the worker", "dask") from exc

    options: dict[str, Any] = {"host": host} if host else {}

    async def start() -> Any:
        """A worker registered with the scheduler, or ``None`` when it does not answer."""
        running = Worker(
            scheduler,
            nthreads=nthreads,
            name=name,
            plugins=(LensletPlugin(),),
            death_timeout=connect_timeout,
            dashboard=False,
            **options,
        )
        try:
            with anyio.fail_after(connect_timeout + 5):
                await running
        except Exception:  # it could not join (Dask says why in its log)
            await running.close()
            return None
        typer.echo(
            f"lenslet: worker {running.address} of {scheduler} ready "
            f"({running.state.nthreads} thread{'' if running.state.nthreads == 1 else 's'})",
            err=True,
        )
        return running

    async def run() -> int:
        stopping = anyio.Event()
        running = await start()
        if running is None:
            typer.echo(
                f"lenslet: the Dask scheduler at {scheduler} does not answer; start it with "
                "`dask scheduler`",
                err=True,
            )
            return Exit.FAILED
        async with anyio.create_task_group() as tg:

            async def stop_on_signal() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        typer.echo("lenslet: worker stopping", err=True)
                        stopping.set()
                        if running is not None:
                            await running.close()
                        return

            tg.start_soon(stop_on_signal)
            # A scheduler that goes away (restarted, its machine lost) is waited for: the
            # worker joins it again once it answers, until Ctrl-C or SIGTERM.
            while True:
                if running is not None:
                    await running.finished()
                if stopping.is_set():
                    break
                if running is not None:
                    typer.echo(f"lenslet: lost the scheduler at {scheduler}; waiting for it",
                               err=True)  # fmt: skip
                running = await start()
                if stopping.is_set() and running is not None:
                    await running.close()  # stopped while it was joining again
                    break
            tg.cancel_scope.cancel()
        return Exit.OK

    raise typer.Exit(anyio.run(run))
