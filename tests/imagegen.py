"""Real images for tests and benchmarks, made with pyvips (no binary fixtures in the repo)."""

from __future__ import annotations

import random
from pathlib import Path

import pyvips


def picture(width: int, height: int, *, seed: int = 0, bands: int = 3) -> pyvips.Image:
    """A photo-like image: a colour gradient with noise, so encoders do real work."""
    rng = random.Random(seed)
    base = pyvips.Image.xyz(width, height)
    x = base[0] * (255.0 / max(width, 1))
    y = base[1] * (255.0 / max(height, 1))
    noise = pyvips.Image.gaussnoise(width, height, sigma=24, mean=0)
    r = (x * rng.uniform(0.3, 1.0) + noise).cast("uchar")
    g = (y * rng.uniform(0.3, 1.0) + noise).cast("uchar")
    b = ((x + y) * rng.uniform(0.1, 0.5) + noise).cast("uchar")
    image = r.bandjoin([g, b][: bands - 1]) if bands > 1 else r
    if bands == 4:
        image = r.bandjoin([g, b, (x * 0 + 200).cast("uchar")])
    interpretation = "b-w" if bands == 1 else "srgb"
    return image.copy(interpretation=interpretation)


def with_exif(
    image: pyvips.Image,
    *,
    orientation: int | None = None,
    taken: str | None = None,
    offset: str | None = None,
) -> pyvips.Image:
    image = image.copy()
    if orientation is not None:
        image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    if taken is not None:
        image.set_type(pyvips.GValue.gstr_type, "exif-ifd2-DateTimeOriginal", taken)
    if offset is not None:
        image.set_type(pyvips.GValue.gstr_type, "exif-ifd2-OffsetTimeOriginal", offset)
    return image


def jpeg_bytes(width: int = 64, height: int = 48, *, seed: int = 0, **exif: object) -> bytes:
    image = with_exif(picture(width, height, seed=seed), **exif)  # type: ignore[arg-type]
    data: bytes = image.jpegsave_buffer(Q=80)
    return data


def png_bytes(width: int = 64, height: int = 48, *, seed: int = 0, alpha: bool = False) -> bytes:
    data: bytes = picture(width, height, seed=seed, bands=4 if alpha else 3).pngsave_buffer()
    return data


def webp_bytes(width: int = 64, height: int = 48, *, seed: int = 0) -> bytes:
    data: bytes = picture(width, height, seed=seed).webpsave_buffer(Q=75)
    return data


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_tree(root: Path, *, folders: int = 3, per_folder: int = 4, size: int = 48) -> list[str]:
    """A nested tree of JPEG, PNG and WebP images; returns their logical paths."""
    makers = (jpeg_bytes, png_bytes, webp_bytes)
    suffixes = (".jpg", ".png", ".webp")
    made = []
    for f in range(folders):
        folder = f"album{f}" if f % 2 == 0 else f"album{f - 1}/nested{f}"
        for i in range(per_folder):
            kind = (f + i) % 3
            name = f"{folder}/img{i:03d}{suffixes[kind]}"
            write(root / name, makers[kind](size + i, size, seed=f * 1000 + i))
            made.append(name)
    return made


def cmyk_jpeg_bytes(
    width: int = 64, height: int = 48, *, seed: int = 0, profile: bool = True
) -> bytes:
    """A CMYK JPEG (as print workflows make them), with its CMYK ICC profile unless
    ``profile`` is off."""
    cmyk = picture(width, height, seed=seed).icc_transform("cmyk")
    data: bytes = cmyk.jpegsave_buffer(Q=80, keep="icc" if profile else "none")
    return data


def png16_bytes(width: int = 64, height: int = 48, *, seed: int = 0) -> bytes:
    """A truly 16-bit RGB PNG: the 8-bit picture scaled to the full 16-bit range (255 -> 65535)."""
    wide = (picture(width, height, seed=seed) * 257).cast("ushort")
    data: bytes = wide.copy(interpretation="rgb16").pngsave_buffer(bitdepth=16)
    return data


def grey_alpha_png_bytes(width: int = 64, height: int = 48, *, seed: int = 0) -> bytes:
    """A greyscale PNG with an alpha band (two bands), the alpha a left-to-right ramp."""
    grey = picture(width, height, seed=seed, bands=1)
    ramp = (pyvips.Image.xyz(width, height)[0] * (255.0 / max(width, 1))).cast("uchar")
    data: bytes = grey.bandjoin(ramp).copy(interpretation="b-w").pngsave_buffer()
    return data


#: The solid colours of :func:`animated_webp_bytes`' frames, in order.
FRAME_COLOURS = ((220, 30, 30), (30, 220, 30), (30, 30, 220))


def animated_webp_bytes(width: int = 64, height: int = 48) -> bytes:
    """An animated WebP of three ``width`` x ``height`` frames, each a solid colour from
    :data:`FRAME_COLOURS` (red, green, blue), stacked as one tall image cut by page-height."""
    frames = [pyvips.Image.black(width, height).new_from_image(list(c)) for c in FRAME_COLOURS]
    strip = pyvips.Image.arrayjoin(frames, across=1).cast("uchar").copy(interpretation="srgb")
    strip.set_type(pyvips.GValue.gint_type, "page-height", height)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [100] * len(frames))
    strip.set_type(pyvips.GValue.gint_type, "loop", 0)
    data: bytes = strip.webpsave_buffer(Q=90)
    return data
