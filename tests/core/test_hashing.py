"""Content hashes: blake3, the same whether hashed whole or streamed in chunks."""

from __future__ import annotations

import re

from blake3 import blake3
from hypothesis import given
from hypothesis import strategies as st

from lenslet_core.hashing import content_etag, hash_bytes


def test_known_value() -> None:
    # blake3 of the empty input, from the reference implementation's test vectors.
    assert hash_bytes(b"") == (
        "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    )


@given(st.binary(max_size=4096))
def test_hash_bytes_is_prefixed_blake3(data: bytes) -> None:
    digest = hash_bytes(data)
    assert digest == "blake3:" + blake3(data).hexdigest()
    assert re.fullmatch(r"blake3:[0-9a-f]{64}", digest)


@given(st.binary(max_size=1024))
def test_memoryview_hashes_like_bytes(data: bytes) -> None:
    assert hash_bytes(memoryview(data)) == hash_bytes(data)


@given(st.binary(max_size=2048))
def test_content_etag_is_stable(data: bytes) -> None:
    etag = content_etag(data)
    assert etag == content_etag(bytes(data))
    assert etag == blake3(data).hexdigest(length=16)
    assert re.fullmatch(r"[0-9a-f]{32}", etag)


@given(st.binary(max_size=512), st.binary(max_size=512))
def test_content_etag_differs_for_different_content(a: bytes, b: bytes) -> None:
    assert (content_etag(a) == content_etag(b)) == (a == b)


def test_content_etag_sees_a_one_byte_change() -> None:
    doc = b'{"v":1,"tags":["a"],"notes":""}'
    assert content_etag(doc) != content_etag(doc.replace(b'"a"', b'"b"'))
    assert content_etag(doc) != content_etag(doc + b" ")
