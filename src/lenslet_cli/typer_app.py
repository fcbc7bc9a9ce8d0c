"""The ``lenslet`` Typer app and what its commands share: the one mapping of errors to messages
and exit codes, and settings from options. Each command is a module of its own.

Exit codes: 0 done and clean, 1 done but something is wrong (files skipped, health not ok:
listed with reasons), 2 usage error (bad option, missing root), 3 lenslet failed, 130
interrupted.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import inspect
import os
import traceback
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

if typing.TYPE_CHECKING:
    from lenslet_core import DaskEngine

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


class Exit(enum.IntEnum):
    """The exit codes (see the module docstring)."""

    OK = 0
    SKIPPED = 1
    USAGE = 2
    FAILED = 3
    INTERRUPTED = 130


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lenslet {__version__}")
        raise typer.Exit(Exit.OK)


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
    except typer.Exit:
        raise  # a command's own exit, with its code
    except (SettingsError, InvalidPath) as exc:
        typer.echo(f"lenslet: {exc.message}", err=True)
        raise typer.Exit(Exit.USAGE) from exc
    except NotFound as exc:
        typer.echo(f"lenslet: {exc.message}", err=True)
        raise typer.Exit(Exit.USAGE) from exc
    except LensletError as exc:
        typer.echo(f"lenslet: {exc.message} [{exc.code}]", err=True)
        raise typer.Exit(Exit.FAILED) from exc
    except KeyboardInterrupt as exc:
        typer.echo("lenslet: interrupted; every file written so far is complete", err=True)
        raise typer.Exit(Exit.INTERRUPTED) from exc
    except Exception as exc:
        # A bug, not bad input: say so with its traceback, but never as "some files skipped".
        traceback.print_exc()
        typer.echo(f"lenslet: unexpected error: {exc!r} (please report it)", err=True)
        raise typer.Exit(Exit.FAILED) from exc


WatchInterval = Annotated[
    float | None,
    typer.Option(min=0.1, help="Seconds between two listings of an S3 root (default 30)."),
]
#: For the commands that walk a root: go on with one that holds the whole system.
Yes = Annotated[
    bool,
    typer.Option(
        "--yes", help="Go on with a root that holds the whole system (/, /home, your home)."
    ),
]

#: For the commands whose background work can run on a cluster.
Scheduler = Annotated[
    str | None,
    typer.Option(
        help="Run the background work on the Dask cluster whose scheduler is at this address "
        "(tcp://HOST:8786), by its `lenslet worker`s; see docs/scale-out.md.",
        rich_help_panel="Cluster",
    ),
]


def missing_extra(exc: ImportError, what: str, extra: str) -> typer.Exit:
    """Say which extra ``what`` needs (a module of it missing): exit 2, to raise."""
    typer.echo(
        f"lenslet: {what} needs the {extra} extra ({exc.name} is missing): "
        f"pip install 'lenslet-core[{extra}]'",
        err=True,
    )
    return typer.Exit(Exit.USAGE)


def engine_for(scheduler: str | None) -> DaskEngine | None:
    """The job engine ``--scheduler`` asks for (``None``: in-process; Dask is not imported)."""
    if scheduler is None:
        return None
    try:
        from lenslet_core import DaskEngine
    except ImportError as exc:
        raise missing_extra(exc, "--scheduler", "dask") from exc
    return DaskEngine(scheduler)


#: The root argument and the storage options every command takes (credentials for s3://
#: roots: the standard AWS chain), declared once; :func:`takes_root` adds them to a command.
_ROOT_PARAMETERS = {
    "root": Annotated[
        str, typer.Argument(help="The gallery root: a folder or a storage URL (s3://bucket/…).")
    ],
    "endpoint_url": Annotated[
        str | None,
        typer.Option(
            "--endpoint-url",
            help="S3-compatible endpoint for s3:// roots, e.g. http://127.0.0.1:9000.",
            rich_help_panel="Storage",
        ),
    ],
    "region": Annotated[
        str | None,
        typer.Option("--region", help="S3 region of the bucket.", rich_help_panel="Storage"),
    ],
    "profile": Annotated[
        str | None,
        typer.Option(
            "--profile", help="AWS profile for the credentials.", rich_help_panel="Storage"
        ),
    ],
    "pointer_root": Annotated[
        list[str] | None,
        typer.Option(
            "--pointer-root",
            help="A local folder pointer folders may target (repeatable; others are refused).",
            rich_help_panel="Storage",
        ),
    ],
}


#: Local roots that hold the whole system or many people's files.
_WHOLE_SYSTEM = frozenset(
    ["/", "/home", "/Users", "/usr", "/var", "/etc", "/opt", "/mnt", "/media", "/Volumes",
     "/System", os.path.expanduser("~")]
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Root:
    """A command's gallery root with its storage options."""

    url: str
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    pointer_roots: tuple[str, ...] = ()

    def check_scope(self, yes: bool) -> None:
        """Refuse (exit 2, unless ``yes``) a local root that holds the whole system or many
        people's files (``/``, ``/home``, …): a typo should not walk the whole disk."""
        if "://" in self.url and not self.url.startswith("file://"):
            return
        real = os.path.realpath(self.url.removeprefix("file://") or "/")
        if real in _WHOLE_SYSTEM and not yes:
            typer.echo(
                f"lenslet: {self.url} holds the whole system ({real}): indexing it walks every "
                "file there. Give the folder of your photos, or add --yes to go on.",
                err=True,
            )
            raise typer.Exit(Exit.USAGE)

    def settings(self, **changes: Any) -> Settings:
        """Settings for this root from the command's options (``None``: not given, keep the
        default)."""
        given = {k: v for k, v in changes.items() if v is not None}
        if self.pointer_roots:
            given["pointer_roots"] = self.pointer_roots
        return Settings(**given).with_s3(
            endpoint_url=self.endpoint_url, region=self.region, profile=self.profile
        )


def _from_env(name: str, annotation: Any) -> Any:
    """An option's annotation with its environment variable, ``LENSLET_<OPTION>`` (shown in
    ``--help``), unless it names one of its own."""
    metadata = getattr(annotation, "__metadata__", ())
    options = [m for m in metadata if isinstance(m, typer.models.OptionInfo)]
    if not options:
        return annotation
    option = copy.copy(options[0])
    # In the Annotated style a flag's spelling is the option's first argument (its "default").
    spelled = [option.default, *(option.param_decls or ())]
    flags = [d for d in spelled if isinstance(d, str) and d.startswith("--")]
    if flags:  # named as the option is spelled: --json is LENSLET_JSON, --read-only ..._READ_ONLY
        name = flags[0].split("/")[0][2:].replace("-", "_")
    option.envvar = option.envvar or f"LENSLET_{name.upper()}"
    option.show_envvar = True
    rest = [m for m in metadata if m is not options[0]]
    parts = (typing.get_args(annotation)[0], option, *rest)
    return Annotated[parts]


def takes_root(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command the shared ROOT argument (first) and storage options (last), passed to
    it as one ``root: Root``; every option can also be set by ``LENSLET_<OPTION>``."""
    hints = typing.get_type_hints(command, include_extras=True)
    own = [
        p.replace(annotation=_from_env(p.name, hints[p.name]))
        for p in inspect.signature(command).parameters.values()
        if p.name != "root"
    ]
    keyword = inspect.Parameter.POSITIONAL_OR_KEYWORD
    first = inspect.Parameter("root", keyword, annotation=_ROOT_PARAMETERS["root"])
    shared = [
        inspect.Parameter(name, keyword, default=None, annotation=_from_env(name, annotation))
        for name, annotation in _ROOT_PARAMETERS.items()
        if name != "root"
    ]

    @functools.wraps(command)
    def run(**given: Any) -> Any:
        pointer_roots = given.pop("pointer_root") or ()
        root = Root(
            given.pop("root"),
            given.pop("endpoint_url"),
            given.pop("region"),
            given.pop("profile"),
            tuple(pointer_roots),
        )
        return command(root=root, **given)

    parameters = [first, *own, *shared]
    run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    return run


__all__ = [
    "Exit",
    "Root",
    "Scheduler",
    "WatchInterval",
    "Yes",
    "app",
    "engine_for",
    "errors_to_exit",
    "missing_extra",
    "takes_root",
]
