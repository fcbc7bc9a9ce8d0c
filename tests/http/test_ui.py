"""lenslet's own gallery page at ``/``, in a real browser (Playwright over Debian's chromium)
against a real ``lenslet serve``; and its files, sizes and mounting over plain HTTP."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from lenslet_core import Lenslet, Settings
from lenslet_http import create_app
from tests.imagegen import jpeg_bytes, png_bytes, write
from tests.servers import serving

CHROMIUM = "/usr/bin/chromium"
UI = Path(__file__).parents[2] / "src" / "lenslet_http" / "ui"


@pytest.fixture
def photos(gallery: Path) -> Path:
    write(gallery / "trips" / "2025" / "a.jpg", jpeg_bytes(320, 240, seed=1))
    write(gallery / "trips" / "2025" / "b.jpg", jpeg_bytes(320, 240, seed=2))
    write(gallery / "trips" / "2025" / "c.png", png_bytes(200, 150, seed=3))
    write(gallery / "family" / "x.jpg", jpeg_bytes(64, 48, seed=4))
    return gallery


def test_the_page_is_small_and_self_contained() -> None:
    files = [p for p in UI.iterdir() if p.is_file()]
    assert {p.name for p in files} >= {"index.html", "app.js", "style.css"}
    assert sum(p.stat().st_size for p in files) < 150 * 1024
    for path in files:  # nothing fetched from elsewhere
        text = path.read_text()
        assert "http://" not in text
        assert "https://" not in text


@pytest.mark.anyio
async def test_the_page_is_served_alone_and_mounted_under_a_prefix(photos: Path) -> None:
    async with Lenslet(str(photos), Settings(cpu_concurrency=2)) as lens:
        host = Starlette(routes=[Mount("/gallery", create_app(lens))])
        transport = httpx.ASGITransport(app=host)
        async with httpx.AsyncClient(transport=transport, base_url="http://host") as http:
            page = await http.get("/gallery/")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            assert 'src="ui/app.js"' in page.text  # relative: works under any prefix
            moved = await http.get("/gallery", follow_redirects=False)
            assert moved.status_code in (307, 308)
            script = await http.get("/gallery/ui/app.js")
            assert script.status_code == 200
            assert "javascript" in script.headers["content-type"]
        bare = create_app(lens, ui=False)
        transport = httpx.ASGITransport(app=bare)
        async with httpx.AsyncClient(transport=transport, base_url="http://host") as http:
            assert (await http.get("/")).status_code == 404


@contextlib.contextmanager
def browser_page(url: str) -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("browser tests need Debian's chromium (apt-get install chromium)")
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(15_000)
            page.goto(url)
            yield page
        finally:
            browser.close()


def _shot(page: Any, name: str) -> None:
    """A screenshot for docs/ui.md, when LENSLET_SCREENSHOTS names where to put them."""
    folder = os.environ.get("LENSLET_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


def _thumbnails_loaded(page: Any, count: int) -> None:
    page.wait_for_function(
        """n => [...document.querySelectorAll('.cell img')]
              .filter(i => i.complete && i.naturalWidth > 0).length >= n""",
        arg=count,
    )


def _tag_picked(page: Any, folder: Path, tag: str, names: tuple[str, ...]) -> None:
    """Add ``tag`` in the inspector to the images picked, and find it in each one's sidecar."""
    page.fill("#i-tag", tag)
    page.press("#i-tag", "Enter")
    done = f"{len(names)} of {len(names)}"
    page.wait_for_function(
        "done => document.getElementById('i-status').textContent.includes(done)", arg=done
    )
    for name in names:
        stored = orjson.loads((folder / f"{name}.json").read_bytes())
        assert tag in stored["tags"], name


def test_browse_view_tag_and_search_in_a_real_browser(photos: Path) -> None:
    sidecar = photos / "trips" / "2025" / "b.jpg.json"
    with serving(str(photos), "--no-watch") as (_, url), browser_page(f"{url}/") as page:
        # Open a folder through the tree: its thumbnails load.
        page.get_by_role("button", name="trips").click()
        page.get_by_role("button", name="2025").click()
        page.wait_for_selector('.cell[data-path="trips/2025/c.png"]')
        assert page.locator(".cell").count() == 3
        _thumbnails_loaded(page, 3)
        assert "#/trips/2025" in page.url  # the URL holds the folder
        # The viewer: the original, stepped with the keyboard.
        page.locator('.cell[data-path="trips/2025/a.jpg"]').dblclick()
        page.wait_for_selector("#viewer:not([hidden])")
        assert page.locator("#v-name").text_content() == "a.jpg"
        page.keyboard.press("ArrowRight")
        page.wait_for_function("document.getElementById('v-name').textContent === 'b.jpg'")
        page.wait_for_function("document.getElementById('v-img').naturalWidth === 320")
        _shot(page, "ui-viewer")
        page.keyboard.press("Escape")
        page.wait_for_selector("#viewer", state="hidden")
        page.wait_for_function("document.getElementById('i-name').textContent === 'b.jpg'")
        # Tag it in the inspector: the sidecar on disk has the tag, then not.
        page.fill("#i-tag", "sunset")
        page.press("#i-tag", "Enter")
        page.wait_for_selector(".chip:has-text('sunset')")
        assert "sunset" in orjson.loads(sidecar.read_bytes())["tags"]
        page.get_by_role("button", name="Remove tag sunset").click()
        page.wait_for_selector(".chip:has-text('sunset')", state="detached")
        assert "sunset" not in orjson.loads(sidecar.read_bytes())["tags"]
        page.get_by_role("button", name="4 stars").click()
        page.wait_for_function("document.getElementById('i-stars').textContent === '★★★★☆'")
        assert orjson.loads(sidecar.read_bytes())["star"] == 4
        _shot(page, "ui-grid")
        # Search: results in the same grid.
        page.fill("#i-tag", "dusk")
        page.press("#i-tag", "Enter")
        page.wait_for_selector(".chip:has-text('dusk')")
        page.fill("#search", "dusk")
        page.wait_for_function("document.querySelectorAll('.cell').length === 1")
        _shot(page, "ui-search")
        assert page.locator(".cell").first.get_attribute("data-path") == "trips/2025/b.jpg"
        # Several at once: Ctrl-click picks more; a tag added goes to each.
        page.fill("#search", "")
        page.wait_for_function("document.querySelectorAll('.cell').length === 3")
        page.locator('.cell[data-path="trips/2025/a.jpg"]').click()
        page.locator('.cell[data-path="trips/2025/c.png"]').click(modifiers=["Control"])
        _tag_picked(page, photos / "trips" / "2025", "both", ("a.jpg", "c.png"))
        # The keyboard moves the selection.
        page.locator('.cell[data-path="trips/2025/a.jpg"]').click()
        page.keyboard.press("ArrowRight")
        page.wait_for_function("document.getElementById('i-name').textContent === 'b.jpg'")
        # A shared link opens the folder with its selection.
        page.goto(f"{url}/#/family?sel=family/x.jpg")
        page.reload()
        page.wait_for_selector('.cell[data-path="family/x.jpg"][aria-selected="true"]')
        page.wait_for_function("document.getElementById('i-name').textContent === 'x.jpg'")
        page.goto(f"{url}/#/trips/2025")
        page.reload()  # the tree unfolds to the folder of the link
        page.wait_for_selector('#tree button[data-path="trips/2025"][aria-current="true"]')


def test_upload_trash_undo_and_live_updates_in_a_real_browser(photos: Path, tmp_path: Path) -> None:
    folder = photos / "trips" / "2025"
    new = write(tmp_path / "new.jpg", jpeg_bytes(300, 200, seed=9))
    with serving(str(photos)) as (_, url), browser_page(f"{url}/#/trips/2025") as page:
        page.wait_for_selector('.cell[data-path="trips/2025/a.jpg"]')
        # Upload into the open folder.
        page.set_input_files("#upload", str(new))
        page.wait_for_selector('.cell[data-path="trips/2025/new.jpg"]')
        assert (folder / "new.jpg").read_bytes() == new.read_bytes()
        # To the trash, and back with undo (its tags go and come with it).
        page.locator('.cell[data-path="trips/2025/a.jpg"]').click()
        page.wait_for_function("document.getElementById('i-name').textContent === 'a.jpg'")
        page.fill("#i-tag", "keep")
        page.press("#i-tag", "Enter")
        page.wait_for_selector(".chip:has-text('keep')")
        page.get_by_role("button", name="Move to trash").click()
        page.wait_for_selector('.cell[data-path="trips/2025/a.jpg"]', state="detached")
        page.wait_for_selector("#inspector", state="hidden")
        _shot(page, "ui-trash")
        assert (photos / "_trash_" / "a.jpg").exists()
        page.get_by_role("button", name="Undo").click()
        page.wait_for_selector('.cell[data-path="trips/2025/a.jpg"]')
        assert "keep" in orjson.loads((folder / "a.jpg.json").read_bytes())["tags"]
        assert not (photos / "_trash_" / "a.jpg").exists()
        # Move: dragged onto a folder of the tree, or typed in (no mouse needed).
        page.locator('.cell[data-path="trips/2025/new.jpg"]').drag_to(
            page.get_by_role("button", name="family")
        )
        page.wait_for_selector('.cell[data-path="trips/2025/new.jpg"]', state="detached")
        assert (photos / "family" / "new.jpg").exists()
        page.locator('.cell[data-path="trips/2025/b.jpg"]').click()
        page.wait_for_function("document.getElementById('i-name').textContent === 'b.jpg'")
        page.once("dialog", lambda dialog: dialog.accept("/albums/best"))
        page.get_by_role("button", name="Move to…").click()
        page.wait_for_selector('.cell[data-path="trips/2025/b.jpg"]', state="detached")
        page.wait_for_selector("#inspector", state="hidden")  # nothing selected is left
        assert (photos / "albums" / "best" / "b.jpg").exists()
        # Live: an image copied into the open folder appears without a reload.
        write(folder / "copied.jpg", jpeg_bytes(120, 90, seed=11))
        page.wait_for_selector('.cell[data-path="trips/2025/copied.jpg"]', timeout=10_000)


def _mark(page: Any) -> None:
    """Mark the grid's cells, before something that makes the page refresh the folder."""
    page.evaluate("document.querySelectorAll('.cell').forEach(c => (c.dataset.old = '1'))")


def _rebuilt(page: Any, count: int) -> None:
    """Wait until a refresh has made all ``count`` cells anew (none is :func:`_mark`-ed)."""
    page.wait_for_function(
        "n => document.querySelectorAll('.cell').length === n"
        " && !document.querySelector('.cell[data-old]')",
        arg=count,
    )


def test_a_folder_refreshed_under_the_user_keeps_the_keyboard_and_the_picks(
    photos: Path,
) -> None:
    # Another client's tag changes the open folder: the page reads it again (a server-sent
    # event) and makes its cells anew, which must not take the keyboard or the picks away.
    with (
        serving(str(photos), "--no-watch") as (_, url),
        browser_page(f"{url}/#/trips/2025") as page,
    ):
        page.wait_for_selector('.cell[data-path="trips/2025/a.jpg"]')
        page.locator('.cell[data-path="trips/2025/a.jpg"]').click()
        page.wait_for_function("document.getElementById('i-name').textContent === 'a.jpg'")
        _mark(page)
        tagged = httpx.put(
            f"{url}/item", params={"path": "trips/2025/c.png"}, json={"tags": ["elsewhere"]},
            headers={"X-Requested-With": "lenslet"},
        )  # fmt: skip
        assert tagged.status_code == 200, tagged.text
        _rebuilt(page, 3)
        focused = page.evaluate("document.activeElement.dataset.path")
        assert focused == "trips/2025/a.jpg"
        page.keyboard.press("ArrowRight")
        page.wait_for_function("document.getElementById('i-name').textContent === 'b.jpg'")
        # Two picked, then the folder refreshed: both are still picked, and tagged together.
        page.locator('.cell[data-path="trips/2025/c.png"]').click(modifiers=["Control"])
        _mark(page)
        httpx.put(
            f"{url}/item", params={"path": "trips/2025/a.jpg"}, json={"tags": ["again"]},
            headers={"X-Requested-With": "lenslet"},
        ).raise_for_status()  # fmt: skip
        _rebuilt(page, 3)
        for name in ("b.jpg", "c.png"):
            cell = page.locator(f'.cell[data-path="trips/2025/{name}"]')
            assert cell.get_attribute("aria-selected") == "true", name
        _tag_picked(page, photos / "trips" / "2025", "pair", ("b.jpg", "c.png"))


def test_a_read_only_server_hides_every_write(photos: Path) -> None:
    with serving(str(photos), "--read-only") as (_, url), browser_page(f"{url}/#/family") as page:
        page.wait_for_selector('.cell[data-path="family/x.jpg"]')
        page.wait_for_selector("body.readonly")
        page.locator('.cell[data-path="family/x.jpg"]').click()
        page.wait_for_selector("#inspector:not([hidden])")
        assert not page.get_by_role("button", name="Move to trash").is_visible()
        assert not page.locator(".upload").is_visible()
        assert not page.locator("#i-tag").is_visible()
        # The health panel says what the server knows.
        page.get_by_role("button", name="Health").click()
        page.wait_for_selector("#health[open]")
        page.wait_for_function("document.getElementById('health-body').textContent.length > 5")
        assert "No health report yet" in page.locator("#health-body").text_content()
        page.get_by_role("button", name="Close").click()
        # A phone-width window still shows the details of the image picked.
        page.set_viewport_size({"width": 390, "height": 800})
        page.locator('.cell[data-path="family/x.jpg"]').click()
        assert page.locator("#i-name").is_visible()


def test_token_sign_in_in_a_real_browser(photos: Path) -> None:
    serve = (str(photos), "--no-watch", "--token", "s3cret")
    with serving(*serve) as (_, url), browser_page(f"{url}/#/family") as page:
        page.wait_for_selector("#login[open]")
        page.fill("#login-token", "wrong")
        page.click("#login-form button[type=submit]")
        page.wait_for_function("document.getElementById('login-status').textContent !== ''")
        page.fill("#login-token", "s3cret")
        page.click("#login-form button[type=submit]")
        page.wait_for_selector('.cell[data-path="family/x.jpg"]')
        _thumbnails_loaded(page, 1)  # <img> works with the session cookie
        assert "s3cret" not in page.url
        page.locator('.cell[data-path="family/x.jpg"]').click()
        page.wait_for_function("document.getElementById('i-name').textContent === 'x.jpg'")
        page.fill("#i-tag", "signed")
        page.press("#i-tag", "Enter")
        page.wait_for_selector(".chip:has-text('signed')")
        assert "signed" in orjson.loads((photos / "family" / "x.jpg.json").read_bytes())["tags"]
        # Signed in, the health panel has the counts of the start-up index.
        page.wait_for_function("fetch('health').then(r => r.json()).then(h => !!h.gallery)")
        page.get_by_role("button", name="Health").click()
        page.wait_for_function(
            "document.getElementById('health-body').textContent.includes('items: 4')"
        )
