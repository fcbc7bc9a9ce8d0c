"""How lenslet's documents are stored: JSON by orjson, each carrying ``"v": 1``, and times
as ISO 8601 in UTC.

A document with a newer ``v`` is refused with :class:`UnsupportedVersion`, malformed JSON
with :class:`MalformedDocument`. Each document's record lives beside the code that owns it:
manifests in :mod:`manifest`, sidecars in :mod:`sidecar`, the rollup in :mod:`rollup`.
"""

from __future__ import annotations

import datetime
import functools
import math
from collections.abc import Mapping
from typing import Any

import orjson

from .errors import InvalidDocument, MalformedDocument, UnsupportedVersion

__all__ = [
    "MAX_DEPTH",
    "VERSION",
    "dumps",
    "format_epoch",
    "format_time",
    "loads",
    "parse_time",
    "too_deep",
    "utcnow",
]

VERSION = 1
#: Deepest nesting a document may have (orjson writes at most 254 levels).
MAX_DEPTH = 64


def dumps(document: Mapping[str, Any]) -> bytes:
    """Encode a document; values JSON cannot carry as lenslet writes it (text that is not
    valid Unicode, integers beyond 64 bits) raise :class:`InvalidDocument`."""
    try:
        return orjson.dumps(document)
    except orjson.JSONEncodeError as exc:
        raise InvalidDocument(f"cannot be stored as JSON: {exc}") from exc


def loads(data: bytes, *, what: str) -> dict[str, Any]:
    """Parse a stored document and check its version; ``what`` names it in errors."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedDocument(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise MalformedDocument(f"{what} must be a JSON object")
    version = document.get("v", VERSION)
    if not isinstance(version, int) or isinstance(version, bool):
        raise MalformedDocument(f"{what} has a non-integer version {version!r}")
    if version > VERSION:
        raise UnsupportedVersion(
            f"{what} has version {version}; this lenslet reads version {VERSION} "
            "(upgrade lenslet to use it)"
        )
    return document


# -- time ------------------------------------------------------------------------------------


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def format_time(moment: datetime.datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z``: ``2026-11-25T14:52:26.123Z``."""
    m = moment.astimezone(datetime.timezone.utc)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
        f".{m.microsecond // 1000:03d}Z"
    )


@functools.lru_cache(maxsize=65_536)
def format_epoch(seconds: float) -> str | None:
    """Epoch seconds (a file's mtime) as :func:`format_time` writes them; ``None`` when they
    are not a time at all. Remembered for the last 65,536 times: a folder or search answer
    formats the same images' times again and again."""
    try:
        return format_time(datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc))
    except (OverflowError, OSError, ValueError):
        return None


def parse_time(value: object) -> datetime.datetime | None:
    """Read an ``updatedAt``: ISO 8601 (``Z`` or an offset; naive means UTC) or epoch seconds
    or milliseconds. ``None`` when absent or unreadable: such a time is older than any other."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        try:
            if not math.isfinite(value):
                return None
            seconds = value / 1000 if abs(value) >= 1e11 else value
            return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment


def too_deep(value: object, budget: int) -> bool:
    """Whether a decoded document nests deeper than ``budget`` levels."""
    if isinstance(value, dict):
        return budget <= 0 or any(too_deep(v, budget - 1) for v in value.values())
    if isinstance(value, list):
        return budget <= 0 or any(too_deep(v, budget - 1) for v in value)
    return False
