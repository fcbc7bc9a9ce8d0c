"""Changing a gallery's images: the one destination rule of uploads and moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from lenslet_core import ImageError, InvalidPath, Lenslet
from tests.imagegen import jpeg_bytes, write

pytestmark = pytest.mark.anyio


async def test_one_rule_says_where_an_upload_or_a_move_goes(gallery: Path) -> None:
    write(gallery / "albums" / "a.jpg", jpeg_bytes(seed=1))
    (gallery / "2025.trip").mkdir()  # a folder named like nothing in particular
    async with Lenslet(str(gallery)) as lens:
        # an existing folder takes the image under its own name
        assert await lens.upload("albums", "b.jpg", jpeg_bytes(seed=2)) == "albums/b.jpg"
        assert await lens.upload("/2025.trip/", "c.jpg", jpeg_bytes(seed=3)) == "2025.trip/c.jpg"
        # a path named like an image is the image's own path (its folder made if missing)
        assert await lens.upload("new/d.jpg", "ignored.jpg", jpeg_bytes(seed=4)) == "new/d.jpg"
        # any other missing name is a folder to make (a trash folder)
        assert await lens.move("albums/a.jpg", "_trash_") == "_trash_/a.jpg"
        assert await lens.move("albums/b.jpg", "albums/renamed.jpg") == "albums/renamed.jpg"
        with pytest.raises(InvalidPath, match="needs a name"):
            await lens.upload("albums", "", jpeg_bytes(seed=5))
    assert (gallery / "new" / "d.jpg").exists()
    assert (gallery / "_trash_" / "a.jpg").exists()
    assert not (gallery / "albums" / "b.jpg").exists()


async def test_an_upload_that_is_not_an_image_makes_no_folder(gallery: Path) -> None:
    async with Lenslet(str(gallery)) as lens:
        with pytest.raises(ImageError):
            await lens.upload("never/made", "x.jpg", b"not an image at all")
    assert not (gallery / "never").exists()
