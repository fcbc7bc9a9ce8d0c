"""A realistic gallery tree of any size, made quickly, for the scale runs.

    python -m benchmarks.scale ROOT --count 50000

Layout for ``count`` images (every image is a hard link to one of a few tiny real JPEGs and PNGs
that pyvips made, so making 500,000 costs seconds and indexing them costs what lenslet costs,
not what decoding large photos costs):

- ``bench/k1``: exactly 1,000 images (the "1k folder" the latency runs list);
- ``bench/huge0`` …: a few huge folders (10% of the images, split evenly, at most 50,000
  each) that are written as many manifest pages;
- ``YYYY/MM/album-N``: the rest, in albums of ~1,000, three levels deep;
- ``deep/d1/…/d8``: a chain of eight nested folders with a few images each;
- sidecars on 10% of the images, with tags from a small vocabulary (``family`` on about a third
  of them, ``zebra`` on five images: a common and a rare term) and a few words of notes.
"""

from __future__ import annotations

import argparse
import os
import random
from dataclasses import dataclass
from pathlib import Path

import orjson
from tests.imagegen import jpeg_bytes, png_bytes

ALBUM = 1000
WORDS = ["beach", "sunset", "city", "snow", "forest", "river", "night", "market", "garden"]


@dataclass(frozen=True)
class Tree:
    root: Path
    images: int
    folders: int
    sidecars: int
    k1: str = "bench/k1"
    huge: str = "bench/huge0"


#: Hard links one file may have on ext4 is 65,000: each pool image gets at most this many.
LINKS = 60_000


def _pool(root: Path, count: int) -> list[Path]:
    """The few real images every other one links to (ten, or more for a tree so large that
    ten would each need more hard links than the file system allows)."""
    pool = root / ".pool"
    pool.mkdir(parents=True, exist_ok=True)
    sets = max(1, -(-count // (10 * LINKS)))
    made = []
    for n in range(8 * sets):
        path = pool / f"p{n}.jpg"
        path.write_bytes(jpeg_bytes(64, 48, seed=n))
        made.append(path)
    for n in range(2 * sets):
        path = pool / f"p{n}.png"
        path.write_bytes(png_bytes(48, 48))
        made.append(path)
    return made


def _layout(count: int) -> list[tuple[str, int]]:
    """(folder, images) pairs adding up to ``count``."""
    folders: list[tuple[str, int]] = [("bench/k1", min(ALBUM, count))]
    left = count - folders[0][1]
    deep = min(left, 8 * 5)
    for depth in range(1, 9):
        share = min(5, deep)
        if share:
            folders.append(("/".join(["deep"] + [f"d{d}" for d in range(1, depth + 1)]), share))
            deep -= share
            left -= share
    huge_total = min(count // 10 if count >= 20_000 else 0, left)
    parts = -(-huge_total // 50_000)  # as few folders as hold it, split evenly
    for n in range(parts):
        size = huge_total // parts + (1 if n < huge_total % parts else 0)
        folders.append((f"bench/huge{n}", size))
        left -= size
    album = 0
    while left > 0:
        size = min(ALBUM, left)
        year, month = 2000 + album // 120, 1 + (album // 10) % 12
        folders.append((f"{year}/{month:02d}/album-{album:05d}", size))
        left -= size
        album += 1
    return folders


def make_tree(root: Path, count: int, *, seed: int = 7) -> Tree:
    """Make ``count`` images under ``root`` (which must be empty or missing)."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    pool = _pool(root, count)
    rare_left = 5
    sidecars = 0
    layout = _layout(count)
    for folder, size in layout:
        where = root / folder
        where.mkdir(parents=True, exist_ok=True)
        for n in range(size):
            source = pool[n % len(pool)]
            image = where / f"IMG_{n:06d}{source.suffix}"
            os.link(source, image)
            if rng.random() < 0.10:
                tags = rng.sample(WORDS, rng.randint(0, 2))
                if rng.random() < 0.33:
                    tags.append("family")
                if rare_left and rng.random() < 0.01:
                    tags.append("zebra")
                    rare_left -= 1
                notes = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 4)))
                document = {"v": 1, "tags": tags, "notes": notes}
                (where / f"{image.name}.json").write_bytes(orjson.dumps(document))
                sidecars += 1
    huge = next((f for f, _ in layout if f.startswith("bench/huge")), "bench/k1")
    return Tree(root, count, len(layout), sidecars, huge=huge)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args()
    tree = make_tree(args.root, args.count)
    print(f"{tree.images} images in {tree.folders} folders, {tree.sidecars} sidecars: {tree.root}")


if __name__ == "__main__":
    main()
