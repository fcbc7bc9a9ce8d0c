"""Pointer folders: a folder holding ``.lenscat.folder.json`` serves another local folder or S3
prefix as if it were that folder. Logical paths stay under the pointer; reads and writes go to
the target.

:class:`Mounts` is the routing table of one :class:`~lenslet_core.storage.Storage`: it knows
which of that storage's folders are pointers and the storage each one opens. Every routed
storage call asks it where a path lives; a target is a storage of its own, with a table of its
own, so pointers inside targets (nested pointers) route the same way. A chain of targets that
comes back to a root it has passed through is a loop (:class:`PointerLoop`).

Pointers are learnt from listings (a folder listed with ``.lenscat.folder.json`` in it is a
pointer; one listed without is known plain). Before a folder is listed, or a file written,
below folders not known either way, each of those gets one look for a config (once per
process): an index walks from the top and learns them all on the way for free.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from . import paths
from .errors import (
    LensletError,
    MalformedDocument,
    NotFound,
    PointerBroken,
    PointerLoop,
    PointerRefused,
    UnsupportedVersion,
)
from .keyedlock import KeyedLock
from .models import loads

if TYPE_CHECKING:
    from .storage import Storage

__all__ = ["Mounts", "Pointer"]

POINTER_VERSION = 1
#: Seconds a pointer that could not be followed is remembered as broken before it is tried again.
BROKEN_TTL = 30.0


@dataclasses.dataclass(frozen=True)
class Pointer:
    """A pointer folder's config: ``{"version": 1, "kind": "pointer", "target": {"type":
    "local", "path"} | {"type": "s3", "bucket", "prefix", "region", "endpoint"}, "label",
    "readonly"}``. An S3 target without ``endpoint`` uses the root's (``--endpoint-url``, or
    the ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` environment)."""

    type: Literal["local", "s3"]
    path: str = ""
    bucket: str = ""
    prefix: str = ""
    region: str | None = None
    endpoint: str | None = None
    label: str | None = None
    readonly: bool = False

    @property
    def url(self) -> str:
        """Where it points: a local path, or ``s3://bucket/prefix``."""
        if self.type == "local":
            return self.path
        return f"s3://{self.bucket}/{self.prefix.strip('/')}".rstrip("/")

    def to_json(self) -> dict[str, Any]:
        target: dict[str, Any] = (
            {"type": "local", "path": self.path}
            if self.type == "local"
            else {"type": "s3", "bucket": self.bucket, "prefix": self.prefix, "region": self.region}
        )
        if self.endpoint is not None:
            target["endpoint"] = self.endpoint
        return {
            "version": POINTER_VERSION,
            "kind": "pointer",
            "target": target,
            "label": self.label,
            "readonly": self.readonly,
        }

    @classmethod
    def decode(cls, data: bytes, *, what: str) -> Pointer:
        document = loads(data, what=what)
        version = document.get("version", document.get("v"))
        if isinstance(version, int) and not isinstance(version, bool) and version > 1:
            raise UnsupportedVersion(f"{what} is version {version}; this lenslet reads 1")
        if document.get("kind") != "pointer":
            raise MalformedDocument(f'{what}: "kind" must be "pointer"')
        target = document.get("target")
        if not isinstance(target, Mapping):
            raise MalformedDocument(f'{what}: "target" must be an object')
        label = document.get("label")
        readonly = document.get("readonly", False)
        if label is not None and not isinstance(label, str):
            raise MalformedDocument(f'{what}: "label" must be text')
        if not isinstance(readonly, bool):
            raise MalformedDocument(f'{what}: "readonly" must be true or false')
        kind = target.get("type")
        if kind == "local":
            path = target.get("path")
            if not isinstance(path, str) or not path or "\0" in path:
                raise MalformedDocument(f'{what}: a local target needs a "path"')
            return cls("local", path=path, label=label, readonly=readonly)
        if kind == "s3":
            bucket, prefix, region = (
                target.get("bucket"),
                target.get("prefix", ""),
                target.get("region"),
            )
            if not isinstance(bucket, str) or not bucket or "/" in bucket:
                raise MalformedDocument(f'{what}: an s3 target needs a "bucket" name')
            endpoint = target.get("endpoint")
            if not isinstance(prefix, str) or not all(
                isinstance(v, (str, type(None))) for v in (region, endpoint)
            ):
                raise MalformedDocument(f'{what}: "prefix", "region" and "endpoint" must be text')
            return cls("s3", bucket=bucket, prefix=prefix, region=region, endpoint=endpoint or None,
                       label=label, readonly=readonly)  # fmt: skip
        raise MalformedDocument(f'{what}: target "type" must be "local" or "s3"')


#: Opens a pointer's target as a storage (the settings' S3 options, read-only flags, ...).
Opener = Callable[[Pointer, str], "Storage"]


@dataclasses.dataclass
class _Broken:
    error: LensletError
    until: float


class Mounts:
    """The pointer folders of one storage and the storages they open.

    ``chain`` holds the roots passed through to get here (the top root first): a target that
    is one of them, or lies inside one of them as an ancestor of the pointer, is a loop.
    ``allowed`` lists the local folders pointers may target (nothing outside them)."""

    def __init__(
        self,
        owner: Storage,
        opener: Opener,
        *,
        allowed: Sequence[str] = (),
        chain: Sequence[str] = (),
    ) -> None:
        self.owner = owner
        self.opener = opener
        self.allowed = tuple(os.path.realpath(a) for a in allowed)
        self.chain = (*chain, owner.url)
        self._targets: dict[str, Storage] = {}
        self._broken: dict[str, _Broken] = {}
        self._plain: set[str] = set()
        self._learning = KeyedLock()

    # -- what is known --------------------------------------------------------------------------

    def targets(self) -> dict[str, Storage]:
        """The pointer folders followed so far and the storages they opened."""
        return dict(self._targets)

    async def route(self, path: str) -> tuple[Storage, str, str | None]:
        """Where ``path`` lives: ``(storage, path there, pointer folder)`` for the outermost
        pointer above or at it; ``(owner, path, None)`` when there is none. A root that is
        itself a pointer (a target whose config chains on) sends everything on. A pointer
        known to be broken raises its error; once that is old, it is followed afresh."""
        folder = self._outermost(path)
        broken = self._broken.get(folder) if folder is not None else None
        if folder is not None and broken is not None and time.monotonic() >= broken.until:
            return self._found(await self.learn(folder), path, folder)
        return self.route_known(path)

    def route_known(self, path: str) -> tuple[Storage, str, str | None]:
        """:meth:`route` from what is known, without asking storage (broken pointers raise
        their last error however old it is: never fall through to the pointer folder)."""
        folder = self._outermost(path)
        if folder is None:
            return self.owner, path, None
        broken = self._broken.get(folder)
        if broken is not None:
            raise broken.error
        return self._found(self._targets[folder], path, folder)

    def _outermost(self, path: str) -> str | None:
        """The outermost folder at or above ``path`` known to be a pointer, working or not."""
        if not self._targets and not self._broken:
            return None
        parts = path.split("/") if path else []
        for end in range(0, len(parts) + 1):
            folder = "/".join(parts[:end])
            if folder in self._targets or folder in self._broken:
                return folder
        return None

    @staticmethod
    def _found(target: Storage, path: str, folder: str) -> tuple[Storage, str, str]:
        rest = path[len(folder) :].lstrip("/") if folder else path
        return target, rest, folder

    # -- learning ---------------------------------------------------------------------------------

    async def learn(self, folder: str) -> Storage:
        """Read ``folder``'s config and open its target; raises (and remembers for a while)
        a :class:`PointerError` when it cannot be followed. One at a time per folder: a
        second caller gets what the first one learnt."""
        async with self._learning(folder):
            known = self._targets.get(folder)
            if known is not None:
                return known
            broken = self._broken.get(folder)
            if broken is not None and time.monotonic() < broken.until:
                raise broken.error
            return await self._learn(folder)

    async def _learn(self, folder: str) -> Storage:
        try:
            return await self._open(folder)
        except LensletError as exc:
            error = exc if isinstance(exc, (PointerLoop, PointerRefused, PointerBroken)) else None
            if error is None:
                error = PointerBroken(
                    f"pointer folder {folder!r} cannot be followed: {exc.message}", path=folder
                )
            self._broken[folder] = _Broken(error, time.monotonic() + BROKEN_TTL)
            self._targets.pop(folder, None)
            raise error from exc

    async def _open(self, folder: str) -> Storage:
        config = paths.join(folder, paths.POINTER_NAME)
        data = await self.owner.read_own(config)  # here, whatever is known of pointers
        pointer = Pointer.decode(data, what=f"pointer config {config!r}")
        url = self._check(folder, pointer)
        target = self.opener(pointer, url)
        target.readonly = target.readonly or self.owner.readonly  # read-only all the way down
        target.mounts = Mounts(target, self.opener, allowed=self.allowed, chain=self.chain)
        try:
            await target.check_root()
        except LensletError as exc:
            raise PointerBroken(
                f"pointer folder {folder!r}: its target {url} is not usable: {exc.message}",
                path=folder,
            ) from exc
        self._targets[folder] = target
        self._broken.pop(folder, None)
        return target

    def _check(self, folder: str, pointer: Pointer) -> str:
        """The target's URL, once it is allowed and not a loop."""
        url = pointer.url
        if pointer.type == "local":
            url = os.path.realpath(pointer.path)
            if not any(url == a or url.startswith(a.rstrip("/") + "/") for a in self.allowed):
                raise PointerRefused(
                    f"pointer folder {folder!r} targets {pointer.path!r}, outside the allowed "
                    "target roots (setting pointer_roots, `--pointer-root`)",
                    path=folder,
                )
        here = f"{self.owner.url.rstrip('/')}/{folder}".rstrip("/")
        if here == url or _inside(here, url):
            raise PointerLoop(
                f"pointer folder {folder!r} targets {url}, a folder it is inside", path=folder
            )
        for passed in self.chain:
            if url == passed or _inside(passed, url):
                raise PointerLoop(
                    f"pointer folder {folder!r} targets {url}, which it is already inside "
                    f"(through {' -> '.join(self.chain)})",
                    path=folder,
                )
        return url

    def plain(self, folder: str) -> None:
        """``folder`` was listed and holds no pointer config."""
        self._plain.add(folder)

    async def settle(self, path: str) -> None:
        """Make sure every folder above ``path`` is known for a pointer or not, so that
        nothing below a pointer not yet seen is read or written in the pointer folder itself.
        Unknown ones cost one look each (outermost first, stopping at the first pointer);
        folders listed before are known already."""
        parts = path.split("/") if path else []
        for end in range(1, len(parts)):
            folder = "/".join(parts[:end])
            if folder in self._plain:
                continue
            if folder in self._targets:
                return  # the rest lies in its target, which settles its own
            if folder in self._broken:
                await self.route(folder)  # raises, or follows it afresh once it is old
                return
            try:
                await self.owner.info_own(paths.join(folder, paths.POINTER_NAME))
            except NotFound:
                self._plain.add(folder)
                continue
            await self.learn(folder)
            return

    def forget(self, folder: str) -> None:
        """A pointer folder changed or went: follow it afresh next time."""
        self._targets.pop(folder, None)
        self._broken.pop(folder, None)
        self._plain.discard(folder)


def _inside(ancestor: str, url: str) -> bool:
    """Whether ``ancestor`` (a root passed through) lies inside the target ``url``, so that
    the target would show it again below itself."""
    return ancestor.startswith(url.rstrip("/") + "/")
