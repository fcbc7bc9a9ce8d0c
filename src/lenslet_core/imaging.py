"""Images, through libvips: what a file is (by content), its displayed size, when it was taken,
and its thumbnail.

The only module that imports pyvips. A probe reads headers only, so a 30,000 × 30,000 PNG is
refused by the ``max_pixels`` setting before any memory is spent on it; a thumbnail is made with
libvips' shrink-on-load (``thumbnail_source``), never a full decode followed by a resize.
Blocking calls run in worker threads through :class:`Imaging`, bounded by one CPU limiter
(libvips releases the GIL, so threads use every core).

libvips reads the bytes where they are (:func:`_source`): pyvips' ``*_buffer`` calls copy
them first, which cost a 12MP JPEG's thumbnail 3% and a 1080p PNG's header load five times
its own work.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import struct
import threading
from collections.abc import Iterable
from typing import Any

import anyio
import anyio.to_thread

from .errors import CorruptImage, ImageTooLarge, UnsupportedImage
from .hashing import hash_bytes
from .jpeg import JpegHeader, read_jpeg
from .png import read_png

__all__ = [
    "UNSUPPORTED_EXTENSIONS",
    "any_unsupported",
    "unsupported_type",
    "Analysis",
    "Imaging",
    "Probe",
    "ThumbSpec",
    "analyze",
    "check_complete",
    "configure_libvips",
    "exif_datetime",
    "probe",
    "sniff_mime",
    "thumbnail",
]

#: libvips loader classes lenslet lets run; every other loader is blocked process-wide.
ALLOWED_LOADERS = ("VipsForeignLoadJpeg", "VipsForeignLoadPng", "VipsForeignLoadWebp")

_configured = False
_configure_lock = threading.Lock()


def configure_libvips() -> Any:
    """Set libvips' process-wide state once: only the JPEG, PNG and WebP loaders may run (an
    SVG, PDF or TIFF renamed ``.jpg`` is refused, never parsed) and no operation cache (each
    image is seen once; caching would only hold memory). Returns the pyvips module."""
    global _configured
    import pyvips

    with _configure_lock:
        if not _configured:
            pyvips.operation_block_set("VipsForeignLoad", True)
            for loader in ALLOWED_LOADERS:
                pyvips.operation_block_set(loader, False)
            pyvips.cache_set_max(0)
            _configured = True
    return pyvips


def limit_libvips_threads(count: int) -> None:
    """Let each libvips operation use at most ``count`` threads of its own (process-wide; by
    default libvips uses as many as there are cores): a process given ``count`` cores, such
    as a cluster worker of ``count`` threads, then uses no more."""
    configure_libvips().concurrency_set(max(1, count))


@dataclasses.dataclass(frozen=True)
class Probe:
    """What a header says: mime type by content, displayed size, EXIF capture time, and
    whether it embeds an ICC colour profile."""

    mime: str
    width: int
    height: int
    created_at: str | None = None
    profile: bool = False


@dataclasses.dataclass(frozen=True)
class ThumbSpec:
    """How thumbnails are made: WebP, long edge at most ``size`` pixels, at ``quality``."""

    size: int = 256
    quality: int = 70


@dataclasses.dataclass(frozen=True)
class Analysis:
    """A probe, the content hash and (when asked for) the thumbnail, from one read of the bytes."""

    probe: Probe
    hash: str
    size: int
    thumbnail: bytes | None = dataclasses.field(default=None, repr=False)


#: Image files lenslet cannot show, by extension (lower case), with their type: counted and
#: reported by index runs and health, never read.
UNSUPPORTED_EXTENSIONS = {
    ".gif": "image/gif",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".avif": "image/avif",
    ".bmp": "image/bmp",
    ".dng": "image/x-adobe-dng",
    ".cr2": "image/x-canon-cr2",
    ".cr3": "image/x-canon-cr3",
    ".nef": "image/x-nikon-nef",
    ".arw": "image/x-sony-arw",
    ".orf": "image/x-olympus-orf",
    ".rw2": "image/x-panasonic-rw2",
    ".raf": "image/x-fuji-raf",
}
_UNSUPPORTED_ENDINGS = tuple(UNSUPPORTED_EXTENSIONS)
#: ISO-BMFF brands (the ``ftyp`` box) of image formats lenslet cannot show.
_BRANDS = {
    b"heic": "image/heic", b"heix": "image/heic", b"heim": "image/heic", b"heis": "image/heic",
    b"mif1": "image/heif", b"msf1": "image/heif", b"avif": "image/avif", b"avis": "image/avif",
    b"crx ": "image/x-canon-cr3",
}  # fmt: skip


def unsupported_type(name: str) -> str | None:
    """The type of an image file lenslet cannot show, by its name's extension."""
    lowered = name.lower()
    if not lowered.endswith(_UNSUPPORTED_ENDINGS):  # one C call: most names are not
        return None
    dot = lowered.rfind(".")
    return UNSUPPORTED_EXTENSIONS.get(lowered[dot:]) if dot > 0 else None


#: One of those extensions ending a name that has more than it, in names joined by "/" (which
#: no name holds).
_UNSUPPORTED_AT_END = re.compile(  # from the dot, so that re scans for dots
    r"\.(?<=[^/]\.)(?:" + "|".join(re.escape(f"{e[1:]}/") for e in UNSUPPORTED_EXTENSIONS) + ")"
)


def any_unsupported(names: Iterable[str]) -> bool:
    """Whether any of ``names`` has the extension of a type lenslet cannot show: one scan of
    the names joined, for a folder's listing, where nearly always none has."""
    return _UNSUPPORTED_AT_END.search("/".join(names).lower() + "/") is not None


def _other_type(data: bytes) -> str | None:
    """What an image that is not JPEG, PNG or WebP is, by its magic bytes (``None``: unknown)."""
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"  # RAW formats that are TIFF inside (DNG, CR2, NEF, ARW) too
    if data[4:8] == b"ftyp":
        return _BRANDS.get(data[8:12])
    if data[:2] == b"BM":
        return "image/bmp"
    return None


#: How a JPEG begins: start of image, and the first marker.
_JPEG_MAGIC = b"\xff\xd8\xff"


def sniff_mime(data: bytes) -> str:
    """The mime type by magic bytes, or :class:`UnsupportedImage` (with what it is, when its
    content tells)."""
    if data[:3] == _JPEG_MAGIC:
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if not data:
        raise UnsupportedImage("empty file")
    other = _other_type(data)
    what = f" but {other}" if other else ""
    raise UnsupportedImage(f"not a JPEG, PNG or WebP image (by content{what})", media_type=other)


def check_complete(mime: str, data: bytes) -> None:
    """Cheap structural checks on bytes already in memory: a truncated file is refused with
    :class:`CorruptImage` before libvips sees it. Never decodes pixels."""
    if mime == "image/jpeg":
        read_jpeg(data)
    elif mime == "image/png":
        read_png(data)
    elif mime == "image/webp":
        size = struct.unpack_from("<I", data, 4)[0] if len(data) >= 12 else 0
        if len(data) < size + 8:
            raise CorruptImage(f"truncated WebP ({len(data)} of {size + 8} bytes)")


_EXIF_TIME = re.compile(r"^\s*(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"^\s*([+-])(\d{2}):(\d{2})")


def exif_datetime(value: str | None, offset: str | None = None) -> str | None:
    """EXIF ``"2024:05:01 10:00:00"`` (+ ``OffsetTimeOriginal``) as ISO 8601, or ``None`` for
    blank or impossible values (cameras write ``"0000:00:00 00:00:00"`` when unset)."""
    if not value:
        return None
    match = _EXIF_TIME.match(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    if year == 0:
        return None
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{min(second, 59):02d}"
    offset_match = _EXIF_OFFSET.match(offset or "")
    if offset_match is not None:
        sign, oh, om = offset_match.groups()
        if int(oh) <= 14 and int(om) < 60:
            text += f"{sign}{oh}:{om}"
    return text


def probe(data: bytes, *, max_pixels: int) -> Probe:
    """Read what the header says about ``data``, refusing unsupported, corrupt and huge images."""
    return _probe(data, max_pixels)[0]


def _probe(data: bytes, max_pixels: int) -> tuple[Probe, Any]:
    """:func:`probe`, and the image libvips opened to read the header (``None`` when it was
    read without libvips), which a PNG's thumbnail is then made from."""
    mime = sniff_mime(data)
    png = mime == "image/png"
    if png and (header := read_png(data)) is not None:
        # Its chunks tell all a probe needs (no EXIF): libvips is not asked.
        _check_pixels(header.width, header.height, max_pixels)
        return Probe(mime, header.width, header.height, None, header.profile), None
    check_complete(mime, data)
    pyvips = configure_libvips()
    try:
        # fail_on goes to the loader, for the pixels of a PNG thumbnailed from this image.
        options = {"fail_on": "error"} if png else {}
        image = pyvips.Image.new_from_source(_source(data), "", access="sequential", **options)
        width, height = image.width, image.height
        orientation = _field(image, "orientation")
        created = _created(image)
        profile = image.get_typeof("icc-profile-data") != 0
    except pyvips.Error as exc:
        raise _corrupt(mime, exc) from exc
    _check_pixels(width, height, max_pixels)
    if isinstance(orientation, int) and 5 <= orientation <= 8:
        width, height = height, width
    return Probe(mime, width, height, created, profile), image if png else None


def _source(data: bytes) -> Any:
    """A libvips source that reads ``data`` where it is, without the copy pyvips makes of a
    buffer. The images opened from it do not keep ``data`` alive: each caller here holds it
    until their last pixel is computed, before it returns."""
    return configure_libvips().Source.new_from_memory(data)


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{width} x {height} is {width * height:,} pixels, above max_pixels {max_pixels:,}",
            width=width,
            height=height,
        )


def _corrupt(mime: str, exc: Exception) -> CorruptImage:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
    return CorruptImage(f"corrupt {mime.split('/')[1].upper()}: {message}")


def _field(image: Any, name: str) -> Any:
    return image.get(name) if image.get_typeof(name) != 0 else None


def _created(image: Any) -> str | None:
    """The capture time the EXIF libvips read into ``image`` gives, as ISO 8601."""
    taken = _field(image, "exif-ifd2-DateTimeOriginal")
    offset = _field(image, "exif-ifd2-OffsetTimeOriginal")
    return exif_datetime(
        taken if isinstance(taken, str) else None, offset if isinstance(offset, str) else None
    )


def thumbnail(data: bytes, *, max_pixels: int, spec: ThumbSpec = ThumbSpec()) -> bytes:
    """A WebP thumbnail of an image's bytes: long edge at most ``spec.size`` (never upscaled),
    EXIF orientation applied, sRGB, alpha kept, no metadata, the first frame of an animation.
    Refuses what :func:`probe` refuses, before any pixel is decoded."""
    header = _jpeg_header(data, max_pixels)
    if header is not None:  # its header gave all a thumbnail needs
        return _thumbnail_image(_jpeg_probe(header), data, spec)[0]
    info, opened = _probe(data, max_pixels)
    return _thumbnail(info, data, spec, opened)


def _jpeg_header(data: bytes, max_pixels: int) -> JpegHeader | None:
    """A JPEG's header read from its segments, its size checked (``None``: not a JPEG, or one
    whose segments do not give its size)."""
    if data[:3] != _JPEG_MAGIC:
        return None
    header = read_jpeg(data)
    if header is not None:
        _check_pixels(header.width, header.height, max_pixels)
    return header


def _jpeg_probe(header: JpegHeader) -> Probe:
    """What a JPEG's segments say, as a probe: its stored size and no capture time."""
    return Probe("image/jpeg", header.width, header.height, None, header.profile)


def _jpeg_analysis(
    data: bytes, header: JpegHeader, spec: ThumbSpec, max_pixels: int
) -> tuple[Probe, bytes]:
    """A JPEG's probe and thumbnail from one libvips load (a probe would load it once more):
    the capture time from the EXIF the thumbnail carries on, and the orientation from the
    thumbnail's shape, which libvips turned as EXIF says (as square as the image is, a
    thumbnail cannot tell: libvips reads the header then)."""
    small, image = _thumbnail_image(_jpeg_probe(header), data, spec)
    width, height = header.width, header.height
    if width != height and image.width == image.height:
        return _probe(data, max_pixels)[0], small
    if width != height and (width > height) != (image.width > image.height):
        width, height = height, width  # EXIF orientation 5 to 8: a quarter turn
    return Probe("image/jpeg", width, height, _created(image), header.profile), small


#: libjpeg's warnings that mean the pixels are damaged (a scan cut short, entropy data that
#: does not decode): libjpeg goes on and paints the rest grey, so they are refused. Its other
#: warnings (extra bytes before a marker, an odd ICC or JFIF segment) are quirks of cameras and
#: editors that decode fine, and are let through.
_JPEG_DAMAGE = (
    "premature end",
    "bad huffman",
    "bad arithmetic",
    "instead of rst",
    "huffman table",
    "invalid sos",
)


def _thumbnail(info: Probe, data: bytes, spec: ThumbSpec, opened: Any = None) -> bytes:
    return _thumbnail_image(info, data, spec, opened)[0]


def _thumbnail_image(
    info: Probe, data: bytes, spec: ThumbSpec, opened: Any = None
) -> tuple[bytes, Any]:
    """The thumbnail's bytes, and the libvips image they were encoded from."""
    pyvips = configure_libvips()
    if info.mime == "image/png":
        try:
            return _make_png_thumbnail(pyvips, info, data, spec, opened)
        except pyvips.Error as exc:
            raise _corrupt(info.mime, exc) from exc
    try:
        # A JPEG is decoded failing on its warnings first: that is where damage shows.
        return _make_thumbnail(pyvips, info, data, spec, "warning" if _is_jpeg(info) else "error")
    except pyvips.Error as exc:
        if not _is_jpeg(info) or any(sign in str(exc).lower() for sign in _JPEG_DAMAGE):
            raise _corrupt(info.mime, exc) from exc
    try:  # only a harmless quirk: decoded again, failing on errors only
        return _make_thumbnail(pyvips, info, data, spec, "error")
    except pyvips.Error as exc:
        raise _corrupt(info.mime, exc) from exc


def _is_jpeg(info: Probe) -> bool:
    return info.mime == "image/jpeg"


def _make_thumbnail(
    pyvips: Any, info: Probe, data: bytes, spec: ThumbSpec, fail_on: str
) -> tuple[bytes, Any]:
    # An embedded ICC profile (a Display P3 phone photo, a CMYK print file) is applied on the
    # way to sRGB; asked of images without one, the same option costs a quarter more time.
    colour = {"output_profile": "srgb"} if info.profile else {}
    # Shrink-on-load: JPEGs decode at 1/2, 1/4 or 1/8 scale, WebP at the target size.
    # fail_on goes to the loader itself: damaged pixel data must fail, not come out black.
    image = pyvips.Image.thumbnail_source(
        _source(data),
        spec.size,
        height=spec.size,
        size="down",
        option_string=f"fail_on={fail_on}",
        **colour,
    )
    return _encode(image, spec), image


def _make_png_thumbnail(
    pyvips: Any, info: Probe, data: bytes, spec: ThumbSpec, opened: Any
) -> tuple[bytes, Any]:
    # A PNG has no shrink-on-load, so the image the probe opened is shrunk as it is (opening it
    # again, as thumbnail_source does, cost a tenth of the time of a 1080p thumbnail).
    if opened is None:
        opened = pyvips.Image.new_from_source(
            _source(data), "", access="sequential", fail_on="error"
        )
    colour = {"output_profile": "srgb"} if info.profile else {}
    image = opened.thumbnail_image(spec.size, height=spec.size, size="down", **colour)
    return _encode(image, spec), image


def _encode(image: Any, spec: ThumbSpec) -> bytes:
    if image.interpretation != "srgb" or image.format != "uchar":
        # 16-bit, grey, or without a profile: what is left is the move to 8-bit sRGB
        # (alpha, if any, is carried along).
        image = image.colourspace("srgb")
        if image.format != "uchar":
            image = image.cast("uchar")
    encoded: bytes = image.webpsave_buffer(Q=spec.quality, keep=0)
    return encoded


def analyze(
    data: bytes,
    *,
    max_pixels: int,
    thumb: ThumbSpec | None = None,
    gate: contextlib.AbstractContextManager[Any] | None = None,
) -> Analysis:
    """Probe and hash one image's bytes, and make its thumbnail when ``thumb`` says how:
    everything indexing needs from one read. The libvips work runs inside ``gate`` (the
    hash before it: see :class:`Imaging`)."""
    digest = hash_bytes(data)
    small: bytes | None = None
    with gate if gate is not None else contextlib.nullcontext():
        header = _jpeg_header(data, max_pixels) if thumb is not None else None
        if thumb is not None and header is not None:
            info, small = _jpeg_analysis(data, header, thumb, max_pixels)
        else:
            info, opened = _probe(data, max_pixels)
            small = _thumbnail(info, data, thumb, opened) if thumb is not None else None
    return Analysis(info, digest, len(data), small)


class Imaging:
    """The CPU seam: image work in worker threads, ``cpu_concurrency`` at a time.

    :attr:`limiter` lets ``spare`` threads more than that in. Each reads its next file and
    hashes it, then waits at a gate that ``cpu_concurrency`` threads pass at once for the
    libvips work. So a thread that finishes an image hands its core to one already waiting,
    with no round trip to the event loop (on busy cores that is late by a scheduling slice),
    and the hash runs in the time libvips leaves a core idle (a PNG decodes on one thread).
    """

    def __init__(
        self,
        *,
        max_pixels: int,
        cpu_concurrency: int,
        thumb: ThumbSpec = ThumbSpec(),
        spare: int = 1,
    ) -> None:
        self.max_pixels = max_pixels
        self.thumb = thumb
        self.limiter = anyio.CapacityLimiter(cpu_concurrency + spare)
        self._cores = threading.BoundedSemaphore(cpu_concurrency)
        # libvips is loaded (and configured) by the first image that needs it, not here: an
        # index run that finds nothing changed never does (loading it is a third of a second).

    def analyze_sync(self, data: bytes) -> Analysis:
        """:func:`analyze` with these settings, for callers already in a worker thread that
        holds :attr:`limiter` (see ``Storage.read_each_into``)."""
        return analyze(data, max_pixels=self.max_pixels, gate=self._cores)

    def analyze_with_thumb_sync(self, data: bytes) -> Analysis:
        """:meth:`analyze_sync`, thumbnail included."""
        return analyze(data, max_pixels=self.max_pixels, thumb=self.thumb, gate=self._cores)

    def thumbnail_sync(self, data: bytes) -> bytes:
        with self._cores:
            return thumbnail(data, max_pixels=self.max_pixels, spec=self.thumb)

    async def analyze(self, data: bytes) -> Analysis:
        return await anyio.to_thread.run_sync(self.analyze_sync, data, limiter=self.limiter)

    async def thumbnail(self, data: bytes) -> bytes:
        return await anyio.to_thread.run_sync(self.thumbnail_sync, data, limiter=self.limiter)
