"""The HTTP surface, through real HTTP requests to the ASGI app (httpx) over real files."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import orjson
import pytest
import pyvips
from starlette.applications import Starlette
from starlette.routing import Mount

from lenslet_core import Lenslet, Settings
from lenslet_core.codec import parse_time
from lenslet_http import create_app
from tests.conftest import Requests
from tests.imagegen import jpeg_bytes, png_bytes, write
from tests.servers import serving_app

pytestmark = pytest.mark.anyio

SETTINGS = Settings(cpu_concurrency=2)


@contextlib.asynccontextmanager
async def client(
    root: Path, settings: Settings = SETTINGS, **options: object
) -> AsyncIterator[httpx.AsyncClient]:
    """The app over an entered Lenslet (the host's lifespan pattern), and a client for it."""
    async with Lenslet(str(root), settings) as lens:
        app = create_app(lens, **options)  # type: ignore[arg-type]
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gallery") as http:
            yield http


@pytest.fixture
def tree(gallery: Path) -> Path:
    write(gallery / "trips" / "2025" / "beach.jpg", jpeg_bytes(640, 480, seed=1))
    write(gallery / "trips" / "2025" / "dunes.png", png_bytes(320, 200, seed=2))
    write(gallery / "top.jpg", jpeg_bytes(100, 80, seed=3))
    return gallery


async def test_folders_serves_the_manifest_with_item_paths(tree: Path) -> None:
    async with client(tree) as http:
        for spelling in ("/trips/2025", "trips/2025", "trips//2025/"):
            response = await http.get("/folders", params={"path": spelling})
            assert response.status_code == 200, response.text
            body = response.json()
            assert [i["path"] for i in body["items"]] == [
                "trips/2025/beach.jpg",
                "trips/2025/dunes.png",
            ]
        root = (await http.get("/folders", params={"path": "/"})).json()
        assert root["dirs"] == [{"name": "trips", "kind": "branch"}]
        again = await http.get(
            "/folders",
            params={"path": "trips/2025"},
            headers={"If-None-Match": response.headers["etag"]},
        )
        assert again.status_code == 304


async def test_errors_have_one_json_shape(tree: Path) -> None:
    async with client(tree) as http:
        cases = [
            ("/folders", {"path": "../etc"}, 400, "invalid_path"),
            ("/folders", {"path": "nope"}, 404, "not_found"),
            ("/folders", {"path": "trips", "page": "x"}, 400, "invalid_parameter"),
            ("/item", {"path": ""}, 404, "not_found"),  # asked before anything is selected
            ("/item", {"path": "/"}, 404, "not_found"),
            ("/item", {"path": "trips/2025/missing.jpg"}, 404, "not_found"),
            ("/item", {"path": "trips/2025/_index.json"}, 400, "invalid_path"),
            ("/file", {"path": "trips/2025/beach.jpg.json"}, 400, "invalid_path"),
            ("/thumb", {"path": "top.jpg\x00"}, 400, "invalid_path"),
            ("/search", {"q": "x", "limit": "0"}, 400, "invalid_parameter"),
            ("/search", {"q": "x", "limit": ""}, 400, "invalid_parameter"),  # empty: bad too
            ("/folders", {"path": "trips", "page": ""}, 400, "invalid_parameter"),
        ]
        # Percent-encoded traversal, as a raw URL: decoded once by the server, then refused.
        for raw in ("/folders?path=trips/%2e%2e/%2e%2e", "/file?path=%2e%2e%2ftop.jpg"):
            response = await http.get(raw)
            assert response.status_code == 400, raw
            assert response.json()["error"]["code"] == "invalid_path"
        for route, params, status, code in cases:
            response = await http.get(route, params=params)
            assert response.status_code == status, (route, params, response.text)
            assert response.json()["error"]["code"] == code
            assert set(response.json()["error"]) == {"code", "message"}
        # Unknown routes and wrong methods answer the same body; a 405 lists every method.
        for method, route, status, code, allow in [
            ("GET", "/nope", 404, "not_found", None),
            ("PATCH", "/nope", 404, "not_found", None),
            ("POST", "/", 405, "method_not_allowed", {"GET", "HEAD"}),  # the page
            ("DELETE", "/item", 405, "method_not_allowed", {"GET", "HEAD", "PUT"}),
            ("PUT", "/file", 405, "method_not_allowed", {"GET", "HEAD", "POST"}),
            ("GET", "/move", 405, "method_not_allowed", {"POST"}),
        ]:
            response = await http.request(method, route)
            assert response.status_code == status, (method, route, response.text)
            assert response.headers["content-type"] == "application/json"
            assert response.json()["error"]["code"] == code
            if allow is not None:
                assert set(response.headers["allow"].split(", ")) == allow


async def test_item_get_and_put_follow_the_write_rules(tree: Path) -> None:
    async with client(tree) as http:
        first = await http.get("/item", params={"path": "/top.jpg"})
        assert first.status_code == 200
        assert first.json()["exif"]["width"] == 100
        etag = first.headers["etag"]
        body = {**first.json(), "tags": ["sea", "sun"], "star": 4}
        put = await http.put(
            "/item", params={"path": "top.jpg"}, json=body, headers={"If-Match": etag}
        )
        assert put.status_code == 200, put.text
        assert put.json()["tags"] == ["sea", "sun"]
        assert put.json()["star"] == 4  # a field lenslet does not know, kept
        # A stale If-Match merges: no tag is lost.
        stale = {**first.json(), "tags": ["dusk"], "updated_at": "2020-01-01T00:00:00Z"}
        merged = await http.put(
            "/item", params={"path": "top.jpg"}, json=stale, headers={"If-Match": etag}
        )
        assert merged.status_code == 200
        assert set(merged.json()["tags"]) == {"sea", "sun", "dusk"}
        assert merged.headers["etag"] != put.headers["etag"]
        bad = await http.put("/item", params={"path": "top.jpg"}, content=b"[1, 2]")
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "invalid_document"
    stored = orjson.loads((tree / "top.jpg.json").read_bytes())
    assert set(stored["tags"]) == {"sea", "sun", "dusk"}


@pytest.mark.parametrize("kind", ["stale-if-match", "echoes-the-document", "tags-only"])
async def test_concurrent_puts_lose_no_tag(tree: Path, kind: str) -> None:
    """50 clients tag one image at once: with the (soon stale) ETag they read, or as existing
    clients do without If-Match — echoing the document read back (its updatedAt is the stored
    one) or sending tags alone (no updatedAt). All are merged; none replaces."""
    async with client(tree) as http:
        seen = await http.get("/item", params={"path": "top.jpg"})
        document = seen.json()

        async def put(n: int) -> None:
            headers = {"If-Match": seen.headers["etag"]} if kind == "stale-if-match" else {}
            tags = {"tags": [*document["tags"], f"t{n}"]}
            body = tags if kind == "tags-only" else {**document, **tags}
            response = await http.put(
                "/item", params={"path": "top.jpg"}, json=body, headers=headers
            )
            assert response.status_code == 200, response.text

        async with anyio.create_task_group() as tg:
            for n in range(50):
                tg.start_soon(put, n)
        final = (await http.get("/item", params={"path": "top.jpg"})).json()
    assert set(final["tags"]) == {f"t{n}" for n in range(50)}


async def test_an_echoed_document_removes_a_tag_and_its_own_stamp_does_not(tree: Path) -> None:
    async with client(tree) as http:
        first = await http.put("/item", params={"path": "top.jpg"}, json={"tags": ["a", "b"]})
        # What existing clients send: the document read, with a fresh stamp of their own.
        body = {**first.json(), "tags": ["a"], "updated_at": "2099-01-01T00:00:00Z"}
        second = await http.put("/item", params={"path": "top.jpg"}, json=body)
        assert second.json()["tags"] == ["a"]
        own = {"tags": ["c"], "updatedAt": "2000-01-01T00:00:00Z"}
        third = await http.put("/item", params={"path": "top.jpg"}, json=own)
    assert set(third.json()["tags"]) == {"a", "c"}


async def test_answers_carry_both_stamps_and_put_answers_what_get_does(tree: Path) -> None:
    async with client(tree) as http:
        absent = (await http.get("/item", params={"path": "top.jpg"})).json()
        assert absent["updated_at"] is None
        assert absent["updated_by"] is None
        put = await http.put(
            "/item", params={"path": "top.jpg"}, json={"tags": ["sun"], "notes": "first"}
        )
        got = await http.get("/item", params={"path": "top.jpg"})
        assert put.json() == got.json()
        assert put.headers["etag"] == got.headers["etag"]
        answer = put.json()
        assert answer["exif"]["width"] == 100
        assert answer["hash"]
        assert answer["updated_at"] == answer["updatedAt"] is not None
        assert answer["updated_by"] == answer["updatedBy"] == "web"
        # A partial body (the README's curl line) leaves the notes alone ...
        partial = await http.put(
            "/item",
            params={"path": "top.jpg"},
            json={"tags": ["sea"]},
            headers={"X-Lenslet-User": "ana"},
        )
        assert partial.json()["notes"] == "first"
        assert set(partial.json()["tags"]) == {"sun", "sea"}
        # ... every write advances the stamp and names its author.
        assert partial.json()["updatedAt"] > answer["updatedAt"]
        assert partial.json()["updated_by"] == "ana"
        named = await http.put(
            "/item", params={"path": "top.jpg"}, json={"notes": "x", "updated_by": "bo"}
        )
        assert named.json()["updatedBy"] == "bo"
    stored = orjson.loads((tree / "top.jpg.json").read_bytes())
    assert "updated_at" not in stored
    assert "updated_by" not in stored
    assert stored["updatedBy"] == "bo"


async def test_thumb_is_a_webp_with_a_strong_etag(tree: Path) -> None:
    async with client(tree) as http:
        response = await http.get("/thumb", params={"path": "trips/2025/beach.jpg", "wait": "5"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/webp"
        image = pyvips.Image.new_from_buffer(response.content, "")
        assert (image.width, image.height) == (256, 192)
        etag = response.headers["etag"]
        assert not etag.startswith("W/")
        cached = await http.get(
            "/thumb", params={"path": "trips/2025/beach.jpg"}, headers={"If-None-Match": etag}
        )
        assert cached.status_code == 304
        missing = await http.get("/thumb", params={"path": "trips/2025/gone.jpg"})
        assert missing.status_code == 404


async def test_a_plain_thumb_request_waits_for_the_picture(tree: Path) -> None:
    """An <img> or a plain fetch() takes any 2xx as the picture: it gets the WebP (made at
    once), or past the bound a 503 nobody caches — never a 202."""
    async with client(tree) as http:
        plain = await http.get(
            "/thumb", params={"path": "trips/2025/dunes.png"}, headers={"Accept": "*/*"}
        )
        assert plain.status_code == 200, plain.text
        assert plain.headers["content-type"] == "image/webp"
    async with client(tree, thumb_wait=0) as http:
        late = await http.get("/thumb", params={"path": "top.jpg"})
        assert late.status_code == 503
        assert late.headers["cache-control"] == "no-store"
        assert int(late.headers["retry-after"]) >= 1
        assert late.json()["error"]["code"] == "thumbnail_pending"


async def test_thumb_answers_202_to_clients_that_prefer_it(tree: Path) -> None:
    async with client(tree) as http:
        pending = await http.get(
            "/thumb",
            params={"path": "trips/2025/dunes.png"},
            headers={"Prefer": "respond-async, wait=0"},
        )
        assert pending.status_code == 202
        assert pending.headers["cache-control"] == "no-store"


async def test_thumb_answers_202_while_it_is_made(tree: Path) -> None:
    async with client(tree) as http:
        pending = await http.get("/thumb", params={"path": "trips/2025/dunes.png", "wait": "0"})
        assert pending.status_code == 202
        assert int(pending.headers["retry-after"]) >= 1
        location = pending.headers["location"]
        assert location.startswith("/thumb?path=")
        with anyio.fail_after(20):
            while True:
                polled = await http.get(location)
                if polled.status_code == 200:
                    break
                assert polled.status_code == 202
                await anyio.sleep(0.05)
        assert polled.headers["content-type"] == "image/webp"


async def test_file_serves_the_original_with_ranges(tree: Path) -> None:
    original = (tree / "top.jpg").read_bytes()
    async with client(tree) as http:
        whole = await http.get("/file", params={"path": "top.jpg"})
        assert whole.status_code == 200
        assert whole.content == original
        assert whole.headers["content-type"] == "image/jpeg"
        part = await http.get("/file", params={"path": "top.jpg"}, headers={"Range": "bytes=10-19"})
        assert part.status_code == 206
        assert part.content == original[10:20]
        assert part.headers["content-range"] == f"bytes 10-19/{len(original)}"
        tail = await http.get("/file", params={"path": "top.jpg"}, headers={"Range": "bytes=-5"})
        assert tail.content == original[-5:]
        beyond = await http.get(
            "/file", params={"path": "top.jpg"}, headers={"Range": f"bytes={len(original)}-"}
        )
        assert beyond.status_code == 416


async def test_search_and_health(tree: Path) -> None:
    async with Lenslet(str(tree), SETTINGS) as lens:
        await lens.index()
        await lens.update_item("trips/2025/dunes.png", {"tags": ["Sand"], "notes": "windy"})
        app = create_app(lens)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gallery") as http:
            found = (await http.get("/search", params={"q": "sand"})).json()
            assert [i["path"] for i in found["items"]] == ["trips/2025/dunes.png"]
            hit = found["items"][0]  # shaped like a folder item, with tags and notes
            assert (hit["w"], hit["h"], hit["type"]) == (320, 200, "image/png")
            assert (hit["tags"], hit["notes"]) == (["Sand"], "windy")
            under = await http.get("/search", params={"q": "jpg", "path": "/trips"})
            assert [i["path"] for i in under.json()["items"]] == ["trips/2025/beach.jpg"]
            health = (await http.get("/health")).json()
    assert health["storage"] == {"reachable": True}
    assert health["gallery"]["counts"]["items"] == 3
    assert health["ok"] is True


async def test_search_answers_carry_an_etag_a_browser_revalidates_with(tree: Path) -> None:
    async with Lenslet(str(tree), SETTINGS) as lens:
        await lens.index()
        await lens.update_item("trips/2025/dunes.png", {"tags": ["Sand"]})
        transport = httpx.ASGITransport(app=create_app(lens))
        async with httpx.AsyncClient(transport=transport, base_url="http://gallery") as http:
            first = await http.get("/search", params={"q": "sand"})
            etag = first.headers["etag"]
            assert first.headers["cache-control"] == "no-cache"
            again = await http.get("/search", params={"q": "sand"}, headers={"If-None-Match": etag})
            assert again.status_code == 304
            assert again.headers["etag"] == etag
            gzipped = await http.get(
                "/search", params={"q": "sand"}, headers={"Accept-Encoding": "gzip"}
            )
            assert gzipped.headers["etag"] == etag  # names the bytes, whatever the encoding
            assert gzipped.json() == first.json()
            await lens.update_item("trips/2025/beach.jpg", {"tags": ["sand"]})
            changed = await http.get(
                "/search", params={"q": "sand"}, headers={"If-None-Match": etag}
            )
            assert changed.status_code == 200  # other hits: other bytes, another ETag
            assert changed.headers["etag"] != etag
            assert len(changed.json()["items"]) == 2


async def test_read_only_servers_refuse_writes(tree: Path) -> None:
    async with client(tree, Settings(readonly=True)) as http:
        response = await http.put("/item", params={"path": "top.jpg"}, json={"tags": ["x"]})
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "read_only"
    assert not (tree / "top.jpg.json").exists()


async def test_a_bearer_token_guards_everything_but_health(tree: Path) -> None:
    async with client(tree, token="s3cret") as http:
        assert (await http.get("/folders")).status_code == 401
        wrong = await http.get("/folders", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = await http.get("/folders", headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200
        # Open for load balancers, but without the token only whether it is ok: no folder
        # names, skipped or orphan paths.
        public = await http.get("/health")
        assert public.status_code == 200
        assert set(public.json()) == {"ok", "version"}
        full = await http.get("/health", headers={"Authorization": "Bearer s3cret"})
        assert {"storage", "jobs", "gallery"} <= set(full.json())
    async with client(tree) as http:  # no token: nothing to hide
        assert "gallery" in (await http.get("/health")).json()


def test_the_app_opens_its_own_lenslet_in_its_lifespan(tree: Path) -> None:
    with serving_app(create_app(str(tree), SETTINGS)) as url, httpx.Client(base_url=url) as http:
        response = http.get("/folders", params={"path": "trips/2025"})
        assert response.status_code == 200
        assert len(response.json()["items"]) == 2
        thumb = http.get("/thumb", params={"path": "top.jpg", "wait": "5"})
        assert thumb.status_code == 200
        assert thumb.headers["content-type"] == "image/webp"
    assert (tree / "top.jpg.thumbnail").exists()  # kept, and the server stopped cleanly
    assert not [p for p in tree.rglob("*") if p.name.endswith(".lenslet-tmp")]


def test_mounted_under_a_prefix_with_the_hosts_lifespan(tree: Path) -> None:
    lens = Lenslet(str(tree), SETTINGS)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with lens:  # a mounted app's own lifespan does not run
            yield

    host = Starlette(routes=[Mount("/gallery", create_app(lens))], lifespan=lifespan)
    with serving_app(host) as url, httpx.Client(base_url=url) as http:
        response = http.get("/gallery/folders", params={"path": "/"})
        assert response.status_code == 200
        assert [i["path"] for i in response.json()["items"]] == ["top.jpg"]
        thumb = http.get("/gallery/thumb", params={"path": "top.jpg", "wait": "5"})
        assert thumb.status_code == 200
        metrics = http.get("/gallery/metrics").text
    # Timed by the app's own route names, not as "other" because of the host's prefix.
    assert 'lenslet_http_request_seconds_count{method="GET",route="/thumb",status="200"}' in (
        metrics
    )


def test_a_watching_app_lists_a_copied_in_image_and_times_it(tree: Path) -> None:
    app = create_app(str(tree), SETTINGS, watch=True)
    with serving_app(app) as url, httpx.Client(base_url=url) as http:
        before = http.get("/folders", params={"path": "trips/2025"}).json()  # manifest written
        assert len(before["items"]) == 2
        time.sleep(0.3)  # the watcher is up before the copy below
        write(tree / "trips" / "2025" / "new.jpg", jpeg_bytes(40, 30, seed=9))
        deadline = time.monotonic() + 30
        while True:
            listed = http.get("/folders", params={"path": "trips/2025"}).json()["items"]
            new = [i for i in listed if i["name"] == "new.jpg"]
            if new and new[0]["hasThumb"]:
                break
            assert time.monotonic() < deadline, listed
            time.sleep(0.1)
        lines = http.get("/metrics").text.splitlines()
    assert "lenslet_new_image_indexed_seconds_count 1.0" in lines
    assert any(line.startswith('lenslet_job_wait_seconds_count{kind="index"}') for line in lines)


async def test_pointer_errors_and_read_only_pointers_over_http(gallery: Path) -> None:
    outside = gallery.parent / "outside"
    write(outside / "x.jpg", jpeg_bytes(32, 32))
    config = {"version": 1, "kind": "pointer", "readonly": True}
    write(
        gallery / "ro" / ".lenscat.folder.json",
        orjson.dumps({**config, "target": {"type": "local", "path": str(outside)}}),
    )
    write(
        gallery / "loop" / ".lenscat.folder.json",
        orjson.dumps({**config, "target": {"type": "local", "path": str(gallery)}}),
    )
    settings = Settings(cpu_concurrency=2, pointer_roots=(str(gallery.parent),))
    async with client(gallery, settings) as http:
        looping = await http.get("/folders", params={"path": "/loop"})
        assert looping.status_code == 508
        assert looping.json()["error"]["code"] == "pointer_loop"
        listed = await http.get("/folders", params={"path": "/ro"})
        assert [i["path"] for i in listed.json()["items"]] == ["ro/x.jpg"]
        refused = await http.put("/item", params={"path": "ro/x.jpg"}, json={"tags": ["t"]})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "read_only"
        thumb = await http.get("/thumb", params={"path": "ro/x.jpg", "wait": "5"})
        assert thumb.status_code == 200  # made on request, not kept (no thumb_cache)
    assert sorted(p.name for p in outside.iterdir()) == ["x.jpg"]


async def test_openapi_describes_every_route(tree: Path) -> None:
    async with client(tree) as http:
        response = await http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    from starlette.routing import Route

    from lenslet_http.routes import routes

    for route in routes:
        assert isinstance(route, Route)
        for method in route.methods or ():
            if method != "HEAD":
                assert method.lower() in document["paths"][route.path], (route.path, method)


async def test_metrics_count_manifests_thumbnails_jobs_and_latency(tree: Path) -> None:
    async with client(tree) as http:
        await http.get("/folders", params={"path": "trips/2025"})  # no manifest yet: rebuilt
        await http.get("/folders", params={"path": "trips/2025"})  # from the manifest
        await http.get("/thumb", params={"path": "top.jpg", "wait": "5"})  # made
        await http.get("/thumb", params={"path": "top.jpg"})  # served from the file
        await http.get("/nowhere")
        text = (await http.get("/metrics")).text
    lines = set(text.splitlines())
    assert 'lenslet_folder_pages_total{source="manifest"} 1.0' in lines
    assert 'lenslet_folder_pages_total{source="rebuilt"} 1.0' in lines
    assert 'lenslet_thumbnails_total{outcome="made"} 1.0' in lines
    assert 'lenslet_thumbnails_total{outcome="served"} 1.0' in lines
    assert 'lenslet_jobs_queued{kind="thumbnail"} 0.0' in lines
    assert any(line.startswith("lenslet_jobs_done_total ") for line in lines)
    assert any(
        line.startswith(
            'lenslet_http_request_seconds_count{method="GET",route="/thumb",status="200"}'
        )
        for line in lines
    )
    assert any('route="other"' in line and 'status="404"' in line for line in lines)


async def test_a_large_folder_page_is_sent_compressed_once_encoded(gallery: Path) -> None:
    for n in range(60):
        write(gallery / "many" / f"IMG_{n:04d}.jpg", jpeg_bytes(16, 12, seed=n))
    async with client(gallery) as http:
        zipped = await http.get("/folders", params={"path": "many"})
        assert zipped.headers["content-encoding"] == "gzip"
        again = await http.get("/folders", params={"path": "many"})
        plain = await http.get(
            "/folders", params={"path": "many"}, headers={"Accept-Encoding": "identity"}
        )
    assert "content-encoding" not in plain.headers
    assert zipped.json() == again.json() == plain.json()
    assert len(plain.json()["items"]) == 60


async def test_folders_without_page_answer_the_whole_folder(gallery: Path) -> None:
    """Existing clients never send page: they get every item of a paged folder at once."""
    for n in range(7):
        write(gallery / "big" / f"IMG_{n:04d}.jpg", jpeg_bytes(16, 12, seed=n))
    async with client(gallery, Settings(cpu_concurrency=2, page_size=3)) as http:
        whole = await http.get("/folders", params={"path": "big"})
        assert whole.status_code == 200, whole.text
        body = whole.json()
        assert [i["path"] for i in body["items"]] == [f"big/IMG_{n:04d}.jpg" for n in range(7)]
        assert (body["page"], body["pageCount"], body["itemCount"]) == (0, 1, 7)
        pages = [(await http.get("/folders", params={"path": "big", "page": n})) for n in range(3)]
        assert [p.json()["pageCount"] for p in pages] == [3, 3, 3]
        assert [i for p in pages for i in p.json()["items"]] == body["items"]
        assert len({whole.headers["etag"], *(p.headers["etag"] for p in pages)}) == 4
        unchanged = await http.get(
            "/folders", params={"path": "big"}, headers={"If-None-Match": whole.headers["etag"]}
        )
        assert unchanged.status_code == 304
        for bad in ("", "x", "-1"):
            refused = await http.get("/folders", params={"path": "big", "page": bad})
            assert refused.status_code == 400, bad
        beyond = await http.get("/folders", params={"path": "big", "page": 3})
        assert beyond.status_code == 404


async def test_folder_items_carry_added_created_and_star(gallery: Path) -> None:
    """Clients sort by addedAt and filter by star from the listing alone; a star set through
    PUT reaches the folder's manifest without reading the folder's images again."""
    write(gallery / "f" / "a.jpg", jpeg_bytes(64, 48, taken="2025:07:14 09:30:00"))
    write(gallery / "f" / "b.jpg", jpeg_bytes(64, 48, seed=2))
    write(gallery / "f" / "b.jpg.json", b'{"tags": ["x"], "star": 4}')
    requests = Requests()
    async with Lenslet(str(gallery), SETTINGS, observer=requests) as lens:
        await lens.index()  # thumbnails made: the index job below has no image work to do
        transport = httpx.ASGITransport(app=create_app(lens))
        async with httpx.AsyncClient(transport=transport, base_url="http://gallery") as http:
            items = {i["name"]: i for i in (await http.get("/folders?path=f")).json()["items"]}
            mtime = (gallery / "f" / "a.jpg").stat().st_mtime
            added = parse_time(items["a.jpg"]["addedAt"])
            assert added is not None
            assert abs(added.timestamp() - mtime) < 0.001  # to the millisecond
            assert items["a.jpg"]["addedAt"].endswith("Z")
            assert items["a.jpg"]["createdAt"] == "2025-07-14T09:30:00"
            assert items["b.jpg"]["createdAt"] is None
            assert (items["a.jpg"]["star"], items["b.jpg"]["star"]) == (None, 4)
            assert "metaStamp" not in items["b.jpg"]
            requests.clear()
            put = await http.put("/item", params={"path": "f/a.jpg"}, json={"star": 5})
            assert put.status_code == 200, put.text
            with anyio.fail_after(10):
                while True:
                    listed = (await http.get("/folders?path=f")).json()["items"]
                    if listed[0]["star"] == 5:
                        break
                    await anyio.sleep(0.05)
            assert listed[1]["star"] == 4
    assert requests.count("read", ".jpg") <= 1  # the PUT's EXIF basics; the index read none
    stored = orjson.loads((gallery / "f" / "_index.json").read_bytes())
    assert [i["star"] for i in stored["items"]] == [5, 4]


async def _item_paths(root: Path | str, settings: Settings, folder: str) -> list[str]:
    async with Lenslet(str(root), settings) as lens:
        transport = httpx.ASGITransport(app=create_app(lens))
        async with httpx.AsyncClient(transport=transport, base_url="http://gallery") as http:
            answer = await http.get("/folders", params={"path": folder})
            assert answer.status_code == 200, answer.text
            whole = [i["path"] for i in answer.json()["items"]]
            paged = await http.get("/folders", params={"path": folder, "page": 0})
            assert [i["path"] for i in paged.json()["items"]] == whole
            for path in whole:  # every link of the listing leads somewhere
                item = await http.get("/item", params={"path": path})
                assert item.status_code == 200, (path, item.text)
            return whole


@pytest.mark.parametrize("where", ["local", "s3"])
async def test_items_reached_through_a_pointer_carry_the_paths_they_were_reached_by(
    tmp_path: Path, where: str, request: pytest.FixtureRequest
) -> None:
    """A target indexed as a root of its own, then reached through two pointers (and the
    reverse): each answer names items by the way it was reached, whoever built the manifest."""
    gallery = tmp_path / "gallery"
    folder = "Fête à Montréal"
    if where == "local":
        target: str = str(tmp_path / "target")
        write(tmp_path / "target" / folder / "x.jpg", jpeg_bytes())
        settings = Settings(cpu_concurrency=2, pointer_roots=(target,))
        config: dict[str, object] = {"type": "local", "path": target}
    else:
        s3 = request.getfixturevalue("s3")
        s3.put(f"photos/{folder}/x.jpg", jpeg_bytes())
        target = s3.url("photos")
        settings = s3.settings
        config = {"type": "s3", "bucket": s3.bucket, "prefix": "photos"}
    pointer = orjson.dumps({"version": 1, "kind": "pointer", "target": config})
    write(gallery / "cloud" / ".lenscat.folder.json", pointer)
    write(gallery / "nested" / "again" / ".lenscat.folder.json", pointer)
    async with Lenslet(target, settings) as own:
        await own.index()  # the target's manifests, built under its own paths
    assert await _item_paths(gallery, settings, f"cloud/{folder}") == [f"cloud/{folder}/x.jpg"]
    assert await _item_paths(gallery, settings, f"/nested/again/{folder}") == [
        f"nested/again/{folder}/x.jpg"
    ]
    async with Lenslet(str(gallery), settings) as lens:
        await lens.index()  # and the reverse: manifests the pointer's side wrote
    assert await _item_paths(target, settings, folder) == [f"{folder}/x.jpg"]
    assert await _item_paths(gallery, settings, f"cloud/{folder}") == [f"cloud/{folder}/x.jpg"]
