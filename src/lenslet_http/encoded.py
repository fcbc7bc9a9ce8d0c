"""Answers encoded once: a folder's pages per build, and search and item answers while the
facade gives the same ones, with a strong ETag of the bytes where the answer has none of its
own (compressing them is :mod:`compression`'s, once per ETag)."""

from __future__ import annotations

import collections
from collections.abc import Callable, Hashable

import anyio
import orjson
from blake3 import blake3

from lenslet_core import Manifest

from .responses import raw_headers

__all__ = ["Encoded", "EncodedAnswers", "EncodedPages"]


#: Encoded folder answers kept, by (folder, build, page; -1 the whole folder): a build never
#: changes. Bounded in number and in bytes (a whole 50,000-image folder is ~10 MB).
_ENCODED_PAGES = 64
_ENCODED_BYTES = 64 * 1024 * 1024


class Encoded:
    """An answer kept encoded: the object it encodes, its bytes, their ETag and the headers
    that serve them (a :class:`~lenslet_http.responses.Raw` JSON answer, revalidated each
    time)."""

    __slots__ = ("answer", "body", "etag", "headers")

    def __init__(self, answer: object, body: bytes, etag: str) -> None:
        self.answer = answer
        self.body = body
        self.etag = etag
        self.headers = raw_headers(body, b"application/json", etag, b"no-cache")


class EncodedPages:
    """Folder answers encoded once per build, least recently used first out (compressing them
    is :mod:`compression`'s, once per build too)."""

    def __init__(self) -> None:
        self._kept: collections.OrderedDict[tuple[str, str, int], Encoded] = (
            collections.OrderedDict()
        )
        self._bytes = 0

    async def get(self, manifest: Manifest, page: int, etag: str) -> Encoded:
        """The ``page`` of ``manifest`` (-1: the whole folder) encoded, its ETag ``etag``."""
        key = (manifest.path, manifest.build, page)
        kept = self._kept.get(key)
        if kept is not None:
            self._kept.move_to_end(key)
            return kept
        # Off the event loop: a whole 50,000-image folder is ~0.1 s of encoding.
        body = await anyio.to_thread.run_sync(lambda: orjson.dumps(manifest.to_json()))
        kept = self._kept.get(key)  # encoded meanwhile by another request: that one stays
        if kept is not None:
            return kept
        kept = self._kept[key] = Encoded(None, body, etag)  # the bytes only: not a whole folder
        self._bytes += len(body)
        while len(self._kept) > 1 and (
            len(self._kept) > _ENCODED_PAGES or self._bytes > _ENCODED_BYTES
        ):
            _, dropped = self._kept.popitem(last=False)
            self._bytes -= len(dropped.body)
        return kept


#: Answers kept encoded, per kind.
_ENCODED_ANSWERS = 1024


class EncodedAnswers:
    """Answers by question (a search's, an item's), each kept with what it encodes: the facade
    gives the same object again while nothing it depends on changed (:meth:`Lenslet.find`'s
    hits, a kept :class:`Item`), and then the same bytes and headers serve it."""

    def __init__(self) -> None:
        self._kept: collections.OrderedDict[Hashable, Encoded] = collections.OrderedDict()

    def get(
        self,
        question: Hashable,
        answer: object,
        encode: Callable[[], bytes],
        etag: str | None = None,
    ) -> Encoded:
        """``answer`` encoded (by ``encode``, once), with ``etag`` or else a strong one of the
        bytes (a blake3 of them)."""
        kept = self._kept.get(question)
        if kept is not None and kept.answer is answer:
            self._kept.move_to_end(question)
            return kept
        body = encode()
        kept = self._kept[question] = Encoded(
            answer, body, etag if etag is not None else blake3(body).hexdigest(length=16)
        )
        self._kept.move_to_end(question)
        if len(self._kept) > _ENCODED_ANSWERS:
            self._kept.popitem(last=False)
        return kept
