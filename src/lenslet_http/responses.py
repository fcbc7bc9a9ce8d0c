"""How results become HTTP: orjson bodies, one error body, validators and byte ranges."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from lenslet_core import LensletError

__all__ = [
    "BadParameter",
    "BodyTooLarge",
    "ORJSONResponse",
    "error_response",
    "etag_matches",
    "limited",
    "parse_range",
    "plain_etag",
    "quoted",
]


class BadParameter(ValueError):
    """A query parameter that is not what the endpoint takes (400 ``invalid_parameter``)."""


class BodyTooLarge(Exception):
    """A request body past its route's limit (413 ``too_large``), refused as it arrives."""

    def __init__(self, limit: int, what: str = "the body") -> None:
        super().__init__(f"{what} is at most {limit:,} bytes")
        self.limit = limit


def limited(request: Request, limit: int, what: str = "the body") -> Request:
    """``request`` with a body that may not pass ``limit`` bytes: refused from its
    ``Content-Length`` before anything is read, or as soon as the bytes that arrive pass it
    (a chunked body), never read whole first. Raises :class:`BodyTooLarge`."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise BodyTooLarge(limit, what)
    receive, seen = request.receive, 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit, what)
        return message

    return Request(request.scope, counted)


class ORJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> ORJSONResponse:
    """The one error body: ``{"error": {"code", "message"}}``."""
    body = {"error": {"code": code, "message": message}}
    return ORJSONResponse(body, status_code=status, headers=dict(headers or {}))


def lenslet_error(exc: LensletError) -> ORJSONResponse:
    return error_response(exc.status, exc.code, exc.message)


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
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    names = {plain_etag(part) for part in header.split(",")}
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
