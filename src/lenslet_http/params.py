"""What endpoints read from a request: its query parameters (each with its description for the
OpenAPI document, and its bounds), the 202 protocol's wait, and small bodies (JSON or forms)."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

import orjson
from starlette.requests import Request

from lenslet_core import InvalidDocument, InvalidParameter, Lenslet

from .openapi import Param
from .responses import header, limited
from .served import served

__all__ = [
    "DEFAULT_WAIT",
    "FOLDER",
    "HTTP_WRITER",
    "IF_MATCH",
    "IF_NONE_MATCH",
    "IMAGE",
    "MAX_SIDECAR_BYTES",
    "MAX_WAIT",
    "PAGE",
    "PREFER",
    "RANGE",
    "USER",
    "WAIT",
    "asks_async",
    "flag",
    "float_param",
    "form_fields",
    "int_param",
    "json_object",
    "lens_of",
    "path_of",
    "query",
]

#: Longest a ``/thumb`` request waits for a thumbnail being made, whatever it asks for (and
#: how long a plain request, an ``<img>``, waits before its 503).
MAX_WAIT = 10.0
#: Default wait of a client that takes the 202 protocol.
DEFAULT_WAIT = 0.8
#: Largest sidecar body accepted by ``PUT /item``.
MAX_SIDECAR_BYTES = 1024 * 1024
#: ``updatedBy`` of an HTTP write whose body and ``X-Lenslet-User`` header name nobody.
HTTP_WRITER = "web"


FOLDER = Param(
    "path", {"type": "string"}, "A folder: '/trips/2025', 'trips/2025', '' or '/' (the root).",
    example="",
)  # fmt: skip
IMAGE = Param(
    "path", {"type": "string", "minLength": 1},
    "An image: 'trips/2025/beach.jpg' (a leading '/' is the same).", required=True,
)  # fmt: skip
PAGE = Param(
    "page", {"type": "integer", "minimum": 0, "maximum": 1_000_000},
    "A page, from 0; without it, the whole folder.",
)  # fmt: skip
WAIT = Param(
    "wait", {"type": "number", "minimum": 0, "maximum": MAX_WAIT},
    "Seconds to wait for a thumbnail being made before a 202 (asks for the 202 protocol).",
)  # fmt: skip
PREFER = Param(
    "Prefer", {"type": "string"}, "respond-async (and wait=N): answer 202 while it is made.",
    where="header",
)  # fmt: skip
IF_NONE_MATCH = Param(
    "If-None-Match", {"type": "string"}, "An ETag read before: 304 when unchanged.",
    where="header",
)  # fmt: skip
IF_MATCH = Param(
    "If-Match", {"type": "string"}, "The ETag read: the named fields are written as sent.",
    where="header",
)  # fmt: skip
USER = Param("X-Lenslet-User", {"type": "string"}, "Who writes (updatedBy).", where="header")
RANGE = Param("Range", {"type": "string"}, "One byte range: bytes=START-END.", where="header")


def lens_of(request: Request) -> Lenslet:
    return served(request).lens


def path_of(request: Request) -> str:
    return query(request).get("path", "")


#: Where a request's parsed query is kept for the endpoint's other reads of it.
_QUERY = "lenslet.query"


def query(request: Request) -> Mapping[str, str]:
    """The request's query parameters (of a name given twice, the last), parsed once. The same
    as Starlette's ``request.query_params`` (what ``urllib.parse.parse_qsl`` reads), in a
    fraction of its time per request: a part without ``%`` or ``+`` is taken as it is, and the
    answers for the last few thousand short query strings are kept (a gallery asks for the
    same thumbnails and items again and again)."""
    found: Mapping[str, str] | None = request.scope.get(_QUERY)
    if found is None:
        raw: bytes = request.scope.get("query_string", b"")
        kept = len(raw) <= _KEPT_QUERY_BYTES
        found = _kept_query(raw) if kept else MappingProxyType(parse_query(raw))
        request.scope[_QUERY] = found
    return found


#: Query strings longer than this are parsed each time, never kept.
_KEPT_QUERY_BYTES = 1024


@functools.lru_cache(maxsize=4096)
def _kept_query(raw: bytes) -> Mapping[str, str]:
    return MappingProxyType(parse_query(raw))  # shared between requests: read-only


def parse_query(raw: bytes) -> dict[str, str]:
    """A query string's names and values, decoded as ``parse_qsl(keep_blank_values=True)``
    decodes them."""
    found: dict[str, str] = {}
    for part in raw.decode("latin-1").split("&"):
        if part:
            name, _, value = part.partition("=")
            found[_unquoted(name)] = _unquoted(value)
    return found


def _unquoted(text: str) -> str:
    if "%" not in text and "+" not in text:
        return text
    text = text.replace("+", " ")
    if text.isascii():  # what unquote does with an ASCII run, without its regex split
        return unquote_to_bytes(text).decode("utf-8", "replace")
    return unquote(text)


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = query(request).get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter(f"{name} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise InvalidParameter(f"{name} must be between {low} and {high}, not {value}")
    return value


def float_param(request: Request, name: str, default: float, high: float) -> float:
    raw = query(request).get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidParameter(f"{name} must be a number of seconds, not {raw!r}") from None
    if not value >= 0:  # NaN too
        raise InvalidParameter(f"{name} must be >= 0, not {raw!r}")
    return min(value, high)


def asks_async(request: Request) -> float | None:
    """The wait of a client that takes the 202 protocol — ``Prefer: respond-async`` (RFC 7240,
    with its ``wait=N`` preference) or a ``wait`` parameter — or ``None`` for any other."""
    if "wait" in query(request):
        return float_param(request, "wait", DEFAULT_WAIT, MAX_WAIT)
    prefer = header(request, b"prefer")
    if prefer is None:
        return None
    preferences = {
        name.strip().lower(): value.strip()
        for name, _, value in (part.partition("=") for part in prefer.split(","))
    }
    if "respond-async" not in preferences:
        return None
    try:
        wait = float(preferences.get("wait") or DEFAULT_WAIT)
    except ValueError:
        wait = DEFAULT_WAIT
    return min(wait, MAX_WAIT) if math.isfinite(wait) and wait >= 0 else DEFAULT_WAIT


def flag(value: object) -> bool:
    """A yes/no field of a form (text) or a JSON body (a boolean)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return value is True


async def json_object(
    request: Request, what: str, error: type[InvalidDocument | InvalidParameter]
) -> dict[str, Any]:
    """A small JSON object body (at most a sidecar's size); ``error`` when it is not one."""
    body = await limited(request, MAX_SIDECAR_BYTES, what).body()
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise error(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise error(f"{what} must be a JSON object")
    return document


async def form_fields(request: Request) -> dict[str, Any]:
    """A small body as fields: JSON, or a form (URL-encoded or multipart)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        return await json_object(request, "the body", InvalidParameter)
    async with limited(request, MAX_SIDECAR_BYTES).form(max_files=0, max_fields=16) as form:
        return {key: value for key, value in form.items() if isinstance(value, str)}
