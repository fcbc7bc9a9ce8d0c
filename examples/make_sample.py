"""Regenerate examples/sample: a small gallery of images lenslet makes itself (pyvips).

python examples/make_sample.py
"""

from __future__ import annotations

from pathlib import Path

import pyvips

HERE = Path(__file__).parent / "sample"

SCENES = {
    "trips/2025/coast": [("dawn.jpg", 640, 427), ("cliffs.jpg", 427, 640), ("tide.webp", 600, 400)],
    "trips/2025/mountains": [("ridge.jpg", 640, 360), ("lake.png", 320, 240)],
    "trips/2024": [("market.jpg", 480, 480), ("lantern.webp", 400, 300)],
    "family": [("garden.png", 360, 240), ("kitchen.jpg", 512, 384)],
}


def scene(width: int, height: int, seed: int) -> pyvips.Image:
    """A soft two-colour gradient with grain: small to store, real work to decode."""
    xyz = pyvips.Image.xyz(width, height)
    x = xyz[0] * (1.0 / width)
    y = xyz[1] * (1.0 / height)
    grain = pyvips.Image.gaussnoise(width, height, sigma=6, seed=seed)
    bands = [
        (x * (80 + 30 * (seed % 5)) + y * 120 + grain).cast("uchar"),
        (y * (140 + 20 * (seed % 3)) + grain).cast("uchar"),
        ((1 - y) * (200 - 25 * (seed % 4)) + grain).cast("uchar"),
    ]
    return bands[0].bandjoin(bands[1:]).copy(interpretation="srgb")


def main() -> None:
    seed = 0
    for folder, images in SCENES.items():
        target = HERE / folder
        target.mkdir(parents=True, exist_ok=True)
        for name, width, height in images:
            seed += 1
            image = scene(width, height, seed).copy()
            image.set_type(
                pyvips.GValue.gstr_type,
                "exif-ifd2-DateTimeOriginal",
                f"2025:0{seed % 9 + 1}:1{seed % 9} 10:0{seed % 6}:00",
            )
            image.write_to_file(
                str(target / name), **({"Q": 82} if name.endswith((".jpg", ".webp")) else {})
            )
    print(f"wrote {seed} images under {HERE}")


if __name__ == "__main__":
    main()
