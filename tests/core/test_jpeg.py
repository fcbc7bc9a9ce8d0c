"""JPEG's segments read without libvips: the same size and ICC profile libvips reads, a cut
file refused, and nothing but a header, ``None`` or :class:`CorruptImage` for any bytes."""

from __future__ import annotations

import pytest
import pyvips
from hypothesis import given, settings
from hypothesis import strategies as st

from lenslet_core.errors import CorruptImage
from lenslet_core.jpeg import JpegHeader, read_jpeg
from tests.imagegen import cmyk_jpeg_bytes, picture


def _jpeg(width: int, height: int, *, icc: bool = False, progressive: bool = False) -> bytes:
    image = picture(width, height)
    options = {"profile": "srgb"} if icc else {}
    data: bytes = image.jpegsave_buffer(Q=75, interlace=progressive, **options)
    return data


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 700), st.integers(1, 700), st.booleans(), st.booleans()
)  # fmt: skip
def test_the_size_and_profile_are_what_libvips_reads(
    width: int, height: int, icc: bool, progressive: bool
) -> None:
    data = _jpeg(width, height, icc=icc, progressive=progressive)
    image = pyvips.Image.new_from_buffer(data, "")
    has_icc = image.get_typeof("icc-profile-data") != 0
    assert read_jpeg(data) == JpegHeader(image.width, image.height, has_icc)
    assert has_icc == icc


def test_a_cmyk_file_with_its_print_profile_says_so() -> None:
    assert read_jpeg(cmyk_jpeg_bytes(40, 30)) == JpegHeader(40, 30, True)
    assert read_jpeg(cmyk_jpeg_bytes(40, 30, profile=False)) == JpegHeader(40, 30, False)


def _segments(data: bytes) -> list[tuple[int, int]]:
    """(offset, marker) of each segment before the scan."""
    found, pos = [], 2
    while data[pos + 1] != 0xDA:
        found.append((pos, data[pos + 1]))
        pos += 2 + ((data[pos + 2] << 8) | data[pos + 3])
    return found


def test_a_height_given_after_the_scan_is_left_to_libvips() -> None:
    data = bytearray(_jpeg(64, 48))
    (frame,) = [pos for pos, marker in _segments(bytes(data)) if marker == 0xC0]
    data[frame + 5 : frame + 7] = b"\x00\x00"  # a DNL segment would give it
    assert read_jpeg(bytes(data)) is None


def test_fill_bytes_and_stray_bytes_before_a_marker_are_skipped() -> None:
    data = _jpeg(64, 48)
    frame = next(pos for pos, marker in _segments(data) if marker == 0xC0)
    padded = data[:frame] + b"\xff\xff\xff" + data[frame:]
    stray = data[:frame] + b"\x00\x17" + data[frame:]
    assert read_jpeg(padded) == read_jpeg(stray) == JpegHeader(64, 48, False)


@pytest.mark.parametrize("cut", [3, 20, 200, -40, -2])
def test_a_file_cut_short_is_refused(cut: int) -> None:
    data = _jpeg(64, 48)
    with pytest.raises(CorruptImage, match=r"^(truncated|corrupt) JPEG"):
        read_jpeg(data[:cut])


@settings(max_examples=300)
@given(st.binary(max_size=300), st.integers(0, 400), st.binary(max_size=8))
def test_any_bytes_give_a_header_none_or_a_corrupt_image(
    tail: bytes, at: int, patch: bytes
) -> None:
    data = bytearray(_SAMPLE + tail)
    data[at : at + len(patch)] = patch
    data[:3] = b"\xff\xd8\xff"  # what the caller checked before
    try:
        header = read_jpeg(bytes(data))
    except CorruptImage:
        return
    assert header is None or (header.width > 0 and header.height > 0)


_SAMPLE = _jpeg(16, 12, icc=True)
