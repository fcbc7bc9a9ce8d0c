"""Content hashes: blake3, streamed, written as ``"blake3:<hex>"``."""

from __future__ import annotations

from blake3 import blake3

__all__ = ["content_etag", "hash_bytes"]

PREFIX = "blake3:"


def hash_bytes(data: bytes | memoryview) -> str:
    """The content hash of an image as stored in manifests and sidecars."""
    return PREFIX + blake3(data).hexdigest()


def content_etag(data: bytes) -> str:
    """A short strong validator for small documents (sidecars, manifests) on local storage."""
    return blake3(data).hexdigest(length=16)
