"""PNG's chunk structure, read without libvips: whether a file is complete, and what its header
says when nothing in it needs libvips to say it.

A PNG is a signature and a chain of chunks (length, type, body, CRC), ``IHDR`` first and
``IEND`` last. A walk over the chunks before the pixels (``IDAT``) reads the size from ``IHDR``
and notes an ICC profile (``iCCP``); a file that ends with ``IEND`` is complete, and any other
is walked to the end to find it. EXIF, which gives a capture time and an
orientation, is libvips' to parse: a PNG that carries it (``eXIf``, or a ``Raw profile type
exif`` text chunk) gets no header from here.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

from .errors import CorruptImage

__all__ = ["PngHeader", "read_png"]

SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: Bit depths each colour type allows (PNG spec, table 11.1).
_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
#: Widths and heights above this are not PNG (the spec's 2^31 - 1).
_LIMIT = 2**31 - 1
#: Text chunks whose keyword says they carry EXIF (ImageMagick's and exiftool's way).
_TEXT = (b"tEXt", b"zTXt", b"iTXt")
_RAW_EXIF = b"raw profile type exif"
#: The last chunk, as every encoder writes it (its CRC is a constant).
_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


@dataclasses.dataclass(frozen=True)
class PngHeader:
    """What a PNG's chunks say: its size and whether it embeds an ICC profile."""

    width: int
    height: int
    profile: bool


def read_png(data: bytes) -> PngHeader | None:
    """Walk the chunks of a PNG's bytes (they start with the signature): raises
    :class:`CorruptImage` when the file is cut short; returns its header, or ``None`` when the
    header is not this module's to read (it carries EXIF, or its ``IHDR`` is not one a
    decoder would take: libvips then says what is wrong)."""
    pos, end = len(SIGNATURE), len(data)
    size: tuple[int, int] | None = None
    exif = profile = pixels = False
    while pos + 8 <= end:
        length, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"IEND" or (kind == b"IDAT" and not pixels and data.endswith(_IEND)):
            # At the end, or at the pixels of a file that ends as it should: what a header
            # says comes before them.
            return None if size is None or exif else PngHeader(*size, profile)
        if pos == len(SIGNATURE):
            size = _ihdr(data, pos, length) if kind == b"IHDR" else None
        elif kind == b"IDAT":
            pixels = True
        elif pixels:
            pass  # what comes after the pixels is not read for the header (libvips neither)
        elif kind == b"iCCP":
            profile = True
        elif kind == b"eXIf" or (
            kind in _TEXT and data[pos + 8 : pos + 8 + len(_RAW_EXIF)].lower() == _RAW_EXIF
        ):
            exif = True
        pos += 12 + length
    raise CorruptImage("truncated PNG (no IEND chunk)")


def _ihdr(data: bytes, pos: int, length: int) -> tuple[int, int] | None:
    """The size in the header chunk at ``pos``, if it is one a decoder takes (its CRC
    included)."""
    if length != 13 or pos + 25 > len(data):
        return None
    body = data[pos + 4 : pos + 21]  # type and fields: what the CRC covers
    (crc,) = struct.unpack_from(">I", data, pos + 21)
    if zlib.crc32(body) != crc:
        return None
    width, height, depth, colour, compression, filtering, interlace = struct.unpack_from(
        ">IIBBBBB", body, 4
    )
    if not (0 < width <= _LIMIT and 0 < height <= _LIMIT):
        return None
    if depth not in _DEPTHS.get(colour, ()) or compression or filtering or interlace > 1:
        return None
    return width, height
