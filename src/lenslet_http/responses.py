"""How results become HTTP: orjson bodies, the one error answer, validators and byte ranges."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from lenslet_core import (
    LensletError,
    MethodNotAllowed,
    QueueFull,
    RangeNotSatisfiable,
    ThumbnailPending,
    TooLarge,
    Unauthorized,
)

__all__ = [
    "ORJSONResponse",
    "Raw",
    "error_answer",
    "etag_matches",
    "header",
    "limited",
    "parse_range",
    "plain_etag",
    "quoted",
    "raw_headers",
]


def limited(request: Request, limit: int, what: str = "the body") -> Request:
    """``request`` with a body that may not pass ``limit`` bytes: refused from its
    ``Content-Length`` before anything is read, or as soon as the bytes that arrive pass it
    (a chunked body), never read whole first. Raises :class:`TooLarge`."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise TooLarge.over(limit, what)
    receive, seen = request.receive, 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise TooLarge.over(limit, what)
        return message

    return Request(request.scope, counted)


class ORJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class Raw(Response):
    """A body already in bytes with its headers already in bytes (:func:`raw_headers`): what
    the read routes answer many times a second, without a header dict encoded again for each
    answer."""

    status_code = 200
    background = None

    def __init__(self, body: bytes, headers: Iterable[tuple[bytes, bytes]]) -> None:
        self.body = body
        self.raw_headers = list(headers)  # its own: a middleware may add to it


def raw_headers(
    body: bytes, media_type: bytes, etag: str, cache_control: bytes
) -> tuple[tuple[bytes, bytes], ...]:
    """A :class:`Raw` answer's headers: its ``ETag`` (:func:`quoted`), ``Cache-Control``,
    ``Content-Length`` and ``Content-Type``."""
    return (
        (b"etag", quoted(etag).encode()),
        (b"cache-control", cache_control),
        (b"content-length", b"%d" % len(body)),
        (b"content-type", media_type),
    )


def header(request: Request, name: bytes) -> str | None:
    """A request header by its lower-case name (the first of several), read from the scope."""
    for key, value in request.scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def error_answer(exc: LensletError) -> ORJSONResponse:
    """The one error answer: ``{"error": {"code", "message"}}`` with the error's status, and
    the headers that status needs."""
    headers: dict[str, str] = {}
    if isinstance(exc, QueueFull):  # not done yet: nobody may keep this answer
        retry = exc.retry_after if isinstance(exc, ThumbnailPending) else 5
        headers |= {"Cache-Control": "no-store", "Retry-After": str(max(1, round(retry)))}
    elif isinstance(exc, TooLarge):
        # The client is still sending: closing the connection stops it sooner than reading on.
        headers["Connection"] = "close"
    elif isinstance(exc, RangeNotSatisfiable):
        headers["Content-Range"] = f"bytes */{exc.size}"
    elif isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    elif isinstance(exc, MethodNotAllowed):
        headers["Allow"] = exc.allowed
    body = {"error": {"code": exc.code, "message": exc.message}}
    return ORJSONResponse(body, status_code=exc.status, headers=headers)


def quoted(etag: str) -> str:
    return f'"{etag}"'


def plain_etag(value: str) -> str:
    """An ETag as a client sent it (``W/"abc"``, ``"abc"``, ``abc``) without its dressing."""
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


def etag_matches(request: Request, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (or is ``*``)."""
    sent = header(request, b"if-none-match")
    if sent is None:
        return False
    names = {plain_etag(part) for part in sent.split(",")}
    return "*" in names or etag in names


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """The one byte range ``[start, end)`` a ``Range`` header asks of ``size`` bytes; ``None``
    for no (or an unsupported, multi-part) range: serve it whole; ``False`` when it cannot be
    satisfied (416)."""
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = int(last)
        if length == 0:
            return False
        return max(0, size - length), size
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if start >= size or end <= start:
        return False
    return start, end
