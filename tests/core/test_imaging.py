from __future__ import annotations

import contextlib
import struct
import threading
import zlib
from collections.abc import Callable

import anyio
import anyio.to_thread
import pytest
import pyvips
from hypothesis import given, settings
from hypothesis import strategies as st

from lenslet_core.errors import CorruptImage, ImageError, ImageTooLarge, UnsupportedImage
from lenslet_core.hashing import hash_bytes
from lenslet_core.imaging import (
    UNSUPPORTED_EXTENSIONS,
    Analysis,
    Imaging,
    ThumbSpec,
    _thumbnail,
    analyze,
    any_unsupported,
    check_complete,
    exif_datetime,
    probe,
    sniff_mime,
    thumbnail,
    unsupported_type,
)
from tests.imagegen import (
    FRAME_COLOURS,
    animated_webp_bytes,
    cmyk_jpeg_bytes,
    grey_alpha_png_bytes,
    jpeg_bytes,
    picture,
    png16_bytes,
    png_bytes,
    webp_bytes,
    with_exif,
)

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
    assert imaging.limiter.total_tokens == 2  # one spare thread waits at the gate
    assert imaging.limiter.borrowed_tokens == 0


class _Counting:
    """A gate that counts how many threads are inside it at once."""

    def __init__(self, gate: threading.BoundedSemaphore) -> None:
        self.gate, self.inside, self.most, self.lock = gate, 0, 0, threading.Lock()

    def __enter__(self) -> None:
        self.gate.acquire()
        with self.lock:
            self.inside += 1
            self.most = max(self.most, self.inside)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.inside -= 1
        self.gate.release()


@pytest.mark.anyio
async def test_spare_threads_wait_at_the_gate_for_the_libvips_work() -> None:
    imaging = Imaging(max_pixels=MAX, cpu_concurrency=2, spare=2)
    counting = _Counting(imaging._cores)
    imaging._cores = counting  # type: ignore[assignment]
    images = [jpeg_bytes(400, 300, seed=n) for n in range(12)]
    results: list[Analysis] = []

    async def one(data: bytes) -> None:
        work = imaging.analyze_with_thumb_sync
        results.append(await anyio.to_thread.run_sync(work, data, limiter=imaging.limiter))

    async with anyio.create_task_group() as tg:
        for data in images:
            tg.start_soon(one, data)
    assert sorted(r.hash for r in results) == sorted(hash_bytes(d) for d in images)
    assert all(r.thumbnail is not None for r in results)
    assert 1 <= counting.most <= 2
    assert counting.inside == 0


# -- thumbnails --------------------------------------------------------------------------------

ALL_FORMATS = [
    pytest.param(jpeg_bytes, id="jpeg"),
    pytest.param(png_bytes, id="png"),
    pytest.param(webp_bytes, id="webp"),
    pytest.param(cmyk_jpeg_bytes, id="cmyk-jpeg"),
    pytest.param(png16_bytes, id="png16"),
    pytest.param(grey_alpha_png_bytes, id="grey-alpha-png"),
    pytest.param(animated_webp_bytes, id="animated-webp"),
]


def load(data: bytes) -> pyvips.Image:
    """A thumbnail as libvips reads it back (every page of it, were there several)."""
    assert (data[:4], data[8:12]) == (b"RIFF", b"WEBP"), "a thumbnail is a WebP"
    return pyvips.Image.new_from_buffer(data, "", n=-1)


def band_means(image: pyvips.Image) -> list[float]:
    return [image[band].avg() for band in range(image.bands)]


@pytest.mark.parametrize("make", ALL_FORMATS)
def test_thumbnail_of_a_large_image_is_an_srgb_webp_with_a_256_long_edge(
    make: Callable[[int, int], bytes],
) -> None:
    thumb = load(thumbnail(make(600, 400), max_pixels=MAX))
    assert (thumb.width, thumb.height) == (256, 171)
    assert thumb.interpretation == "srgb"
    assert thumb.format == "uchar"
    assert thumb.bands in (3, 4)


@pytest.mark.parametrize("make", ALL_FORMATS)
def test_thumbnail_of_a_small_image_is_never_upscaled(make: Callable[[int, int], bytes]) -> None:
    thumb = load(thumbnail(make(100, 60), max_pixels=MAX))
    assert (thumb.width, thumb.height) == (100, 60)


def test_thumbnail_of_a_portrait_image_is_256_high() -> None:
    thumb = load(thumbnail(png_bytes(300, 900), max_pixels=MAX))
    assert (thumb.width, thumb.height) == (85, 256)


def test_thumbnail_at_exactly_the_size_is_kept_as_it_is() -> None:
    thumb = load(thumbnail(jpeg_bytes(256, 100), max_pixels=MAX))
    assert (thumb.width, thumb.height) == (256, 100)


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_thumbnail_applies_a_rotating_exif_orientation(orientation: int) -> None:
    thumb = load(thumbnail(jpeg_bytes(600, 400, orientation=orientation), max_pixels=MAX))
    assert (thumb.width, thumb.height) == (171, 256)


def test_thumbnail_orientation_turns_the_pixels_not_only_the_size() -> None:
    # Left half black, right half white; orientation 6 (rotate 90° clockwise to display) puts
    # the left half on top.
    half = pyvips.Image.black(200, 100).insert(pyvips.Image.black(100, 100) + 255, 100, 0)
    image = with_exif(half.cast("uchar").bandjoin([half, half]).copy(interpretation="srgb"))
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    thumb = load(thumbnail(image.jpegsave_buffer(Q=95), max_pixels=MAX))
    assert (thumb.width, thumb.height) == (100, 200)
    assert thumb.crop(0, 0, 100, 90).avg() < 20
    assert thumb.crop(0, 110, 100, 90).avg() > 235


@pytest.mark.parametrize("exif", [True, False], ids=["libvips-header", "chunk-header"])
def test_png_thumbnail_orientation_turns_the_pixels(exif: bool) -> None:
    # A PNG is shrunk from the image its probe opened (libvips' header, for a PNG with EXIF)
    # or opened once for the thumbnail (a header read from its chunks).
    half = pyvips.Image.black(200, 100).insert(pyvips.Image.black(100, 100) + 255, 100, 0)
    image = with_exif(half.cast("uchar").bandjoin([half, half]).copy(interpretation="srgb"))
    if exif:
        image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    thumb = load(thumbnail(image.pngsave_buffer(keep="all" if exif else "none"), max_pixels=MAX))
    if not exif:
        assert (thumb.width, thumb.height) == (200, 100)
        assert thumb.crop(0, 0, 90, 100).avg() < 20
        return
    assert (thumb.width, thumb.height) == (100, 200)
    assert thumb.crop(0, 0, 100, 90).avg() < 20
    assert thumb.crop(0, 110, 100, 90).avg() > 235


@pytest.mark.parametrize("make", ALL_FORMATS)
def test_thumbnail_uses_a_given_size_and_quality(make: Callable[[int, int], bytes]) -> None:
    data = make(600, 400)
    small = thumbnail(data, max_pixels=MAX, spec=ThumbSpec(size=64, quality=20))
    large = thumbnail(data, max_pixels=MAX, spec=ThumbSpec(size=64, quality=95))
    assert (load(small).width, load(small).height) == (64, 43)
    if make is not animated_webp_bytes:  # solid colours compress to a few bytes at any quality
        assert len(small) < len(large)


@pytest.mark.parametrize("profile", [True, False], ids=["with-profile", "no-profile"])
def test_cmyk_jpeg_thumbnail_is_three_band_srgb(profile: bool) -> None:
    data = cmyk_jpeg_bytes(300, 200, profile=profile)
    assert pyvips.Image.new_from_buffer(data, "").interpretation == "cmyk"
    thumb = load(thumbnail(data, max_pixels=MAX))
    assert (thumb.bands, thumb.interpretation, thumb.format) == (3, "srgb", "uchar")
    reference = load(thumbnail(png_bytes(300, 200), max_pixels=MAX))
    # The same picture through CMYK and back: colours close to the original, not inverted.
    for got, want in zip(band_means(thumb), band_means(reference), strict=True):
        assert abs(got - want) < 25


def test_sixteen_bit_png_thumbnail_is_eight_bit_with_the_same_colours() -> None:
    data = png16_bytes(300, 200, seed=4)
    source = pyvips.Image.new_from_buffer(data, "")
    assert (source.format, source.interpretation) == ("ushort", "rgb16")
    thumb = load(thumbnail(data, max_pixels=MAX))
    assert (thumb.bands, thumb.interpretation, thumb.format) == (3, "srgb", "uchar")
    reference = load(thumbnail(png_bytes(300, 200, seed=4), max_pixels=MAX))
    # Scaled down by 257, not clipped at 255 (which would make a white picture).
    for got, want in zip(band_means(thumb), band_means(reference), strict=True):
        assert abs(got - want) < 3
    assert thumb.min() < 100


def test_grey_alpha_png_thumbnail_keeps_its_alpha() -> None:
    data = grey_alpha_png_bytes(400, 200)
    thumb = load(thumbnail(data, max_pixels=MAX))
    assert (thumb.bands, thumb.interpretation, thumb.format) == (4, "srgb", "uchar")
    alpha = thumb[3]
    # The alpha ramp runs from transparent on the left to opaque on the right.
    assert alpha.crop(0, 0, 8, thumb.height).avg() < 16
    assert alpha.crop(thumb.width - 8, 0, 8, thumb.height).avg() > 240
    # Grey stays grey: the three colour bands agree.
    r, g, b = band_means(thumb)[:3]
    assert [g, b] == pytest.approx([r, r], abs=2)


def test_rgba_png_thumbnail_keeps_its_alpha() -> None:
    thumb = load(thumbnail(png_bytes(300, 200, alpha=True), max_pixels=MAX))
    assert thumb.bands == 4
    assert abs(thumb[3].avg() - 200) < 3


def test_animated_webp_thumbnail_is_its_first_frame() -> None:
    data = animated_webp_bytes(300, 200)
    assert pyvips.Image.new_from_buffer(data, "").get("n-pages") == 3
    thumb = load(thumbnail(data, max_pixels=MAX))
    assert (thumb.width, thumb.height) == (256, 171)  # one frame, not the strip of three
    assert thumb.get_typeof("n-pages") == 0 or thumb.get("n-pages") == 1
    assert thumb.get_typeof("page-height") == 0 or thumb.get("page-height") == thumb.height
    assert band_means(thumb) == pytest.approx(list(FRAME_COLOURS[0]), abs=8)


@pytest.mark.parametrize("make", ALL_FORMATS)
def test_thumbnail_carries_no_metadata(make: Callable[[int, int], bytes]) -> None:
    thumb = load(thumbnail(make(300, 200), max_pixels=MAX))
    assert not {"exif-data", "icc-profile-data", "xmp-data", "iptc-data"} & set(thumb.get_fields())


def test_thumbnail_strips_metadata_a_camera_wrote() -> None:
    image = with_exif(picture(300, 200), orientation=6, taken="2024:05:01 10:00:00")
    image.set_type(pyvips.GValue.blob_type, "xmp-data", b"<x:xmpmeta>secret place</x:xmpmeta>")
    data = image.icc_transform("srgb", embedded=False).jpegsave_buffer(Q=80, keep="all")
    assert pyvips.Image.new_from_buffer(data, "").get_typeof("exif-data") != 0
    encoded = thumbnail(data, max_pixels=MAX)
    assert not {"exif-data", "icc-profile-data", "xmp-data"} & set(load(encoded).get_fields())
    assert b"secret place" not in encoded
    assert b"2024:05:01" not in encoded


@pytest.mark.parametrize("make", [jpeg_bytes, png_bytes, webp_bytes, png16_bytes])
@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_thumbnail_of_a_truncated_image_is_corrupt(
    make: Callable[[int, int], bytes], keep: float
) -> None:
    data = make(200, 150)
    with pytest.raises(CorruptImage):
        thumbnail(data[: int(len(data) * keep)], max_pixels=MAX)


def test_thumbnail_of_a_jpeg_with_garbage_inside_is_corrupt() -> None:
    data = bytearray(jpeg_bytes(100, 100))
    data[4:40] = b"\x00" * 36
    with pytest.raises(CorruptImage):
        thumbnail(bytes(data), max_pixels=MAX)


def _scan_start(data: bytes) -> int:
    """Where a JPEG's entropy-coded data begins (after its first SOS header)."""
    sos = data.index(b"\xff\xda")
    return sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")


def _damaged_jpegs() -> dict[str, bytes]:
    data = jpeg_bytes(800, 600, seed=1)
    start = _scan_start(data)
    middle = start + (len(data) - start) // 2
    return {
        # The scan cut short, but the file still ends as a JPEG should (EOI): libjpeg would
        # paint the rest grey.
        "truncated scan": data[:middle] + b"\xff\xd9",
        # A marker where entropy data should be.
        "marker in the scan": data[:middle] + b"\xff\xc4" + data[middle + 2 :],
    }


def _quirky_jpegs() -> dict[str, bytes]:
    data = jpeg_bytes(800, 600, seed=1, taken="0000:00:00 00:00:00")
    table = data.index(b"\xff\xdb")
    junk_exif = b"\xff\xe1" + (18).to_bytes(2, "big") + b"Exif\x00\x00" + b"\x00\x01garbage!"
    return {
        # Bytes before a marker: libjpeg warns, cameras write it, the pixels are fine.
        "extra bytes before a marker": data[:table] + b"\x00\x00\x00" + data[table:],
        "an EXIF segment that is garbage": data[:2] + junk_exif + data[2:],
        "bytes after the end": data + b"\x00" * 64,
    }


@pytest.mark.parametrize("name", list(_damaged_jpegs()))
def test_a_jpeg_with_damaged_entropy_data_is_corrupt(name: str) -> None:
    data = _damaged_jpegs()[name]
    probe(data, max_pixels=MAX)  # the header alone looks fine ...
    with pytest.raises(CorruptImage):  # ... the pixels do not
        thumbnail(data, max_pixels=MAX)


@pytest.mark.parametrize("name", list(_quirky_jpegs()))
def test_a_camera_jpeg_with_harmless_quirks_still_makes_a_thumbnail(name: str) -> None:
    made = load(thumbnail(_quirky_jpegs()[name], max_pixels=MAX))
    assert (made.width, made.height) == (256, 192)


def test_thumbnail_of_a_png_with_damaged_pixel_data_is_corrupt() -> None:
    # Complete in structure (IEND is there) but the compressed pixel data is garbage.
    data = bytearray(png_bytes(200, 150))
    start = data.index(b"IDAT") + 4
    data[start + 10 : start + 400] = bytes(range(256)) + bytes(range(134))
    with pytest.raises(CorruptImage):
        thumbnail(bytes(data), max_pixels=MAX)


def test_thumbnail_of_text_is_unsupported() -> None:
    with pytest.raises(UnsupportedImage):
        thumbnail(b"not an image at all\n", max_pixels=MAX)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_thumbnail_refuses_a_pixel_bomb_before_decoding() -> None:
    # A 30,000 x 30,000 header over pixel data that could never decode: refused as too large
    # (not as corrupt) shows the header alone decided.
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
    bomb = b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", b"junk") + png_chunk(b"IEND", b"")
    with pytest.raises(ImageTooLarge, match="900,000,000 pixels"):
        thumbnail(bomb, max_pixels=100_000_000)


def test_thumbnail_refuses_a_png_just_above_max_pixels() -> None:
    with pytest.raises(ImageTooLarge):
        thumbnail(png_bytes(101, 100), max_pixels=10_000)
    assert load(thumbnail(png_bytes(100, 100), max_pixels=10_000)).width == 100


def test_analyze_with_a_spec_makes_the_thumbnail_in_the_same_call() -> None:
    data = jpeg_bytes(600, 400)
    result = analyze(data, max_pixels=MAX, thumb=ThumbSpec())
    assert result.hash == hash_bytes(data)
    assert (result.probe.width, result.probe.height) == (600, 400)
    assert result.thumbnail is not None
    assert load(result.thumbnail).width == 256
    assert analyze(data, max_pixels=MAX).thumbnail is None


_SIZES = st.integers(1, 600)
#: Widths and heights as square as a thumbnail of at most 256 pixels cannot tell apart.
_NEAR_SQUARE = st.integers(300, 600).flatmap(
    lambda side: st.tuples(st.just(side), st.integers(side - 2, side + 2))
)


@settings(max_examples=30, deadline=None)
@given(
    st.one_of(st.tuples(_SIZES, _SIZES), _NEAR_SQUARE),
    st.sampled_from([None, 1, 2, 3, 4, 5, 6, 7, 8]),
    st.sampled_from([None, "2021:07:04 18:30:00", "0000:00:00 00:00:00"]),
    st.sampled_from([None, "+02:00"]),
    st.booleans(),
)
def test_a_jpeg_analyzed_with_its_thumbnail_has_the_probe_and_thumbnail_libvips_gives(
    size: tuple[int, int], orientation: int | None, taken: str | None, offset: str | None,
    icc: bool,
) -> None:  # fmt: skip
    # A JPEG's probe then comes from its segments and from the thumbnail's load (its EXIF,
    # and its shape for the orientation), not from a libvips header of its own.
    image = with_exif(picture(*size), orientation=orientation, taken=taken, offset=offset)
    data = image.jpegsave_buffer(Q=75, **({"profile": "srgb"} if icc else {}))
    result = analyze(data, max_pixels=MAX, thumb=ThumbSpec())
    by_header = probe(data, max_pixels=MAX)
    assert result.probe == by_header
    assert (
        result.thumbnail
        == _thumbnail(by_header, data, ThumbSpec())
        == thumbnail(data, max_pixels=MAX)
    )
    assert max(load(result.thumbnail).width, load(result.thumbnail).height) <= 256


@pytest.mark.parametrize("orientation", [1, 6])
def test_a_jpeg_as_square_as_its_thumbnail_gets_its_orientation_from_libvips(
    orientation: int,
) -> None:
    data = with_exif(picture(600, 599), orientation=orientation).jpegsave_buffer(Q=75)
    result = analyze(data, max_pixels=MAX, thumb=ThumbSpec())
    assert load(result.thumbnail or b"").width == load(result.thumbnail or b"").height == 256
    expected = (599, 600) if orientation == 6 else (600, 599)
    assert (result.probe.width, result.probe.height) == expected


def test_a_jpeg_above_max_pixels_is_refused_by_its_segments_with_or_without_a_thumbnail() -> None:
    data = jpeg_bytes(101, 100)
    for thumb in (ThumbSpec(), None):
        with pytest.raises(ImageTooLarge):
            analyze(data, max_pixels=10_000, thumb=thumb)
    with pytest.raises(ImageTooLarge):
        thumbnail(data, max_pixels=10_000)


def test_imaging_thumbnails_with_its_own_settings() -> None:
    imaging = Imaging(max_pixels=MAX, cpu_concurrency=1, thumb=ThumbSpec(size=32, quality=50))
    thumb = load(imaging.thumbnail_sync(png_bytes(320, 160)))
    assert (thumb.width, thumb.height) == (32, 16)
    analysed = imaging.analyze_with_thumb_sync(png_bytes(320, 160))
    assert analysed.thumbnail is not None
    assert load(analysed.thumbnail).width == 32
    assert imaging.analyze_sync(png_bytes(320, 160)).thumbnail is None
    with pytest.raises(ImageTooLarge):
        Imaging(max_pixels=100, cpu_concurrency=1).thumbnail_sync(png_bytes(20, 20))


@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 700),
    st.integers(1, 700),
    st.sampled_from([jpeg_bytes, png_bytes, webp_bytes]),
)
def test_thumbnail_fits_in_the_box_keeps_the_aspect_and_never_upscales(
    width: int, height: int, make: Callable[[int, int], bytes]
) -> None:
    thumb = load(thumbnail(make(width, height), max_pixels=MAX))
    long_edge = max(width, height)
    assert max(thumb.width, thumb.height) <= 256
    assert thumb.width <= width
    assert thumb.height <= height
    if long_edge <= 256:
        assert (thumb.width, thumb.height) == (width, height)
    else:
        assert max(thumb.width, thumb.height) == 256
        scale = 256 / long_edge
        assert abs(thumb.width - width * scale) <= 1
        assert abs(thumb.height - height * scale) <= 1


def grey16_alpha_png(width: int, height: int) -> bytes:
    grey = (picture(width, height, bands=1).cast("float") * 257).cast("ushort")
    alpha = (grey * 0 + 40000).cast("ushort")
    image = grey.bandjoin(alpha).copy(interpretation="grey16")
    data: bytes = image.pngsave_buffer(bitdepth=16)
    return data


def rgba16_png(width: int, height: int) -> bytes:
    image = (picture(width, height, bands=4).cast("float") * 257).cast("ushort")
    data: bytes = image.copy(interpretation="rgb16").pngsave_buffer(bitdepth=16)
    return data


@pytest.mark.parametrize(
    ("data", "bands", "alpha"),
    [
        pytest.param(grey16_alpha_png(300, 200), 4, 155, id="grey16-alpha-png"),
        pytest.param(rgba16_png(300, 200), 4, 200, id="rgba16-png"),
        pytest.param(picture(300, 200, bands=1).jpegsave_buffer(), 3, None, id="grey-jpeg"),
        pytest.param(picture(300, 200).pngsave_buffer(palette=True), 3, None, id="palette-png"),
        pytest.param(
            (picture(300, 200, bands=1) > 128).pngsave_buffer(bitdepth=1), 3, None, id="1-bit-png"
        ),
        pytest.param(picture(300, 200, bands=4).webpsave_buffer(), 4, 200, id="rgba-webp"),
        pytest.param(picture(300, 200).webpsave_buffer(lossless=True), 3, None, id="lossless"),
    ],
)
def test_thumbnails_of_other_pixel_formats_are_8_bit_srgb(
    data: bytes, bands: int, alpha: int | None
) -> None:
    thumb = load(thumbnail(data, max_pixels=MAX))
    assert (thumb.width, thumb.height) == (256, 171)
    assert (thumb.bands, thumb.interpretation, thumb.format) == (bands, "srgb", "uchar")
    colours = band_means(thumb)[:3]
    assert all(40 < c < 200 for c in colours[:2]), colours  # not black, not white
    if alpha is not None:
        assert abs(thumb[3].avg() - alpha) < 2


def wide_gamut(encode: str) -> bytes:
    """A saturated red (220, 30, 30 in sRGB) stored as Display P3 numbers with the P3 profile
    embedded, as phones save photos."""
    red = pyvips.Image.black(300, 200).new_from_image([220, 30, 30]).cast("uchar")
    p3 = red.copy(interpretation="srgb").icc_transform("p3")
    data: bytes = getattr(p3, f"{encode}save_buffer")(keep="icc")
    return data


@pytest.mark.parametrize("encode", ["jpeg", "png", "webp"])
def test_a_wide_gamut_image_is_converted_to_srgb(encode: str) -> None:
    data = wide_gamut(encode)
    source = pyvips.Image.new_from_buffer(data, "")
    assert source.get_typeof("icc-profile-data") != 0
    assert abs(source[0].avg() - 220) > 10  # the stored numbers are not sRGB's
    thumb = load(thumbnail(data, max_pixels=MAX))
    assert "icc-profile-data" not in thumb.get_fields()
    # Without a profile, viewers take the numbers as sRGB: they must be sRGB's numbers.
    assert band_means(thumb) == pytest.approx([220, 30, 30], abs=6)


@settings(max_examples=20, deadline=None)
@given(
    st.sampled_from(["jpeg", "png", "webp"]),
    st.tuples(st.integers(1, 700), st.integers(1, 700)),
    st.sampled_from([None, 1, 6]),
    st.booleans(),
)
def test_images_read_in_place_come_out_as_from_a_copy_of_their_bytes(
    encoding: str, size: tuple[int, int], orientation: int | None, icc: bool
) -> None:
    # libvips reads the bytes where they are (a memory source); pyvips' buffer calls, which
    # copy them first, give the same probe and the same thumbnail.
    image = with_exif(picture(*size), orientation=orientation)
    profile = {"profile": "srgb"} if icc and encoding != "png" else {}
    data = image.write_to_buffer(f".{encoding}", **profile)
    copied = pyvips.Image.new_from_buffer(data, "")
    turned = bool(copied.get_typeof("orientation")) and copied.get("orientation") in (5, 6, 7, 8)
    shown = (copied.height, copied.width) if turned else (copied.width, copied.height)
    colour = {"output_profile": "srgb"} if profile else {}
    made = pyvips.Image.thumbnail_buffer(
        data, 256, height=256, size="down", option_string="fail_on=error", **colour
    ).webpsave_buffer(Q=70, keep=0)
    result = analyze(data, max_pixels=MAX, thumb=ThumbSpec())
    assert (result.probe.width, result.probe.height) == shown
    assert result.thumbnail == made == thumbnail(data, max_pixels=MAX)
    assert analyze(data, max_pixels=MAX).probe == result.probe


_NAME_PARTS = st.sampled_from(
    ["IMG_0001", "a.b", ".hidden", "x", "ünï", "", ".", "/"[:0]]
    + [e.upper() for e in UNSUPPORTED_EXTENSIONS]
    + list(UNSUPPORTED_EXTENSIONS)
    + [".jpg", ".png", ".json", ".thumbnail", ".heic.jpg", ".jpg.heic", "heic", ".tiffany"]
)


@given(st.lists(st.lists(_NAME_PARTS, min_size=1, max_size=4).map("".join), max_size=8))
def test_any_unsupported_is_whether_some_name_has_an_unsupported_type(names: list[str]) -> None:
    names = [name for name in names if name]
    assert any_unsupported(names) == any(unsupported_type(name) for name in names)
