from __future__ import annotations

import contextlib
import struct
import zlib

import pytest
import pyvips
from hypothesis import given
from hypothesis import strategies as st

from lenslet_core.errors import CorruptImage, ImageError, ImageTooLarge, UnsupportedImage
from lenslet_core.hashing import hash_bytes
from lenslet_core.imaging import (
    Imaging,
    analyze,
    check_complete,
    exif_datetime,
    probe,
    sniff_mime,
)
from tests.imagegen import jpeg_bytes, picture, png_bytes, webp_bytes

MAX = 50_000_000


@pytest.mark.parametrize(
    ("make", "mime"),
    [(jpeg_bytes, "image/jpeg"), (png_bytes, "image/png"), (webp_bytes, "image/webp")],
)
def test_probe_reads_size_and_type_by_content(make: object, mime: str) -> None:
    data = make(120, 80)  # type: ignore[operator]
    info = probe(data, max_pixels=MAX)
    assert (info.mime, info.width, info.height) == (mime, 120, 80)
    assert info.created_at is None


def test_png_named_anything_is_still_a_png() -> None:
    assert sniff_mime(png_bytes()) == "image/png"


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_rotated_orientations_swap_the_displayed_size(orientation: int) -> None:
    info = probe(jpeg_bytes(120, 80, orientation=orientation), max_pixels=MAX)
    assert (info.width, info.height) == (80, 120)


@pytest.mark.parametrize("orientation", [1, 2, 3, 4])
def test_unrotated_orientations_keep_the_size(orientation: int) -> None:
    info = probe(jpeg_bytes(120, 80, orientation=orientation), max_pixels=MAX)
    assert (info.width, info.height) == (120, 80)


def test_exif_capture_time_becomes_iso_8601() -> None:
    data = jpeg_bytes(taken="2024:05:01 10:00:00", offset="+02:00")
    assert probe(data, max_pixels=MAX).created_at == "2024-05-01T10:00:00+02:00"
    data = jpeg_bytes(taken="2019:12:31 23:59:58")
    assert probe(data, max_pixels=MAX).created_at == "2019-12-31T23:59:58"


def test_analyze_hashes_the_same_bytes() -> None:
    data = webp_bytes()
    result = analyze(data, max_pixels=MAX)
    assert result.hash == hash_bytes(data)
    assert result.probe.mime == "image/webp"


def test_decompression_bomb_is_refused_from_the_header() -> None:
    # 30,000 x 30,000 would decode to 2.7 GB; a 1-bit PNG of it is about 1 MB.
    bomb = pyvips.Image.black(30000, 30000).pngsave_buffer(bitdepth=1, compression=1)
    with pytest.raises(ImageTooLarge, match="900,000,000 pixels"):
        probe(bomb, max_pixels=100_000_000)


def test_text_file_named_jpg_is_unsupported() -> None:
    with pytest.raises(UnsupportedImage):
        probe(b"hello, I am not a photo\n", max_pixels=MAX)


def test_empty_file_is_unsupported() -> None:
    with pytest.raises(UnsupportedImage, match="empty"):
        probe(b"", max_pixels=MAX)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(picture(20, 20).gifsave_buffer(), id="gif"),
        pytest.param(picture(20, 20).tiffsave_buffer(), id="tiff"),
        pytest.param(b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', id="svg"),
        pytest.param(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", id="pdf"),
    ],
)
def test_other_formats_are_refused(data: bytes) -> None:
    with pytest.raises(UnsupportedImage):
        probe(data, max_pixels=MAX)


def test_blocked_loaders_refuse_even_when_called_directly() -> None:
    # The indexer sniffs first, but libvips itself must also refuse what lenslet does not read.
    from lenslet_core.imaging import configure_libvips

    vips = configure_libvips()
    with pytest.raises(vips.Error):
        vips.Image.new_from_buffer(picture(8, 8).tiffsave_buffer(), "")


@pytest.mark.parametrize("make", [jpeg_bytes, png_bytes, webp_bytes])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_images_are_corrupt(make: object, keep: float) -> None:
    data = make(200, 150)  # type: ignore[operator]
    with pytest.raises(CorruptImage, match=r"truncated|corrupt"):
        probe(data[: int(len(data) * keep)], max_pixels=MAX)


def test_jpeg_with_damaged_header_is_corrupt() -> None:
    data = bytearray(jpeg_bytes(100, 100))
    data[4:40] = b"\x00" * 36
    with pytest.raises(CorruptImage):
        probe(bytes(data), max_pixels=MAX)


def test_png_with_garbage_header_chunk_is_corrupt() -> None:
    ihdr = struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)  # zero width: invalid
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
    chunk += struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    with pytest.raises(CorruptImage):
        probe(b"\x89PNG\r\n\x1a\n" + chunk + iend, max_pixels=MAX)


def test_jpeg_with_trailing_bytes_after_the_end_is_accepted() -> None:
    # Some cameras append a trailer after the end-of-image marker.
    data = jpeg_bytes(100, 80) + b"TRAILER" * 100
    assert probe(data, max_pixels=MAX).width == 100


@given(st.binary(max_size=512))
def test_structure_checks_only_ever_raise_corrupt_image(data: bytes) -> None:
    for mime in ("image/jpeg", "image/png", "image/webp"):
        with contextlib.suppress(CorruptImage):
            check_complete(mime, data)


@given(st.binary(max_size=256))
def test_probe_of_arbitrary_bytes_raises_only_image_errors(data: bytes) -> None:
    for prefix in (b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x10\x00\x00\x00WEBP"):
        with contextlib.suppress(ImageError):
            probe(prefix + data, max_pixels=MAX)


@given(
    st.integers(1, 9999),
    st.integers(1, 12),
    st.integers(1, 28),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
)
def test_exif_datetime_round_trip(y: int, mo: int, d: int, h: int, mi: int, s: int) -> None:
    text = f"{y:04d}:{mo:02d}:{d:02d} {h:02d}:{mi:02d}:{s:02d}"
    assert exif_datetime(text) == f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"


@given(st.text(max_size=40), st.one_of(st.none(), st.text(max_size=10)))
def test_exif_datetime_never_raises(value: str, offset: str | None) -> None:
    result = exif_datetime(value, offset)
    assert result is None or result[4] == "-"


@pytest.mark.parametrize(
    "value", ["0000:00:00 00:00:00", "    :  :     :  :  ", "", "2024:13:01 00:00:00"]
)
def test_blank_exif_datetimes_are_none(value: str) -> None:
    assert exif_datetime(value) is None


@pytest.mark.anyio
async def test_imaging_runs_probes_in_bounded_worker_threads() -> None:
    imaging = Imaging(max_pixels=MAX, cpu_concurrency=1)
    result = await imaging.analyze(png_bytes(30, 20))
    assert (result.probe.width, result.probe.height) == (30, 20)
    assert imaging.limiter.total_tokens == 1
    assert imaging.limiter.borrowed_tokens == 0
