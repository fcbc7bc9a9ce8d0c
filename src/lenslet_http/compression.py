"""The one gzip path: answers in text formats (JSON, the page's script and style) are
compressed for clients that accept gzip, once per representation where they can be told apart.

An answer with a strong ``ETag`` names its bytes (a folder page of one build, a sidecar
version), so its compressed form is kept (bounded in bytes, least recently used first out) and
served again without compressing: a whole 50,000-image folder is ~0.1 s of gzip, paid once per
build instead of once per request. An answer without one (a search's hits, the page) is kept
by a blake3 of its bytes, a small part of the cost of compressing them again. Large bodies are
compressed off the event loop. Streams (server-sent events) and images pass through untouched;
the routes that answer nothing else (``skip``) are passed by without a look at their answers.
"""

from __future__ import annotations

import collections
import functools
import gzip
from collections.abc import Awaitable, Collection, Generator

import anyio.to_thread
from blake3 import blake3
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .routing import route_path

__all__ = ["Compression"]

#: Types worth compressing (images are compressed already).
_TEXT = frozenset(
    (b"application/json", b"text/html", b"text/css", b"text/javascript", b"application/javascript")
)
#: Bodies above this are compressed in a worker thread.
_OFF_LOOP = 64 * 1024


class _Nothing:
    """Awaited for a message kept back (a part of a body to compress whole): done at once."""

    def __await__(self) -> Generator[None, None, None]:
        return
        yield


_NOTHING = _Nothing()


class Compression:
    """ASGI middleware: gzip for text answers of at least ``minimum_size`` bytes."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        minimum_size: int = 1024,
        level: int = 5,
        kept_bytes: int = 64 * 1024 * 1024,
        skip: Collection[str] = (),
    ) -> None:
        self.app = app
        self.skip = frozenset(skip)
        self.minimum_size = minimum_size
        self.level = level
        self.kept_bytes = kept_bytes
        self._kept: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        self._size = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope) in self.skip:
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        # Not a coroutine of its own: what passes through is handed to ``send`` to be awaited
        # without one more frame (most answers pass: small, not text, or not asked gzipped).
        def compressing(message: Message) -> Awaitable[None]:
            nonlocal start
            if message["type"] == "http.response.start":
                raw = message["headers"]
                kind = _text_kind(raw, self.minimum_size)
                if kind is None:
                    return send(message)  # not ours to compress: pass everything through
                if kind:
                    MutableHeaders(raw=raw).add_vary_header("Accept-Encoding")
                else:
                    raw.append((b"vary", b"Accept-Encoding"))
                if not _accepts_gzip(scope):
                    return send(message)
                start = message
                return _NOTHING
            if start is None or message["type"] != "http.response.body":
                return send(message)
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return _NOTHING
            query = scope.get("query_string", b"").decode("latin-1")
            return self._answer(start, b"".join(chunks), f"{scope.get('path', '')}?{query}", send)

        await self.app(scope, receive, compressing)

    async def _answer(self, start: Message, body: bytes, where: str, send: Send) -> None:
        headers = MutableHeaders(raw=start["headers"])
        if len(body) >= self.minimum_size and start["status"] not in (204, 304):
            etag = headers.get("etag")
            # An ETag names one representation of one URL: the key is both. Without one (a
            # search's hits), the bytes name themselves: a blake3 of 50 hits is ~20x faster
            # than their gzip.
            if etag and not etag.startswith("W/"):
                key = f"{where} {etag}"
            else:
                key = f"blake3 {blake3(body).hexdigest()}"
            body = await self._compressed(key, body)
            headers["Content-Encoding"] = "gzip"
            headers["Content-Length"] = str(len(body))
        await send(start)
        await send({"type": "http.response.body", "body": body})

    async def _compressed(self, key: str, body: bytes) -> bytes:
        if key in self._kept:
            self._kept.move_to_end(key)
            return self._kept[key]
        if len(body) > _OFF_LOOP:
            packed = await anyio.to_thread.run_sync(self._compress, body)
        else:
            packed = self._compress(body)
        if len(packed) <= self.kept_bytes:
            self._kept[key] = packed
            self._size += len(packed)
            while self._size > self.kept_bytes:
                _, dropped = self._kept.popitem(last=False)
                self._size -= len(dropped)
        return packed

    def _compress(self, body: bytes) -> bytes:
        return gzip.compress(body, compresslevel=self.level, mtime=0)


def _accepts_gzip(scope: Scope) -> bool:
    for key, value in scope["headers"]:  # noqa: SIM110 (a loop: any() of a generator is 3x this)
        if key == b"accept-encoding" and b"gzip" in value:
            return True
    return False


#: The answer headers :func:`_text_kind` reads, by what it does with them.
_ENCODING, _TYPE, _VARY, _LENGTH = range(4)
_READ = {
    b"content-encoding": _ENCODING,
    b"content-type": _TYPE,
    b"vary": _VARY,
    b"content-length": _LENGTH,
}


def _text_kind(raw: list[tuple[bytes, bytes]], minimum_size: int) -> bool | None:
    """Of an answer's headers: ``None`` unless they say a text type not encoded yet and not
    shorter than ``minimum_size`` (one that is never compressed does not vary); else whether
    they have a ``Vary`` header already."""
    text, vary = False, False
    for key, value in raw:
        read = _READ.get(key)
        if read is None:
            continue
        if read == _TYPE:
            text = _is_text(value)
        elif read == _VARY:
            vary = True
        elif read == _ENCODING or (value.isdigit() and int(value) < minimum_size):
            return None
    return vary if text else None


@functools.lru_cache(maxsize=64)
def _is_text(content_type: bytes) -> bool:
    return content_type.split(b";", 1)[0].strip().lower() in _TEXT
