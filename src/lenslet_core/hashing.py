"""Content hashes: blake3, streamed, written as ``"blake3:<hex>"``."""

from __future__ import annotations

from collections.abc import Iterable

from blake3 import blake3

__all__ = ["content_etag", "hash_bytes", "hash_chunks"]

PREFIX = "blake3:"


def hash_bytes(data: bytes | memoryview) -> str:
    """The content hash of an image as stored in manifests and sidecars."""
    return PREFIX + blake3(data).hexdigest()


def hash_chunks(chunks: Iterable[bytes]) -> str:
    """The same hash as :func:`hash_bytes`, fed chunk by chunk (for files not held in memory)."""
    hasher = blake3()
    for chunk in chunks:
        hasher.update(chunk)
    return PREFIX + hasher.hexdigest()


def content_etag(data: bytes) -> str:
    """A short strong validator for small documents (sidecars, manifests) on local storage."""
    return blake3(data).hexdigest(length=16)
