"""The scale-run tree generator (benchmarks/scale.py): its layout adds up and has the shapes
the scale runs measure."""

from __future__ import annotations

from pathlib import Path

from benchmarks.scale import ALBUM, _layout, make_tree
from hypothesis import given, settings
from hypothesis import strategies as st


@given(st.integers(1, 600_000))
@settings(max_examples=60)
def test_the_layout_places_every_image_once(count: int) -> None:
    layout = _layout(count)
    assert sum(size for _, size in layout) == count
    assert len({folder for folder, _ in layout}) == len(layout)
    assert layout[0] == ("bench/k1", min(ALBUM, count))
    assert all(size <= 50_000 for _, size in layout)
    huge = [size for folder, size in layout if folder.startswith("bench/huge")]
    if count >= 20_000:
        assert huge
        assert min(huge) >= min(10_000, count // 10)
        assert sum(huge) == count // 10


def test_a_small_tree_is_real_images_and_sidecars(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t", 1200)
    images = [p for p in tree.root.rglob("IMG_*") if not p.name.endswith(".json")]
    assert len(images) == 1200
    assert len(list((tree.root / "bench" / "k1").glob("IMG_*.jpg"))) == 800  # 8 of 10 are JPEG
    assert tree.sidecars == len(list(tree.root.rglob("*.json")))
    assert (tree.root / "deep/d1/d2/d3/d4/d5/d6/d7/d8").is_dir()
