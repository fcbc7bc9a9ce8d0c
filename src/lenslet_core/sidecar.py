"""Sidecars (``foo.jpg.json``): read, merge and write without losing anybody's tag.

The write rules (design.md, "Contracts"):

- ``If-Match`` equals the stored ETag: the body is written as sent (a removed tag stays removed);
- ``If-Match`` differs: merged — tags unioned, notes and unknown fields from the newer
  ``updatedAt``;
- no ``If-Match``: a body whose own ``updatedAt`` is newer than the stored sidecar's replaces it;
  an older one, or one that carries no ``updatedAt`` (it is stamped on arrival), is merged. A
  client that says nothing about when it edited cannot remove a tag somebody else just added.

Every write is conditional on the version it was decided against; a writer that loses the race
reads again and decides again, so concurrent writers in one process or many never drop a tag.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from typing import Any

import anyio

from . import paths
from .errors import InvalidPath, NotFound, PreconditionFailed
from .models import VERSION, Exif, Sidecar, dumps, format_time, loads, utcnow
from .storage import Storage

__all__ = [
    "ABSENT_ETAG",
    "decide",
    "merge_sidecars",
    "normalize_etag",
    "read_sidecar",
    "refresh_basics",
    "update_sidecar",
]

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


async def read_sidecar(storage: Storage, image: str) -> tuple[Sidecar, str] | None:
    """The stored sidecar of ``image`` and its ETag, or ``None`` when it has none.
    Malformed JSON and newer versions raise (they are never silently overwritten)."""
    target = paths.sidecar_name(image)
    if not _fits(image):
        return None
    try:
        data, etag = await storage.read_versioned(target)
    except NotFound:
        return None
    return Sidecar.decode(data, what=f"sidecar {target!r}"), etag


def merge_sidecars(stored: Sidecar, incoming: Sidecar) -> Sidecar:
    """Merge two versions: tags unioned (stored order first), notes and unknown fields from the
    newer ``updatedAt`` (the incoming one on a tie), server fields (exif, hash) kept."""
    stored_at, incoming_at = stored.updated, incoming.updated
    incoming_newer = stored_at is None or (incoming_at is not None and incoming_at >= stored_at)
    newer, older = (incoming, stored) if incoming_newer else (stored, incoming)
    return Sidecar(
        tags=tuple(dict.fromkeys(stored.tags + incoming.tags)),
        notes=newer.notes,
        exif=stored.exif if stored.exif is not None else incoming.exif,
        hash=stored.hash if stored.hash is not None else incoming.hash,
        updated_at=newer.updated_at,
        updated_by=newer.updated_by,
        extra={**older.extra, **newer.extra},
    )


def decide(
    stored: tuple[Sidecar, str] | None,
    incoming: Sidecar,
    if_match: str | None,
    *,
    timed: bool = True,
) -> Sidecar:
    """What to store, given the stored version (or ``None``) and what a client sent.
    ``timed=False`` says the client sent no ``updatedAt`` (the incoming one is the arrival
    time): such a body never replaces without ``If-Match``, it is merged."""
    if stored is None:
        return incoming
    current, etag = stored
    if if_match is not None and if_match == etag:
        return _keep_server_fields(incoming, current)
    if if_match is None and timed:
        stored_at, incoming_at = current.updated, incoming.updated
        if incoming_at is not None and (stored_at is None or incoming_at > stored_at):
            return _keep_server_fields(incoming, current)
    return merge_sidecars(current, incoming)


def _keep_server_fields(incoming: Sidecar, current: Sidecar) -> Sidecar:
    """The incoming document as sent, except what a client may not know about: the server's
    exif and hash when it sent none, and unknown fields it did not send (a client that does not
    know ``star`` must not erase it; sending ``"star": null`` does)."""
    return dataclasses.replace(
        incoming,
        exif=incoming.exif if incoming.exif is not None else current.exif,
        hash=incoming.hash if incoming.hash is not None else current.hash,
        extra={**current.extra, **incoming.extra},
    )


async def update_sidecar(
    storage: Storage,
    image: str,
    body: Mapping[str, Any],
    *,
    if_match: str | None = None,
    writer: str = "lenslet",
) -> tuple[Sidecar, str]:
    """Apply a client's whole-sidecar write; returns the stored document and its new ETag."""
    incoming = Sidecar.from_json(body)
    if not _fits(image):
        raise InvalidPath(
            f"{image!r}: the name is too long for a sidecar beside it "
            f"(the sidecar's name would pass {NAME_MAX} bytes)",
            path=image,
        )
    timed = incoming.updated_at is not None
    if not timed:
        incoming = dataclasses.replace(incoming, updated_at=format_time(utcnow()))
    if incoming.updated_by is None:
        incoming = dataclasses.replace(incoming, updated_by=writer)
    wanted = normalize_etag(if_match)
    target = paths.sidecar_name(image)
    for attempt in range(MAX_ATTEMPTS):
        stored = await read_sidecar(storage, image)
        result = decide(stored, incoming, wanted, timed=timed)
        try:
            etag = await storage.write_if(
                target, result.encode(), expected=stored[1] if stored else None
            )
        except PreconditionFailed:
            await _back_off(attempt)
            continue
        return result, etag
    raise PreconditionFailed(f"{target!r} kept changing; gave up after {MAX_ATTEMPTS} tries")


async def refresh_basics(storage: Storage, image: str, exif: Exif, digest: str) -> bool:
    """Bring an existing sidecar's EXIF basics and hash up to date (never creates one). Only
    ``exif`` and ``hash`` change: every other field is written back exactly as it was read
    (no normalisation of the clients' fields by a background job). Returns whether it wrote."""
    target = paths.sidecar_name(image)
    wanted = exif.to_json()
    for attempt in range(MAX_ATTEMPTS):
        try:
            data, etag = await storage.read_versioned(target)
        except NotFound:
            return False
        Sidecar.decode(data, what=f"sidecar {target!r}")  # refuse (and keep) what is unreadable
        document = loads(data, what=f"sidecar {target!r}")
        if document.get("exif") == wanted and document.get("hash") == digest:
            return False
        document.update(exif=wanted, hash=digest)
        document.setdefault("v", VERSION)
        try:
            await storage.write_if(target, dumps(document), expected=etag)
        except PreconditionFailed:
            await _back_off(attempt)
            continue
        return True
    raise PreconditionFailed(f"{target!r} kept changing; gave up after {MAX_ATTEMPTS} tries")
