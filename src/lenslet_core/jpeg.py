"""JPEG's marker segments, read without libvips: whether a file is complete, and its size and
ICC profile as its header gives them.

A JPEG is a start-of-image marker, marker segments (``FF``, a marker byte, a two-byte length
that counts itself, a body), a scan of entropy-coded data and an end-of-image marker
(``FFD9``). One walk over the segments up to the first scan (``SOS``) finds the frame header
(``SOF``: precision, height, width) and the ``APP2`` segments that carry an ICC profile; scan
data stuffs every ``FF`` byte, so an ``FFD9`` after the scan can only be the real end. EXIF,
which gives the capture time and the orientation, is libvips' to parse.
"""

from __future__ import annotations

import dataclasses

from .errors import CorruptImage

__all__ = ["JpegHeader", "read_jpeg"]

#: Stray bytes between two segments that are skipped as libjpeg skips them; more than this is
#: not a quirk but a file that is not a JPEG past its first bytes.
MAX_SLACK = 1024
#: The frame headers: SOF0-SOF15 but DHT (C4), JPG (C8) and DAC (CC), which share the range.
_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: How an APP2 segment that carries (a part of) an ICC profile begins.
_ICC = b"ICC_PROFILE\x00"


@dataclasses.dataclass(frozen=True)
class JpegHeader:
    """What a JPEG's segments say: its stored size (before any EXIF orientation) and whether
    it embeds an ICC profile."""

    width: int
    height: int
    profile: bool


def read_jpeg(data: bytes) -> JpegHeader | None:
    """Walk the segments of a JPEG's bytes (they start with ``FFD8``): raises
    :class:`CorruptImage` when the file is cut short or its segments make no sense; returns its
    header, or ``None`` when the segments before the scan hold no frame header with a size
    (libvips then reads the file itself)."""
    pos, end = 2, len(data)
    size: tuple[int, int] | None = None
    profile = False
    while True:
        if pos + 4 > end:
            raise CorruptImage("truncated JPEG (ends inside its headers)")
        if data[pos] != 0xFF:
            # Extra bytes before a marker: a quirk of some cameras that libjpeg skips too.
            following = data.find(b"\xff", pos, pos + MAX_SLACK)
            if following == -1:
                raise CorruptImage(f"corrupt JPEG (no marker at byte {pos})")
            pos = following
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill bytes before a marker
            pos += 1
            continue
        if marker == 0xD9:
            raise CorruptImage("corrupt JPEG (ends before any image data)")
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a segment
            pos += 2
            continue
        length = (data[pos + 2] << 8) | data[pos + 3]
        if length < 2:
            raise CorruptImage(f"corrupt JPEG (bad segment length at byte {pos})")
        if marker == 0xDA:
            break
        if marker in _FRAMES and size is None and length >= 8 and pos + 9 <= end:
            height = (data[pos + 5] << 8) | data[pos + 6]
            width = (data[pos + 7] << 8) | data[pos + 8]
            size = (width, height)
        elif marker == 0xE2 and data.startswith(_ICC, pos + 4):
            profile = True
        pos += 2 + length
    # Searched from the end: the marker is normally within the last few bytes, and a forward
    # search crawls through the scan data's many stuffed 0xFF bytes.
    if data.rfind(b"\xff\xd9", pos + 2 + length) == -1:
        raise CorruptImage("truncated JPEG (no end-of-image marker)")
    if size is None or 0 in size:  # no frame, or a height given later (a DNL segment)
        return None
    return JpegHeader(size[0], size[1], profile)
