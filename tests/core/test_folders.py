"""The folder pages cache (``folders.FolderPages``, behind ``Lenslet.folder``): served from
memory while fresh, read from the manifest when stale, built only when there is none."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from lenslet_core import Lenslet, NotFound, Settings
from tests.conftest import Requests
from tests.imagegen import jpeg_bytes, write

pytestmark = pytest.mark.anyio


async def test_a_fresh_page_is_served_from_memory_and_a_stale_one_read_again(
    gallery: Path, requests: Requests
) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    async with Lenslet(str(gallery), Settings(manifest_ttl=60)) as lens:
        await lens.index()
    async with Lenslet(str(gallery), Settings(manifest_ttl=60), observer=requests) as lens:
        requests.clear()
        first = await lens.folder("a")
        again = await lens.folder("a")
        assert again is first  # from memory: no request at all
        assert requests.log == [("read", "a/_index.json")]
    async with Lenslet(str(gallery), Settings(manifest_ttl=0), observer=requests) as lens:
        requests.clear()
        await lens.folder("a")
        await lens.folder("a")
        assert requests.log == [("read", "a/_index.json")] * 2  # stale at once: read each time


async def test_a_missing_manifest_is_built_once_and_counted(gallery: Path) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    async with Lenslet(str(gallery)) as lens:
        page = await lens.folder("a")
        assert [i.name for i in page.items] == ["x.jpg"]
        assert (gallery / "a" / "_index.json").exists()
        await lens.folder("a")
        stats = lens.stats()
    assert (stats.pages_rebuilt, stats.pages_served) == (1, 1)


async def test_pages_of_a_paged_folder_come_from_one_build(gallery: Path) -> None:
    for n in range(5):
        write(gallery / "big" / f"{n}.jpg", jpeg_bytes(16, 16, seed=n))
    async with Lenslet(str(gallery), Settings(page_size=2, thumbnails=False)) as lens:
        await lens.index()
        pages = [await lens.folder("big", n) for n in range(3)]
        whole = await lens.whole_folder("big")
        with pytest.raises(NotFound, match="no page 3"):
            await lens.folder("big", 3)
    assert {p.build for p in pages} == {whole.build}
    assert [p.page_count for p in pages] == [3, 3, 3]
    assert [i.name for p in pages for i in p.items] == [i.name for i in whole.items]
    assert whole.page_count == 1
    assert whole.item_count == 5


async def test_readers_that_find_a_page_stale_together_wait_for_one_read(
    gallery: Path, requests: Requests
) -> None:
    for n in range(50):
        write(gallery / "a" / f"{n}.jpg", jpeg_bytes(8, 8))
    settings = Settings(manifest_ttl=0.05)
    async with Lenslet(str(gallery), settings) as lens:
        await lens.index("a", thumbnails=False)
    async with Lenslet(str(gallery), settings, observer=requests) as lens:
        first = await lens.folder("a")
        await anyio.sleep(0.1)  # stale now
        requests.clear()
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(lens.folder, "a")
        assert requests.log == [("read", "a/_index.json")]
        # The same bytes again: the page read before is given back, not decoded again.
        assert await lens.folder("a") is first
        # Another writer's page is read and decoded.
        write(gallery / "a" / "new.jpg", jpeg_bytes(8, 8))
        async with Lenslet(str(gallery), settings) as other:
            await other.index("a", thumbnails=False)
        await anyio.sleep(0.1)
        again = await lens.folder("a")
    assert again.build != first.build
    assert "new.jpg" in {item.name for item in again.items}
