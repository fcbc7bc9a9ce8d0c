"""The router above storage: a gallery root with its pointer folders mounted in it.

:class:`Mounts` offers the storage API (:class:`~lenslet_core.storage.Store`) over a root's
:class:`~lenslet_core.storage.Storage` and sends each call on a path below a pointer folder to
the storage that folder's target opens — the way an HTTP client's mounts send each request to
the transport of its URL. Storage itself knows nothing of pointers. A target is mounted with a
router of its own, so pointers inside targets (nested pointers) route the same way; what makes a
config valid and a target a loop is :mod:`pointers`.

Pointers are learnt from listings (a folder listed with ``.lenscat.folder.json`` in it is a
pointer; one listed without is known plain). Before a folder is listed, or a file written,
below folders not known either way, each of those gets one look for a config (once per
process): an index walks from the top and learns them all on the way for free.
"""

from __future__ import annotations

import builtins
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import anyio

from . import paths
from .backend import entry_name
from .errors import LensletError, NotFound, PointerBroken, PointerLoop, PointerRefused, ReadOnly
from .keyedlock import KeyedLock
from .pointers import Pointer, check_target
from .storage import Consumers, Contents, Entry, Storage, each

__all__ = ["Mounts", "Opener"]

T = TypeVar("T")

#: Seconds a pointer that could not be followed is remembered as broken before it is tried again.
BROKEN_TTL = 30.0

#: Opens a pointer's target as a storage: ``(pointer, url, readonly)`` (the settings' S3
#: options and observer are the opener's to add).
Opener = Callable[[Pointer, str, bool], Storage]

#: Listed among a pointer folder's entries: its config, which lives beside the target, not in it.
_POINTER_ENTRY = Entry(paths.POINTER_NAME, "file")


_POINTER_ERRORS = (PointerLoop, PointerRefused, PointerBroken)


@dataclasses.dataclass
class _Broken:
    error: LensletError
    until: float


class Mounts:
    """A root's storage and the pointer folders below it, each with the storage it opens.

    ``chain`` holds the roots passed through to get here (the top root first): a target that
    is one of them, or lies inside one of them as an ancestor of the pointer, is a loop.
    ``allowed`` lists the local folders pointers may target (nothing outside them)."""

    def __init__(
        self,
        storage: Storage,
        opener: Opener,
        *,
        allowed: Sequence[str] = (),
        chain: Sequence[str] = (),
    ) -> None:
        self.storage = storage
        self._opener = opener
        self._allowed = tuple(allowed)
        self._chain = (*chain, storage.url)
        self._targets: dict[str, Mounts] = {}
        self._broken: dict[str, _Broken] = {}
        self._plain: set[str] = set()
        self._learning = KeyedLock()

    # -- what the root is ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.storage.url

    @property
    def where(self) -> str:
        return self.storage.where

    @property
    def readonly(self) -> bool:
        return self.storage.readonly

    @property
    def local_root(self) -> str | None:
        return self.storage.local_root

    @property
    def io_concurrency(self) -> int:
        return self.storage.io_concurrency

    def __repr__(self) -> str:
        return f"Mounts({self.url!r})"

    async def check_root(self) -> None:
        await self.storage.check_root()

    async def run_local(self, func: Callable[..., T], *args: Any) -> T:
        return await self.storage.run_local(func, *args)

    # -- listing (where pointers are learnt) -----------------------------------------------------

    async def list(self, path: str) -> builtins.list[Entry]:
        """A folder's entries; a pointer folder lists its target, with its config among the
        entries (so its parent knows it for a pointer)."""
        await self.settle(path)
        target, inner, _ = await self.route(path)
        if target is not self:
            entries = await target.list(inner)
            return [*entries, _POINTER_ENTRY] if inner == "" else entries
        entries = await self.storage.list(path)
        if await self._learnt(path, entries):
            return await self.list(path)
        return entries

    async def list_with_contents(
        self,
        path: str,
        wanted: Callable[[str], bool],
        then: Callable[[builtins.list[Entry], Contents], T],
        names_only: Callable[[str], bool] | None = None,
    ) -> T:
        await self.settle(path)
        target, inner, _ = await self.route(path)
        if target is not self:

            def with_config(entries: builtins.list[Entry], contents: Contents) -> T:
                return then([*entries, _POINTER_ENTRY] if inner == "" else entries, contents)

            return await target.list_with_contents(inner, wanted, with_config, names_only)

        def also(entries: builtins.list[Entry], contents: Contents) -> tuple[list[Entry], T]:
            return entries, then(entries, contents)  # the entries too: is it a pointer?

        entries, made = await self.storage.list_with_contents(path, wanted, also, names_only)
        if await self._learnt(path, entries):
            return await self.list_with_contents(path, wanted, then, names_only)
        return made

    async def _learnt(self, folder: str, entries: Sequence[Entry]) -> bool:
        """Whether a listing of ``folder`` showed it to be a pointer (now followed)."""
        if paths.POINTER_NAME in map(entry_name, entries):  # a C-level scan: asked of every listing
            await self.learn(folder)
            return True
        self._plain.add(folder)
        return False

    async def files(self, path: str = "") -> dict[str, tuple[int, float]]:
        target, inner, _ = await self.route(path)
        if target is not self:
            return await target.files(inner)
        return await self.storage.files(path)

    # -- reading ---------------------------------------------------------------------------------

    async def info(self, path: str) -> Entry:
        target, inner, _ = await self.route(path)
        return await (target.info(inner) if target is not self else self.storage.info(path))

    async def read(self, path: str) -> bytes:
        target, inner, _ = await self.route(path)
        return await (target.read(inner) if target is not self else self.storage.read(path))

    async def read_range(self, path: str, start: int, end: int) -> bytes:
        target, inner, _ = await self.route(path)
        if target is not self:
            return await target.read_range(inner, start, end)
        return await self.storage.read_range(path, start, end)

    async def read_into(self, path: str, consume: Callable[[bytes], T]) -> T:
        target, inner, _ = await self.route(path)
        if target is not self:
            return await target.read_into(inner, consume)
        return await self.storage.read_into(path, consume)

    async def read_each_into(
        self, paths: Sequence[str], consume: Consumers[T], *, limiter: anyio.CapacityLimiter
    ) -> builtins.list[T | LensletError]:
        routes = [await self.route(path) for path in paths]
        if not routes or all(r[0] is self for r in routes):
            return await self.storage.read_each_into(paths, consume, limiter=limiter)
        target = routes[0][0]
        if all(r[0] is target for r in routes):
            return await target.read_each_into([r[1] for r in routes], consume, limiter=limiter)
        results: builtins.list[T | LensletError] = []  # a batch across pointers: one by one
        for route, one in zip(routes, each(consume, len(paths)), strict=True):
            results.extend(await route[0].read_each_into([route[1]], one, limiter=limiter))
        return results

    async def sign(self, path: str, seconds: int) -> str | None:
        target, inner, _ = await self.route(path)
        if target is not self:
            return await target.sign(inner, seconds)
        return await self.storage.sign(path, seconds)

    async def read_versioned(self, path: str) -> tuple[bytes, str]:
        target, inner, _ = await self.route(path)
        if target is not self:
            return await target.read_versioned(inner)
        return await self.storage.read_versioned(path)

    async def read_versioned_into(self, path: str, consume: Callable[[bytes], T]) -> tuple[T, str]:
        target, inner, _ = await self.route(path)
        if target is not self:
            return await target.read_versioned_into(inner, consume)
        return await self.storage.read_versioned_into(path, consume)

    # -- writing: first learn every pointer above the path (never write in a pointer folder) ----

    async def _for_write(self, path: str) -> tuple[Mounts, str]:
        await self.settle(path)
        target, inner, _ = await self.route(path)
        self.check_writable(path)
        return target, inner

    async def write(self, path: str, data: bytes, *, parents: bool = False) -> None:
        target, inner = await self._for_write(path)
        if target is not self:
            return await target.write(inner, data, parents=parents)
        return await self.storage.write(path, data, parents=parents)

    async def write_if(self, path: str, data: bytes, *, expected: str | None) -> str:
        target, inner = await self._for_write(path)
        if target is not self:
            return await target.write_if(inner, data, expected=expected)
        return await self.storage.write_if(path, data, expected=expected)

    async def create(self, path: str, data: bytes) -> None:
        target, inner = await self._for_write(path)
        if target is not self:
            return await target.create(inner, data)
        return await self.storage.create(path, data)

    async def remove_abandoned(self, path: str) -> bool:
        target, inner = await self._for_write(path)
        if target is not self:
            return await target.remove_abandoned(inner)
        return await self.storage.remove_abandoned(path)

    async def make_folder(self, path: str) -> None:
        target, inner = await self._for_write(path)
        if target is not self:
            return await target.make_folder(inner)
        return await self.storage.make_folder(path)

    async def delete(self, path: str, *, missing_ok: bool = True) -> None:
        target, inner = await self._for_write(path)
        if target is not self:
            return await target.delete(inner, missing_ok=missing_ok)
        return await self.storage.delete(path, missing_ok=missing_ok)

    async def move(self, source: str, target: str) -> None:
        """Move a file to a free path; between a pointer's target and elsewhere it is a copy,
        then a delete of the source."""
        here, inner_source = await self._for_write(source)
        there, inner_target = await self._for_write(target)
        if here is not there:
            await there.create(inner_target, await here.read(inner_source))
            await here.delete(inner_source)
        elif here is not self:
            await here.move(inner_source, inner_target)
        else:
            await self.storage.move(source, target)

    def writes_here(self, path: str) -> bool:
        """Whether :meth:`write_here` may write ``path``, from the pointers known (ask
        :meth:`ensure_writable` first: it learns those above ``path``)."""
        target, inner, _ = self.route_known(path)
        if target is self:
            return self.storage.writes_here(path)
        return target.writes_here(inner)

    def write_here(self, path: str, data: bytes) -> None:
        """:meth:`Storage.write_here` of the storage ``path`` is in (see :meth:`writes_here`)."""
        self.check_writable(path)
        target, inner, _ = self.route_known(path)
        if target is self:
            self.storage.write_here(path, data)
        else:
            target.write_here(inner, data)

    def check_writable(self, path: str) -> None:
        """Raise :class:`ReadOnly` when the root, or the pointer ``path`` is in, refuses
        writes (from what is known: see :meth:`ensure_writable`)."""
        target, inner, pointer = self.route_known(path)
        if target is self:
            self.storage.check_writable(path)
        elif target.readonly:
            where = f"pointer folder {pointer or '/'!r}"
            raise ReadOnly(f"{where} is read-only; cannot write {path!r}", path=path)
        else:
            target.check_writable(inner)

    async def ensure_writable(self, path: str) -> None:
        """:meth:`check_writable`, after learning the pointers above ``path`` (and following a
        broken one afresh once its error is old)."""
        await self.settle(path)
        await self.route(path)
        self.check_writable(path)

    def writable(self, path: str) -> bool:
        """Whether writes to ``path`` are allowed (by settings and pointers, without asking
        storage)."""
        try:
            self.check_writable(path)
        except LensletError:
            return False
        return True

    # -- the routing table -----------------------------------------------------------------------

    def mounted(self) -> builtins.list[tuple[str, Storage]]:
        """The targets of the pointer folders followed so far, nested ones included, each
        with the logical folder it is mounted at."""
        found = []
        for folder, target in dict(self._targets).items():
            found.append((folder, target.storage))
            found.extend((paths.join(folder, inner), deeper) for inner, deeper in target.mounted())
        return found

    async def route(self, path: str) -> tuple[Mounts, str, str | None]:
        """Where ``path`` lives: ``(router, path there, pointer folder)`` for the outermost
        pointer above or at it; ``(self, path, None)`` when there is none. A pointer known to
        be broken raises its error; once that is old, it is followed afresh."""
        folder = self._outermost(path)
        broken = self._broken.get(folder) if folder is not None else None
        if folder is not None and broken is not None and time.monotonic() >= broken.until:
            return self._found(await self.learn(folder), path, folder)
        return self.route_known(path)

    def route_known(self, path: str) -> tuple[Mounts, str, str | None]:
        """:meth:`route` from what is known, without asking storage (broken pointers raise
        their last error however old it is: never fall through to the pointer folder)."""
        folder = self._outermost(path)
        if folder is None:
            return self, path, None
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
    def _found(target: Mounts, path: str, folder: str) -> tuple[Mounts, str, str]:
        rest = path[len(folder) :].lstrip("/") if folder else path
        return target, rest, folder

    async def learn(self, folder: str) -> Mounts:
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
            try:
                return await self._open(folder)
            except LensletError as exc:
                error = exc if isinstance(exc, _POINTER_ERRORS) else None
                if error is None:
                    error = PointerBroken(
                        f"pointer folder {folder!r} cannot be followed: {exc.message}", path=folder
                    )
                self._broken[folder] = _Broken(error, time.monotonic() + BROKEN_TTL)
                self._targets.pop(folder, None)
                raise error from exc

    async def _open(self, folder: str) -> Mounts:
        config = paths.join(folder, paths.POINTER_NAME)
        data = await self.storage.read(config)  # here, whatever is known of pointers
        pointer = Pointer.decode(data, what=f"pointer config {config!r}")
        here = f"{self.url.rstrip('/')}/{folder}".rstrip("/")
        url = check_target(folder, pointer, here=here, chain=self._chain, allowed=self._allowed)
        # read-only all the way down
        storage = self._opener(pointer, url, self.readonly or pointer.readonly)
        target = Mounts(storage, self._opener, allowed=self._allowed, chain=self._chain)
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
                await self.storage.info(paths.join(folder, paths.POINTER_NAME))
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
