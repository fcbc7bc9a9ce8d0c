"""Answers encoded once: a folder's pages per build, and search answers while the facade gives
the same hits (compressing them is :mod:`compression`'s, once per ETag)."""

from __future__ import annotations

import collections
from collections.abc import Sequence

import anyio
import orjson

from lenslet_core import Hit, Manifest

__all__ = ["EncodedHits", "EncodedPages"]


#: Encoded folder answers kept, by (folder, build, page; -1 the whole folder): a build never
#: changes. Bounded in number and in bytes (a whole 50,000-image folder is ~10 MB).
_ENCODED_PAGES = 64
_ENCODED_BYTES = 64 * 1024 * 1024


class EncodedPages:
    """Folder answers encoded once per build, least recently used first out (compressing them
    is :mod:`compression`'s, once per build too)."""

    def __init__(self) -> None:
        self._bodies: collections.OrderedDict[tuple[str, str, int], bytes] = (
            collections.OrderedDict()
        )
        self._bytes = 0

    async def get(self, manifest: Manifest, page: int) -> bytes:
        key = (manifest.path, manifest.build, page)
        body = self._bodies.get(key)
        if body is not None:
            self._bodies.move_to_end(key)
            return body
        # Off the event loop: a whole 50,000-image folder is ~0.1 s of encoding.
        encoded = await anyio.to_thread.run_sync(lambda: orjson.dumps(manifest.to_json()))
        body = self._bodies.setdefault(key, encoded)
        self._bytes += len(encoded)
        while len(self._bodies) > 1 and (
            len(self._bodies) > _ENCODED_PAGES or self._bytes > _ENCODED_BYTES
        ):
            _, dropped = self._bodies.popitem(last=False)
            self._bytes -= len(dropped)
        return body


#: Search answers kept encoded.
_ENCODED_HITS = 256


class EncodedHits:
    """Search answers by question, each kept with the hits it encodes: :meth:`Lenslet.find`
    gives the same list again while nothing it depends on changed, and then the same bytes
    serve it."""

    def __init__(self) -> None:
        self._bodies: collections.OrderedDict[str, tuple[Sequence[Hit], bytes]] = (
            collections.OrderedDict()
        )

    def get(self, question: str, hits: Sequence[Hit]) -> bytes:
        kept = self._bodies.get(question)
        if kept is not None and kept[0] is hits:
            self._bodies.move_to_end(question)
            return kept[1]
        body = orjson.dumps({"items": [hit.to_json() for hit in hits]})
        self._bodies[question] = (hits, body)
        self._bodies.move_to_end(question)
        if len(self._bodies) > _ENCODED_HITS:
            self._bodies.popitem(last=False)
        return body
