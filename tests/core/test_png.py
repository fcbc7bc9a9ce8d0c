"""PNG chunk walking: the header read without libvips must say what libvips says."""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections.abc import Callable

import pytest
import pyvips
from hypothesis import given
from hypothesis import strategies as st

from lenslet_core.errors import CorruptImage, ImageTooLarge
from lenslet_core.imaging import probe
from lenslet_core.png import SIGNATURE, PngHeader, read_png
from tests.imagegen import picture, with_exif

MAX = 100_000_000


def saved(image: pyvips.Image, **options: object) -> bytes:
    """As an editor saves a PNG: without EXIF (libvips writes an ``eXIf`` chunk by default)."""
    data: bytes = image.pngsave_buffer(keep="none", **options)
    return data


VARIANTS: dict[str, Callable[[], bytes]] = {
    "rgb": lambda: saved(picture(40, 30)),
    "rgba": lambda: saved(picture(41, 29, bands=4)),
    "grey": lambda: saved(picture(17, 60, bands=1)),
    "grey 1-bit": lambda: saved(picture(33, 9, bands=1), bitdepth=1),
    "16-bit": lambda: saved(picture(20, 20).cast("ushort").copy(interpretation="rgb16")),
    "palette": lambda: saved(picture(40, 30), palette=True),
    "interlaced": lambda: saved(picture(40, 30), interlace=True),
    "icc profile": lambda: picture(40, 30).pngsave_buffer(keep="icc", profile="srgb"),
}


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def ihdr(width: int, height: int, depth: int = 8, colour: int = 2, interlace: int = 0) -> bytes:
    return chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace))


def with_chunk_after_header(data: bytes, extra: bytes) -> bytes:
    at = len(SIGNATURE) + 25  # after IHDR
    return data[:at] + extra + data[at:]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_the_header_says_what_libvips_says(name: str) -> None:
    data = VARIANTS[name]()
    image = pyvips.Image.new_from_buffer(data, "")
    profile = image.get_typeof("icc-profile-data") != 0
    assert read_png(data) == PngHeader(image.width, image.height, profile)
    assert profile == (name == "icc profile")


@pytest.mark.parametrize("name", list(VARIANTS))
def test_probe_of_a_png_without_exif_is_its_header(name: str) -> None:
    data = VARIANTS[name]()
    found = probe(data, max_pixels=MAX)
    image = pyvips.Image.new_from_buffer(data, "")
    assert (found.mime, found.width, found.height, found.created_at) == (
        "image/png",
        image.width,
        image.height,
        None,
    )


def test_a_png_with_exif_is_left_to_libvips() -> None:
    image = with_exif(picture(40, 30), orientation=6, taken="2021:06:07 08:09:10")
    data = image.pngsave_buffer()
    assert b"eXIf" in data
    assert read_png(data) is None
    found = probe(data, max_pixels=MAX)
    assert (found.width, found.height) == (30, 40)  # turned as its orientation says
    assert found.created_at is not None
    assert found.created_at.startswith("2021-06-07T08:09:10")


def test_exif_in_a_text_chunk_is_left_to_libvips() -> None:
    text = chunk(b"zTXt", b"Raw profile type exif\x00\x00" + zlib.compress(b"exif"))
    assert read_png(with_chunk_after_header(VARIANTS["rgb"](), text)) is None


def test_other_text_chunks_do_not_matter() -> None:
    text = chunk(b"tEXt", b"Comment\x00made in a test")
    assert read_png(with_chunk_after_header(VARIANTS["rgb"](), text)) == PngHeader(40, 30, False)


@pytest.mark.parametrize(
    "header",
    [
        ihdr(0, 10),  # zero width
        ihdr(10, 2**31),  # beyond the format
        ihdr(10, 10, depth=3),  # no such depth
        ihdr(10, 10, depth=8, colour=5),  # no such colour type
        ihdr(10, 10, depth=16, colour=3),  # palettes stop at 8 bits
        ihdr(10, 10, interlace=2),
        chunk(b"IHDR", b"\x00" * 12),  # too short
    ],
)
def test_a_header_no_decoder_takes_is_left_to_libvips(header: bytes) -> None:
    data = SIGNATURE + header + chunk(b"IDAT", b"junk") + chunk(b"IEND", b"")
    assert read_png(data) is None
    with pytest.raises(CorruptImage):
        probe(data, max_pixels=MAX)


def test_a_header_whose_crc_does_not_match_is_left_to_libvips() -> None:
    header = ihdr(10, 10)
    data = SIGNATURE + header[:-1] + bytes([header[-1] ^ 1]) + chunk(b"IEND", b"")
    assert read_png(data) is None
    with pytest.raises(CorruptImage):  # libvips' loader, failing on errors, refuses it
        probe(data, max_pixels=MAX)


def test_a_file_that_does_not_start_with_its_header_is_left_to_libvips() -> None:
    data = SIGNATURE + chunk(b"tEXt", b"a\x00b") + ihdr(10, 10) + chunk(b"IEND", b"")
    assert read_png(data) is None


def test_a_pixel_bomb_is_refused_from_its_header() -> None:
    data = SIGNATURE + ihdr(50_000, 50_000) + chunk(b"IDAT", b"junk") + chunk(b"IEND", b"")
    assert read_png(data) == PngHeader(50_000, 50_000, False)
    with pytest.raises(ImageTooLarge, match="2,500,000,000 pixels"):
        probe(data, max_pixels=MAX)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.99])
def test_a_png_cut_short_is_corrupt(keep: float) -> None:
    data = VARIANTS["rgb"]()
    with pytest.raises(CorruptImage, match="truncated PNG"):
        read_png(data[: int(len(data) * keep)])


def test_a_profile_after_the_pixels_is_not_one() -> None:
    data = VARIANTS["rgb"]()
    end = data.rindex(b"IEND") - 4
    late = data[:end] + chunk(b"iCCP", b"x\x00\x00" + zlib.compress(b"p")) + data[end:]
    assert read_png(late) == PngHeader(40, 30, False)


@given(st.binary(max_size=300))
def test_any_bytes_after_the_signature_give_a_header_none_or_corrupt(tail: bytes) -> None:
    with contextlib.suppress(CorruptImage):
        found = read_png(SIGNATURE + tail)
        assert found is None or (found.width > 0 and found.height > 0)


@given(
    st.integers(1, 2**31 - 1),
    st.integers(1, 2**31 - 1),
    st.sampled_from([(0, 1), (0, 16), (2, 8), (2, 16), (3, 4), (4, 8), (6, 16)]),
    st.booleans(),
)
def test_every_valid_header_is_read(
    width: int, height: int, kind: tuple[int, int], interlaced: bool
) -> None:
    colour, depth = kind
    data = SIGNATURE + ihdr(width, height, depth, colour, int(interlaced)) + chunk(b"IEND", b"")
    assert read_png(data) == PngHeader(width, height, False)
