"""Sidecars (``foo.jpg.json``): read, merge and write without losing anybody's tag.

The write rules (design.md, "Contracts"). A client's body names some fields (``tags``,
``notes``, any field lenslet does not know such as ``star``); a field it does not name is never
changed. Which version the client saw decides how the named fields are applied:

- ``If-Match`` equals the stored ETag, or (without ``If-Match``) the body carries the stored
  sidecar's own ``updatedAt`` in either spelling — the client echoes the version it read: the
  named fields are written as sent (a removed tag stays removed);
- otherwise (a stale ``If-Match``, an older stamp, no stamp, or only the client's own new
  stamp): merged — tags unioned, each other named field taken when the body's stamp (its
  arrival time when it has none) is at least as new as the stored one.

Every accepted write stamps ``updatedAt`` now (later than the version it replaces, or the
body's own stamp when that is newer still) and sets ``updatedBy``. Every write is conditional on
the version it was decided against; a writer that loses the race reads again and decides again,
so concurrent writers in one process or many never drop a tag.
"""

from __future__ import annotations

import dataclasses
import datetime
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

import anyio

from . import paths
from .codec import MAX_DEPTH, VERSION, dumps, format_time, loads, parse_time, too_deep, utcnow
from .errors import (
    InvalidDocument,
    InvalidPath,
    LensletError,
    MalformedDocument,
    NotFound,
    UnsupportedVersion,
)
from .storage import Store, retry_on_conflict

__all__ = [
    "ABSENT_ETAG",
    "Exif",
    "Sidecar",
    "Edit",
    "Written",
    "decide",
    "normalize_etag",
    "read_sidecar",
    "read_sidecar_bytes",
    "refresh_basics",
    "same_but_derived",
    "update_sidecar",
]


@dataclasses.dataclass(frozen=True)
class Exif:
    """The EXIF basics a sidecar carries: displayed size and when the photo was taken.
    ``extra`` keeps whatever else another tool wrote there (and a known field of the wrong
    type, as it was), so a sidecar read and written back keeps it."""

    width: int | None
    height: int | None
    created_at: str | None = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        document = dict(self.extra)
        for key, value in (("width", self.width), ("height", self.height)):
            if value is not None or key not in document:
                document[key] = value
        if self.created_at is not None or "createdAt" not in document:
            document["createdAt"] = self.created_at
        return document

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Exif:
        extra = dict(data)

        def take(key: str, kind: type) -> Any:
            value = extra.get(key)
            if value is None or (isinstance(value, kind) and not isinstance(value, bool)):
                extra.pop(key, None)  # a null is the field unknown: to_json writes it back
                return value
            return None

        return cls(take("width", int), take("height", int), take("createdAt", str), extra)


_SIDECAR_ALIASES = {"updated_at": "updatedAt", "updated_by": "updatedBy"}
_SIDECAR_KNOWN = frozenset({"v", "tags", "notes", "exif", "hash", "updatedAt", "updatedBy"})


@dataclasses.dataclass(frozen=True)
class Sidecar:
    """A per-image sidecar. ``extra`` holds every field lenslet does not know (``star``,
    ``original_position``, …) so that writes carry them through untouched."""

    tags: tuple[str, ...] = ()
    notes: str = ""
    exif: Exif | None = None
    hash: str | None = None
    updated_at: str | None = None
    updated_by: str | None = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def updated(self) -> datetime.datetime | None:
        return parse_time(self.updated_at)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = dict(self.extra)
        document.update(
            v=VERSION,
            tags=list(self.tags),
            notes=self.notes,
            exif=self.exif.to_json() if self.exif is not None else None,
            hash=self.hash,
            updatedAt=self.updated_at,
            updatedBy=self.updated_by,
        )
        return document

    def encode(self) -> bytes:
        return dumps(self.to_json())

    @classmethod
    def decode(cls, data: bytes, *, what: str = "sidecar") -> Sidecar:
        try:
            return cls.from_json(loads(data, what=what))
        except InvalidDocument as exc:
            raise MalformedDocument(f"{what}: {exc}") from exc

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Sidecar:
        """Build from a client's or a file's document; raises :class:`InvalidDocument`."""
        if not isinstance(data, Mapping):
            raise InvalidDocument("a sidecar must be a JSON object")
        document = dict(data)
        for snake, camel in _SIDECAR_ALIASES.items():
            if snake in document:
                value = document.pop(snake)
                document.setdefault(camel, value)
        version = document.get("v", VERSION)
        if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
            raise UnsupportedVersion(f"sidecar has version {version}; this lenslet reads 1")
        tags = document.get("tags")
        if tags is None:
            tags = []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InvalidDocument("tags must be a list of strings")
        notes = document.get("notes")
        if notes is None:
            notes = ""
        if not isinstance(notes, str):
            raise InvalidDocument("notes must be a string")
        exif = document.get("exif")
        if exif is not None and not isinstance(exif, Mapping):
            raise InvalidDocument("exif must be an object")
        if too_deep(document, MAX_DEPTH):
            # orjson reads deeper documents than it writes: refuse them when read, not when a
            # later write of the same data would fail.
            raise InvalidDocument(f"nested deeper than {MAX_DEPTH} levels")
        digest = document.get("hash")
        updated_at = document.get("updatedAt")
        updated_by = document.get("updatedBy")
        if updated_at is not None and not isinstance(updated_at, str):
            parsed = parse_time(updated_at)
            updated_at = format_time(parsed) if parsed is not None else None
        return cls(
            tags=tuple(dict.fromkeys(tags)),
            notes=notes,
            exif=Exif.from_json(exif) if exif is not None else None,
            hash=digest if isinstance(digest, str) else None,
            updated_at=updated_at,
            updated_by=updated_by if isinstance(updated_by, str) else None,
            extra={k: v for k, v in document.items() if k not in _SIDECAR_KNOWN},
        )


#: The ETag of an image that has no sidecar yet; ``If-Match`` with it means "only if still none".
ABSENT_ETAG = "absent"
MAX_ATTEMPTS = 16
#: The longest file name (in bytes) of ext4, XFS, APFS, NTFS and S3-backed mounts alike.
NAME_MAX = 255


async def _back_off(attempt: int) -> None:
    """Jittered exponential backoff between conditional-write attempts (at most ~0.3 s)."""
    await anyio.sleep(random.uniform(0, min(0.3, 0.002 * 2**attempt)))


def normalize_etag(value: str | None) -> str | None:
    """Accept ``abc``, ``"abc"`` and ``W/"abc"`` alike."""
    if value is None:
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"') or None


def _fits(image: str) -> bool:
    """Whether the sidecar's name fits the 255-byte name limit of common file systems (an
    image named with 251-255 bytes can exist but cannot have a sidecar beside it)."""
    return len(paths.sidecar_name(paths.split(image)[1]).encode()) <= NAME_MAX


async def read_sidecar(storage: Store, image: str) -> tuple[Sidecar, str] | None:
    """The stored sidecar of ``image`` and its ETag, or ``None`` when it has none.
    Malformed JSON and newer versions raise (they are never silently overwritten)."""
    stored = await read_sidecar_bytes(storage, image)
    return None if stored is None else (stored[0], stored[1])


async def read_sidecar_bytes(storage: Store, image: str) -> tuple[Sidecar, str, bytes] | None:
    """:func:`read_sidecar`, and the bytes it decoded (what :func:`refresh_basics` can start
    from instead of reading them again)."""
    target = paths.sidecar_name(image)
    if not _fits(image):
        return None
    try:
        data, etag = await storage.read_versioned(target)
    except NotFound:
        return None
    return Sidecar.decode(data, what=f"sidecar {target!r}"), etag, data


@dataclasses.dataclass(frozen=True)
class Edit:
    """A client's sidecar write, read once: the fields its body names and the stamps and
    authors it carries (in either spelling)."""

    sidecar: Sidecar
    named: frozenset[str]
    stamps: tuple[datetime.datetime, ...] = ()
    authors: tuple[str, ...] = ()

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Edit:
        """Validate a body (raises :class:`InvalidDocument`) and note what it names."""
        sidecar = Sidecar.from_json(body)
        named = {key for key in ("tags", "notes") if key in body} | set(sidecar.extra)
        stamps = (parse_time(body.get(key)) for key in ("updatedAt", "updated_at"))
        authors = (body.get(key) for key in ("updated_by", "updatedBy"))
        return cls(
            sidecar=sidecar,
            named=frozenset(named),
            stamps=tuple(s for s in stamps if s is not None),
            authors=tuple(dict.fromkeys(a for a in authors if isinstance(a, str) and a)),
        )

    def echoes(self, stored: Sidecar) -> bool:
        """Whether the body carries the stored version's own stamp (the client read it)."""
        seen = stored.updated
        return seen is not None and seen in self.stamps


def decide(
    stored: tuple[Sidecar, str] | None,
    edit: Edit,
    if_match: str | None,
    *,
    now: datetime.datetime,
    author: str | None = None,
    writer: str = "lenslet",
) -> Sidecar:
    """What to store, given the stored version (or ``None``), a client's edit and its
    ``If-Match``; ``now`` is the arrival time; ``author`` who the request says writes and
    ``writer`` who writes when nobody is named (see :func:`_author`)."""
    current = stored[0] if stored is not None else Sidecar()
    if stored is None:
        as_sent = True
    elif if_match is not None:
        as_sent = if_match == stored[1]
    else:
        as_sent = edit.echoes(current)
    sent = edit.sidecar
    # A client's clock may be off, or its stamp in the wrong unit: no stamp it sends counts
    # for later than a little past now, so it cannot win every merge to come.
    body_at = min(max(edit.stamps, default=now), now + _SKEW)
    newer = as_sent or current.updated is None or body_at >= current.updated
    tags = current.tags
    if "tags" in edit.named:
        tags = sent.tags if as_sent else tuple(dict.fromkeys(current.tags + sent.tags))
    notes = sent.notes if "notes" in edit.named and newer else current.notes
    extra = dict(current.extra)
    for key, value in sent.extra.items():
        if newer or key not in extra:
            extra[key] = value
    stamp = max(now, body_at)
    if current.updated is not None:
        try:
            stamp = max(stamp, current.updated + _TICK)
        except OverflowError:  # a stored stamp at the end of time (another tool wrote it)
            stamp = current.updated
    return Sidecar(
        tags=tags,
        notes=notes,
        exif=current.exif if current.exif is not None else sent.exif,
        hash=current.hash if current.hash is not None else sent.hash,
        updated_at=format_time(stamp),
        updated_by=_author(edit, current, author, writer),
        extra=extra,
    )


def _author(edit: Edit, current: Sidecar, author: str | None, writer: str) -> str:
    """Who made the edit: an author the body names that is not just the stored one echoed
    back; else ``author`` (who the request says writes: ``X-Lenslet-User``); else the echoed
    one (the body says so); else ``writer`` (the adapter's or the settings' default)."""
    for name in edit.authors:
        if name != current.updated_by:
            return name
    return author or (edit.authors[0] if edit.authors else writer)


#: The smallest step of a stored stamp (they are written to the millisecond).
_TICK = datetime.timedelta(milliseconds=1)
#: How far ahead of the server's clock a client's stamp may be taken at its word.
_SKEW = datetime.timedelta(minutes=5)


class Written(NamedTuple):
    """A sidecar write: what was stored, its new ETag, and the version it replaced."""

    sidecar: Sidecar
    etag: str
    previous: Sidecar | None


async def update_sidecar(
    storage: Store,
    image: str,
    body: Mapping[str, Any],
    *,
    if_match: str | None = None,
    author: str | None = None,
    writer: str = "lenslet",
    basics: Callable[[], Awaitable[tuple[Exif, str] | None]] | None = None,
) -> Written:
    """Apply a client's write (``author``: who the request says writes; ``writer``: who
    writes when nobody is named). ``basics``: the image's EXIF basics and hash (``None`` when
    it cannot give them), asked for when the sidecar written would have none. They go in with
    the client's write, so that an index does not rewrite the sidecar a moment later to add
    them, and the ETag the client was just given stays the stored one."""
    edit = Edit.from_body(body)
    if not _fits(image):
        raise InvalidPath(
            f"{image!r}: the name is too long for a sidecar beside it "
            f"(the sidecar's name would pass {NAME_MAX} bytes)",
            path=image,
        )
    wanted = normalize_etag(if_match)
    target = paths.sidecar_name(image)

    async def attempt() -> Written:
        stored = await read_sidecar(storage, image)
        result = decide(stored, edit, wanted, now=utcnow(), author=author, writer=writer)
        if result.exif is None and basics is not None:
            found = await basics()
            if found is not None:
                result = dataclasses.replace(result, exif=found[0], hash=found[1])
        expected = stored[1] if stored else None
        etag = await storage.write_if(target, result.encode(), expected=expected)
        return Written(result, etag, stored[0] if stored else None)

    return await retry_on_conflict(target, MAX_ATTEMPTS, attempt, _back_off)


#: The fields an index run derives from the image and writes into an existing sidecar.
_DERIVED = ("exif", "hash", "v")


def same_but_derived(first: bytes, second: bytes) -> bool:
    """Whether two sidecars say the same but for what :func:`refresh_basics` derives from the
    image: one is then a copy of the other, whichever an index run has brought up to date
    since. Bytes that are no JSON object are the same only when they are equal."""
    if first == second:
        return True
    try:
        documents = [loads(data, what="sidecar") for data in (first, second)]
    except LensletError:
        return False
    for document in documents:
        for key in _DERIVED:
            document.pop(key, None)
    return documents[0] == documents[1]


async def refresh_basics(
    storage: Store,
    image: str,
    exif: Exif,
    digest: str,
    *,
    read: tuple[bytes, str] | None = None,
) -> tuple[bytes, str] | None:
    """Bring an existing sidecar's EXIF basics and hash up to date (never creates one). Only
    ``exif`` and ``hash`` change: every other field is written back exactly as it was read
    (no normalisation of the clients' fields by a background job). ``read``: its bytes and
    ETag as read a moment ago, the first attempt's (a conditional write of them fails if it
    changed since, and the next attempt reads it). Returns the bytes written and their ETag,
    or ``None`` when there was nothing to write."""
    target = paths.sidecar_name(image)
    wanted = exif.to_json()
    known = read

    async def attempt() -> tuple[bytes, str] | None:
        nonlocal known
        try:
            data, etag = known if known is not None else await storage.read_versioned(target)
        except NotFound:
            return None
        known = None
        Sidecar.decode(data, what=f"sidecar {target!r}")  # refuse (and keep) what is unreadable
        document = loads(data, what=f"sidecar {target!r}")
        if document.get("exif") == wanted and document.get("hash") == digest:
            return None
        document.update(exif=wanted, hash=digest)
        document.setdefault("v", VERSION)
        written = dumps(document)
        return written, await storage.write_if(target, written, expected=etag)

    return await retry_on_conflict(target, MAX_ATTEMPTS, attempt, _back_off)
