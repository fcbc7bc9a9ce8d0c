"""S3 roots end to end, against a real S3 API server on loopback (``tests/s3server.py``), and
the request budget: each test counts the requests that reach the server."""

from __future__ import annotations

import collections
import concurrent.futures
import time

import anyio
import orjson
import pytest

from lenslet_core import Lenslet, NotFound, Settings, StorageError, Wave
from tests.conftest import S3
from tests.imagegen import jpeg_bytes, png_bytes

pytestmark = pytest.mark.anyio


def kinds(requests: list[tuple[str, str, str]], under: str) -> collections.Counter[str]:
    """Requests on keys under ``under`` (a bucket/prefix path), by kind: LIST, GET, HEAD,
    PUT and DELETE, with what they touched (image, thumbnail, sidecar, manifest)."""
    counted: collections.Counter[str] = collections.Counter()
    for method, path, query in requests:
        if method == "GET" and "list-type" in query:
            if f"prefix={under.split('/', 1)[1]}/&" in query.replace("%2F", "/"):
                # A listing's further pages (1,000 keys each) carry a continuation token.
                counted["LIST more" if "continuation-token" in query else "LIST"] += 1
            continue
        if not path.startswith(f"/{under}/"):
            continue
        name = path.rsplit("/", 1)[-1]
        what = (
            "thumbnail"
            if name.endswith(".thumbnail")
            else "manifest"
            if name.startswith("_index")
            else "sidecar"
            if name.endswith(".json")
            else "image"
        )
        counted[f"{method} {what}"] += 1
    return counted


def album(s3: S3, count: int, folder: str = "gallery/album") -> None:
    small = jpeg_bytes(48, 36)
    for n in range(count):
        s3.put(f"{folder}/IMG_{n:04d}.jpg", jpeg_bytes(48, 36, seed=n) if n < 3 else small)


async def test_first_index_of_a_1000_image_folder_stays_in_budget(s3: S3) -> None:
    album(s3, 1000)
    s3.reset()
    async with Lenslet(s3.url(), s3.settings) as lens:
        report = await lens.index()
    assert report.items == 1000
    assert report.ok, report.skipped
    counted = kinds(s3.requests(), f"{s3.bucket}/gallery/album")
    # One listing to build from, one to see that no image went while its thumbnail was made.
    assert counted["LIST"] == 2, counted
    assert counted["GET image"] == 1000
    assert counted["PUT thumbnail"] == 1000
    assert counted["PUT manifest"] == 1
    assert counted["HEAD image"] == counted["HEAD thumbnail"] == 0, counted
    assert set(counted) <= {"LIST", "LIST more", "GET image", "PUT thumbnail", "PUT manifest"}
    assert len(s3.keys("gallery/album/")) == 2001  # images, thumbnails, manifest

    s3.reset()
    async with Lenslet(s3.url(), s3.settings) as lens:
        again = await lens.index()
    assert again.items == 1000
    assert again.analyzed == 0
    counted = kinds(s3.requests(), f"{s3.bucket}/gallery/album")
    assert counted["LIST"] == 1, counted
    assert counted["LIST more"] == 2  # 2,001 keys now: images, thumbnails, manifest
    assert counted["GET image"] == 0
    assert counted["PUT manifest"] == counted["PUT thumbnail"] == 0, counted
    assert counted["GET manifest"] == 1  # read to reuse, not written again


async def test_folders_from_a_fresh_manifest_cost_one_get_then_none(s3: S3) -> None:
    album(s3, 30)
    async with Lenslet(s3.url(), s3.settings) as lens:
        await lens.index()
    async with Lenslet(s3.url(), s3.settings) as lens:
        s3.reset()
        first = await lens.folder("album")
        assert len(first.items) == 30
        counted = kinds(s3.requests(), f"{s3.bucket}/gallery/album")
        assert counted == {"GET manifest": 1}, counted
        s3.reset()
        await lens.folder("album")  # cached and still within manifest_ttl
        assert s3.requests() == []


async def test_item_without_sidecar_costs_one_request_past_the_manifest(s3: S3) -> None:
    album(s3, 5)
    async with Lenslet(s3.url(), s3.settings) as lens:
        await lens.index()
        await lens.folder("album")
        s3.reset()
        item = await lens.item("album/IMG_0001.jpg")
        assert item.to_json()["exif"]["width"] == 48
        assert not item.exists
        assert len(s3.requests()) <= 1, s3.requests()
        # Once a sidecar is written here, the manifest's hasMeta is not trusted until it
        # shows it: the tag is there on the next read.
        await lens.update_item("album/IMG_0001.jpg", {"tags": ["sea"]})
        assert (await lens.item("album/IMG_0001.jpg")).sidecar.tags == ("sea",)


async def test_everything_a_local_root_does_works_on_s3(s3: S3) -> None:
    s3.put("gallery/trip/beach.jpg", jpeg_bytes(640, 480, seed=1))
    s3.put("gallery/trip/dunes.png", png_bytes(300, 200))
    s3.put("gallery/trip/notes.txt", b"not an image")
    async with Lenslet(s3.url(), s3.settings) as lens:
        report = await lens.index()
        assert report.items == 2
        page = await lens.folder("trip")
        assert [(i.name, i.hasThumb) for i in page.items] == [
            ("beach.jpg", True),
            ("dunes.png", True),
        ]
        thumb = await lens.thumbnail("trip/beach.jpg")
        assert thumb.data[8:12] == b"WEBP"  # type: ignore[union-attr]
        item = await lens.update_item("trip/beach.jpg", {"tags": ["sea"], "star": 4})
        assert item.sidecar.tags == ("sea",)
        assert s3.get("gallery/trip/beach.jpg.json").startswith(b"{")
        original = await lens.original("trip/beach.jpg")
        assert (await lens.read_original(original.path, 0, 4))[:3] == b"\xff\xd8\xff"
        await anyio.sleep(1.2)  # the rollup job coalesces writes for a second
        found = await lens.search("sea")
        assert [i.path for i in found] == ["trip/beach.jpg"]
        path = await lens.upload("inbox", "new.jpg", jpeg_bytes(20, 20, seed=5))
        assert path == "inbox/new.jpg"
        moved = await lens.move("inbox/new.jpg", "trip/new.jpg")
        assert moved == "trip/new.jpg"
        assert await lens.delete(["trip/new.jpg"]) == ["trip/new.jpg"]
        health = await lens.health_report()
        assert health["counts"]["items"] >= 2
    keys = s3.keys("gallery/")
    assert "gallery/trip/beach.jpg.thumbnail" in keys
    assert "gallery/_rollup.json" in keys
    assert "gallery/_health.json" in keys
    assert not [k for k in keys if "new.jpg" in k]


async def test_two_servers_writing_one_sidecar_lose_no_tag(s3: S3) -> None:
    s3.put("gallery/a.jpg", jpeg_bytes(32, 32))
    # Two facades, each with its own S3 client: as two servers on one bucket.
    one = Lenslet(s3.url(), s3.settings, storage_options={"skip_instance_cache": True})
    two = Lenslet(s3.url(), s3.settings, storage_options={"skip_instance_cache": True})
    async with one, two:

        async def tag(lens: Lenslet, n: int) -> None:
            await lens.update_item("a.jpg", {"tags": [f"t{n}"]})

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(tag, one if n % 2 else two, n)
        final = await one.item("a.jpg")
    assert set(final.sidecar.tags) == {f"t{n}" for n in range(20)}


async def test_a_missing_bucket_is_named_with_what_to_check(s3: S3) -> None:
    with pytest.raises(NotFound) as info:
        async with Lenslet(f"s3://no-such-bucket-{s3.bucket}/x", s3.settings):
            pass
    assert "no-such-bucket" in info.value.message
    assert "--endpoint-url" in info.value.message


async def test_an_unreachable_endpoint_says_so(s3: S3) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there
    settings = Settings().with_s3(endpoint_url=f"http://127.0.0.1:{port}")
    options = {"skip_instance_cache": True, "config_kwargs": {"retries": {"max_attempts": 1}}}
    with pytest.raises(StorageError, match="cannot reach the S3 endpoint"):
        async with Lenslet(s3.url(), settings, storage_options=options):
            pass


async def test_watching_an_s3_root_lists_it_on_an_interval(s3: S3) -> None:
    import dataclasses

    album(s3, 2)
    settings = dataclasses.replace(s3.settings, watch_interval=0.2)
    async with Lenslet(s3.url(), settings) as lens:
        await lens.index()
        indexed: set[str] = set()
        done = anyio.Event()

        async def seen(wave: Wave) -> None:
            indexed.update(wave.folders | wave.new_folders)
            if {"album", "fresh"} <= indexed:  # the two puts may fall in two listings
                done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: lens.watch(stop=done, on_wave=seen))
            await anyio.sleep(0.3)  # the baseline listing is taken
            s3.put("gallery/album/new.jpg", jpeg_bytes(40, 30, seed=7))
            s3.put("gallery/fresh/one.jpg", jpeg_bytes(40, 30, seed=8))
            with anyio.fail_after(20):
                await done.wait()
        page = await lens.folder("album")
        assert "new.jpg" in [i.name for i in page.items]
        assert "fresh" in [d.name for d in (await lens.folder("")).dirs]
        assert [i.name for i in (await lens.folder("fresh")).items] == ["one.jpg"]
    assert "gallery/album/new.jpg.thumbnail" in s3.keys("gallery/album/")


async def test_first_index_with_sidecars_and_a_burst_of_edits_stay_in_budget(s3: S3) -> None:
    """A folder with sidecars, indexed, then 100 tag edits: each edit costs its sidecar's GET
    and PUT, and the rollup is written at most about once a second — no LIST, no manifest,
    no health and no HEAD per edit."""
    album(s3, 20)
    for n in range(20):
        s3.put(f"gallery/album/IMG_{n:04d}.jpg.json", b'{"tags": ["old"]}')
    s3.reset()
    async with Lenslet(s3.url(), s3.settings) as lens:
        report = await lens.index()
        assert report.items == 20
        counted = kinds(s3.requests(), f"{s3.bucket}/gallery/album")
        heads = [p for m, p, _ in s3.requests() if m == "HEAD"]
        # No HEAD per image or sidecar (the refreshed sidecars' stamps come from one more
        # listing); the bucket once, the rollup's stamp when read and when written.
        assert counted["HEAD image"] == counted["HEAD sidecar"] == 0, counted
        assert len(heads) <= 3, heads
        assert counted["LIST"] == 2, counted
        assert counted["GET image"] == 20
        # Each sidecar: read once for its star (the refresh of its EXIF basics writes from
        # that read), written once; the rollup takes what was written (the listing after the
        # build shows the ETag of that write), not a second read.
        assert counted["PUT sidecar"] == 20, counted
        assert counted["GET sidecar"] == 20, counted
        page = await lens.folder("album")
        assert all(i.hasMeta for i in page.items)
        s3.reset()
        began = time.monotonic()

        async def edit(n: int) -> None:
            for round_ in range(5):
                image = f"album/IMG_{n:04d}.jpg"
                await lens.update_item(image, {"tags": [f"t{n}-{round_}"]})

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(edit, n)
        elapsed = time.monotonic() - began
    counted = kinds(s3.requests(), f"{s3.bucket}/gallery/album")
    every = kinds(s3.requests(), f"{s3.bucket}/gallery")
    assert counted["PUT sidecar"] == 100, counted
    assert counted["GET sidecar"] == 100, counted
    assert counted["HEAD image"] == counted["HEAD sidecar"] == 0, counted
    assert counted["LIST"] == counted["GET manifest"] == counted["PUT manifest"] == 0, counted
    rollup_puts = sum(1 for m, p, _ in s3.requests() if m == "PUT" and p.endswith("_rollup.json"))
    health_puts = sum(1 for m, p, _ in s3.requests() if m == "PUT" and p.endswith("_health.json"))
    assert 1 <= rollup_puts <= elapsed + 2, (rollup_puts, elapsed)
    assert health_puts <= 1, every


async def test_a_first_index_reads_each_sidecar_that_has_its_basics_once(s3: S3) -> None:
    """A gallery copied to S3 with its sidecars (EXIF basics and hash in them already): the
    rollup takes each sidecar from the index's read for its star, not from a second GET."""
    album(s3, 20, folder="first/album")
    for n in range(20):
        s3.put(f"first/album/IMG_{n:04d}.jpg.json", orjson.dumps({"tags": [f"tag{n}"]}))
    async with Lenslet(s3.url("first"), s3.settings) as lens:
        await lens.index()  # writes the basics into the sidecars
    for key in s3.keys("first/album/"):
        if key.endswith((".jpg", ".jpg.json")):
            s3.put(key.replace("first/", "gallery/", 1), s3.get(key))
    s3.reset()
    async with Lenslet(s3.url(), s3.settings) as lens:
        report = await lens.index()
        counted = kinds(s3.requests(), f"{s3.bucket}/gallery/album")
        found = [hit.path for hit in await lens.search("tag7")]
    assert report.items == 20
    assert report.sidecars_refreshed == 0
    assert counted["GET sidecar"] == 20, counted
    assert counted["PUT sidecar"] == 0, counted
    assert found == ["album/IMG_0007.jpg"]


async def test_an_empty_prefix_is_an_empty_gallery(s3: S3) -> None:
    s3.put("elsewhere/x.jpg", jpeg_bytes())  # the bucket has objects, the prefix none
    async with Lenslet(s3.url("empty/gallery"), s3.settings) as lens:
        report = await lens.index()
        assert (report.items, report.ok) == (0, True)
        root = await lens.folder("")
        assert (root.items, root.dirs) == ((), ())
        assert (await lens.whole_folder("/")).items == ()
        assert await lens.search("x") == []
        # The first image arrives: the gallery has it.
        await lens.upload("", "first.jpg", jpeg_bytes())
        assert [i.name for i in (await lens.folder("", refresh=True)).items] == ["first.jpg"]


def test_the_cli_indexes_an_empty_prefix(s3: S3) -> None:
    from typer.testing import CliRunner

    from lenslet_cli import app

    s3.put("elsewhere/x.jpg", jpeg_bytes())
    runner = CliRunner()
    indexed = runner.invoke(app, ["index", s3.url("nothing/here"), "--endpoint-url", s3.endpoint])
    assert indexed.exit_code == 0, indexed.output
    health = runner.invoke(app, ["health", s3.url("nothing/here"), "--endpoint-url", s3.endpoint])
    assert health.exit_code == 0, health.output


async def test_a_star_set_twice_within_a_second_reaches_the_manifest(s3: S3) -> None:
    """S3 keeps mtimes to the second, and star 3 and star 4 are sidecars of one size: the
    listing still tells the two versions apart, so the manifest shows the last."""
    album(s3, 2)
    async with Lenslet(s3.url(), s3.settings) as lens:
        await lens.index()
        for star in (3, 4):
            await lens.update_item("album/IMG_0000.jpg", {"star": star})
        await lens.index()
        page = await lens.folder("album", refresh=False)
        assert [i.star for i in page.items] == [4, None]


def slow_album(endpoint: str, widths: list[int], sidecars: dict[str, bytes] | None = None) -> S3:
    """A fresh ``slow-`` bucket (every answer held back 0.2 s) whose ``gallery/album`` holds
    an image of each width (``IMG_0000.jpg``, ...) and ``sidecars`` (by image name)."""
    import uuid

    slow = S3(endpoint, f"slow-{uuid.uuid4().hex[:20]}")
    client = slow.client()
    client.create_bucket(Bucket=slow.bucket)
    files = {f"IMG_{n:04d}.jpg": jpeg_bytes(w, 36, seed=n) for n, w in enumerate(widths)}
    files |= {f"{name}.json": data for name, data in (sidecars or {}).items()}
    with concurrent.futures.ThreadPoolExecutor(20) as pool:  # 0.2 s each
        for name, data in files.items():
            pool.submit(
                client.put_object, Bucket=slow.bucket, Key=f"gallery/album/{name}", Body=data
            )
    return slow


async def test_a_first_index_keeps_io_concurrency_reads_and_writes_in_flight(
    s3_endpoint: str,
) -> None:
    # 16 image GETs and 16 thumbnail PUTs at once, each kind in its own lane. botocore keeps
    # 10 connections unless told otherwise: past them a request waits for one without being
    # sent, so an index allowed 16 requests at once sent only 10.
    slow = slow_album(s3_endpoint, [48] * 40)
    settings = Settings(cpu_concurrency=2, io_concurrency=16).with_s3(endpoint_url=s3_endpoint)
    slow.reset()
    async with Lenslet(slow.url(), settings) as lens:
        report = await lens.index()
    assert report.thumbnails_made == 40
    assert 16 < slow.peak() <= 32  # both lanes at once, neither past its 16


async def test_a_first_index_reads_and_refreshes_sidecars_while_it_reads_images(
    s3_endpoint: str,
) -> None:
    # Each sidecar is read beside its image and refreshed once both are in, not in waves
    # after the folder's images: with every answer held back, a wave costs its round trips.
    tagged = {f"IMG_{n:04d}.jpg" for n in (0, 1)}  # the largest: in the first batches
    document = orjson.dumps({"v": 1, "tags": ["kept"], "star": 3})
    slow = slow_album(s3_endpoint, [96, 96] + [48] * 38, dict.fromkeys(tagged, document))
    settings = Settings(cpu_concurrency=2, io_concurrency=8).with_s3(endpoint_url=s3_endpoint)
    slow.reset()
    async with Lenslet(slow.url(), settings) as lens:
        report = await lens.index()
        requests = slow.requests()
        items = {i.name: i for i in (await lens.folder("album", refresh=False)).items}
        kept = {name: await lens.item(f"album/{name}") for name in tagged}
        found = [hit.path for hit in await lens.search("kept")]
    assert report.ok, report.skipped
    assert report.sidecars_refreshed == 2
    assert {name: items[name].star for name in tagged} == {name: 3 for name in tagged}
    assert all(i.sidecar.tags == ("kept",) and i.sidecar.hash for i in kept.values())
    log = [(method, path.rsplit("/", 1)[-1]) for method, path, _ in requests]
    image_gets = [n for n, (m, name) in enumerate(log) if m == "GET" and name.endswith(".jpg")]
    sidecar_names = {f"{name}.json" for name in tagged}
    refreshes = [n for n, (m, name) in enumerate(log) if m == "PUT" and name in sidecar_names]
    assert len(image_gets) == 40
    assert len(refreshes) == 2
    assert max(refreshes) < image_gets[-1]  # both done while images were still being read
    # Each sidecar read once: the rollup takes what the refresh wrote (its ETag is listed).
    assert sum(1 for m, name in log if m == "GET" and name in sidecar_names) == 2
    assert sorted(found) == sorted(f"album/{name}" for name in tagged)


async def test_a_sidecar_written_between_its_refresh_and_the_relisting_is_read_again(
    s3_endpoint: str,
) -> None:
    # The index refreshes a sidecar's EXIF basics, then lists the folder for the new stamps;
    # a star and tag set between the two are another version than the one it wrote (the
    # ETags differ): read by the rollup now and, for the star, by the next run.
    import threading

    old = b'{"tags": ["old"], "star": 3}'
    slow = slow_album(s3_endpoint, [96] + [48] * 39, {"IMG_0000.jpg": old})  # the largest first
    client, sidecar = slow.client(), "gallery/album/IMG_0000.jpg.json"
    settings = Settings(cpu_concurrency=2, io_concurrency=4).with_s3(endpoint_url=s3_endpoint)
    # Four requests at a time: the folder takes seconds, the tag is typed well before its end.
    slow.reset()
    written_at: list[int] = []

    def type_a_tag() -> None:  # another client, once the index's refresh is in
        for _ in range(300):
            if any(m == "PUT" and p.endswith(sidecar) for m, p, _ in slow.requests()):
                break
            time.sleep(0.02)
        time.sleep(0.3)  # that PUT answered
        body = b'{"tags": ["typed"], "star": 5}'
        client.put_object(Bucket=slow.bucket, Key=sidecar, Body=body)
        written_at.append(len(slow.requests()))

    typist = threading.Thread(target=type_a_tag)
    typist.start()
    try:
        async with Lenslet(slow.url(), settings) as lens:
            report = await lens.index()
            found = [hit.path for hit in await lens.search("typed")]
    finally:
        typist.join()
    log = slow.requests()
    lists = [n for n, (m, _, q) in enumerate(log) if m == "GET" and "album" in q]
    assert report.sidecars_refreshed == 1
    assert len(written_at) == 1
    assert lists[-1] >= written_at[0]  # the folder relisted after the tag was typed
    assert found == ["album/IMG_0000.jpg"]
    document = orjson.loads(slow.get(sidecar))
    assert (document["star"], document["tags"]) == (5, ["typed"])
    async with Lenslet(slow.url(), settings) as lens:
        await lens.index()
        page = await lens.folder("album", refresh=False)
    assert {i.name: i.star for i in page.items}["IMG_0000.jpg"] == 5
