"""One open gallery (``gallery.Gallery``): its status for a health check, on a deadline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lenslet_core import Lenslet
from tests.imagegen import jpeg_bytes, write

pytestmark = pytest.mark.anyio


async def test_the_status_says_whether_the_storage_answers_and_what_is_stored(
    tmp_path: Path,
) -> None:
    root = tmp_path / "g"
    write(root / "x.jpg", jpeg_bytes())
    async with Lenslet(str(root)) as lens:
        before = await lens.status()
        assert before.reachable
        assert before.gallery is None  # never indexed: no _health.json yet
        assert before.ok
        await lens.index()
        indexed = await lens.status()
        assert indexed.gallery is not None
        assert indexed.gallery["counts"]["items"] == 1
        assert indexed.to_json()["storage"] == {"reachable": True}
        shutil.rmtree(root)  # the storage goes away under the running gallery
        gone = await lens.status()
    assert not gone.reachable
    assert not gone.ok
    assert gone.error is not None
    assert gone.error["code"] == "not_found"
    assert gone.to_json()["storage"]["reachable"] is False
