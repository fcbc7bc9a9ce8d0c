"""The Dask engine against a real cluster on loopback: ``dask scheduler`` and ``lenslet worker``
processes, the real CLI and real servers, over a local root and the loopback S3 server."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import pyvips

from lenslet_core import DaskEngine, EngineUnavailable, Job, Lenslet, Settings
from tests.cluster import Cluster, cluster
from tests.conftest import S3
from tests.imagegen import jpeg_bytes, png_bytes, write
from tests.servers import free_port, lenslet, serving

pytestmark = pytest.mark.slow

AWS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def shared() -> Iterator[Cluster]:
    """A scheduler and two one-thread workers for the tests that leave them running."""
    with cluster(2, env=AWS) as running:
        yield running


def make_tree(root: Path) -> dict[str, bytes]:
    """A small gallery of real images: folders, a sidecar with tags, a corrupt file and one
    lenslet cannot show. Returns what was written, by relative path."""
    files = {
        "trip/beach.jpg": jpeg_bytes(640, 480, seed=1),
        "trip/dunes.png": png_bytes(500, 300, seed=2),
        "trip/day 2/boat.jpg": jpeg_bytes(300, 600, seed=3),
        "trip/day 2/broken.jpg": b"\xff\xd8\xff not a jpeg at all",
        "home/cat.jpg": jpeg_bytes(800, 600, seed=4),
        "home/cat.gif": b"GIF89a" + bytes(40),
        "home/cat.jpg.json": json.dumps({"v": 1, "tags": ["pets"], "notes": "sofa"}).encode(),
        "top.jpg": jpeg_bytes(120, 90, seed=5),
    }
    for name, data in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return files


def documents(files: dict[str, bytes], *, times: bool = True) -> dict[str, Any]:
    """What an index run wrote, less what differs between any two runs (build ids, the
    time of the run, a sidecar's own mtime; ``times``: also the images' times, for copies
    made at different times)."""
    result: dict[str, Any] = {}
    for name, data in sorted(files.items()):
        if name.endswith(".thumbnail"):
            result[name] = pyvips.Image.new_from_buffer(data, "").avg() // 1  # the same picture
            result[name + ":size"] = len(data)
            continue
        if not name.endswith(".json"):
            continue
        doc = json.loads(data)
        if not name.rsplit("/", 1)[-1].startswith("_"):  # a sidecar, with its EXIF basics
            doc.pop("updatedAt", None)
            result[name] = doc
            continue
        # (rollup: the rollup file's size and mtime as each run wrote it)
        for key in ("generatedAt", "build", "lastIndex", "jobs", "listing", "rollup"):
            doc.pop(key, None)
        for item in doc.get("items", []):
            item.pop("stamp", None)  # the sidecar's mtime: it was written by each run
            item.pop("metaStamp", None)
            if not times:
                item.pop("mtime", None)
                item.pop("addedAt", None)
        for folder in doc.get("folders", {}).values():
            if isinstance(folder, dict):
                folder.pop("manifest", None)
        if name.endswith("_rollup.json"):
            doc.pop("folders", None)
        for skipped in doc.get("skipped", []):
            if not times:
                skipped.pop("mtime", None)
        result[name] = doc
    return result


def index_in_background(root: Path, running: Cluster) -> subprocess.Popen[str]:
    """``lenslet index ROOT --scheduler`` as a process of its own, not waited for."""
    return subprocess.Popen(
        [sys.executable, "-m", "lenslet_cli", "index", str(root), "--no-progress",
         "--scheduler", running.address],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def first_started(running: Cluster, which: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first job a worker started that ``which`` picks, once there is one."""
    deadline = time.monotonic() + 60
    while not (started := [e for e in running.events() if which(e)]):
        assert time.monotonic() < deadline, "no such job started"
        time.sleep(0.05)
    return started[0]


def local_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_an_index_on_the_cluster_writes_what_an_in_process_index_writes(
    shared: Cluster, tmp_path: Path
) -> None:
    make_tree(tmp_path / "here")
    shutil.copytree(tmp_path / "here", tmp_path / "there")  # the same files, the same times
    here = lenslet("index", str(tmp_path / "here"), "--no-progress")
    there = lenslet(
        "index", str(tmp_path / "there"), "--no-progress", "--scheduler", shared.address
    )
    assert here.returncode == there.returncode == 1, there.stderr  # the corrupt file: skipped
    assert documents(local_files(tmp_path / "there")) == documents(local_files(tmp_path / "here"))
    assert there.stdout.split(" in ")[0] == here.stdout.split(" in ")[0]  # "indexed 5 images"
    ran = [e for e in shared.events() if e["root"] == str(tmp_path / "there")]
    assert sorted(e["path"] for e in ran if e["kind"] == "folder") == [
        "", "home", "trip", "trip/day 2"
    ]  # fmt: skip
    assert len({e["worker"] for e in ran}) >= 1
    assert not any(e["root"] == str(tmp_path / "here") for e in shared.events())


def test_an_index_on_the_cluster_over_s3_writes_what_an_in_process_index_writes(
    shared: Cluster, s3: S3, tmp_path: Path
) -> None:
    files = make_tree(tmp_path / "tree")
    for prefix in ("here", "there"):
        for name, data in files.items():
            s3.put(f"{prefix}/{name}", data)
    endpoint = ("--endpoint-url", s3.endpoint)
    here = lenslet("index", s3.url("here"), "--no-progress", *endpoint)
    there = lenslet("index", s3.url("there"), "--no-progress", *endpoint, "--scheduler",
                    shared.address)  # fmt: skip
    assert here.returncode == there.returncode == 1, there.stderr

    def stored(prefix: str) -> dict[str, bytes]:
        keys = s3.keys(prefix + "/")
        return {k.removeprefix(prefix + "/"): s3.get(k) for k in keys}

    assert documents(stored("there"), times=False) == documents(stored("here"), times=False)
    ran = [e for e in shared.events() if e["root"] == s3.url("there")]
    assert {e["kind"] for e in ran} == {"folder"}
    assert len(ran) == 4


def test_thumbnails_overtake_a_queue_of_index_jobs(shared: Cluster, tmp_path: Path) -> None:
    root = tmp_path / "many"
    for n in range(16):
        for i in range(3):
            folder = root / f"f{n:02}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i}.jpg").write_bytes(jpeg_bytes(1600, 1200, seed=n * 3 + i))
    started_before = 0

    async def main() -> None:
        nonlocal started_before
        engine = DaskEngine(shared.address)
        async with Lenslet(str(root), Settings(), engine=engine) as lens:
            assert engine.remote
            jobs = [Job("folder", lens.url, f"f{n:02}") for n in range(16)]
            handles = [await engine.submit(job) for job in jobs]
            await anyio.sleep(0.2)  # the workers are into the queue
            thumb = await engine.submit(Job("thumbnail", lens.url, "f15/2.jpg"))
            # Read after the submit: reading takes a while (a client connects) and jobs go on
            # starting meanwhile, so a count read before would undercount those ahead of it.
            events = await anyio.to_thread.run_sync(shared.events)
            started_before = sum(1 for e in events if e["root"] == lens.url)
            for handle in [thumb, *handles]:
                await handle.wait()
                assert handle.state == "done", handle.to_json()

    anyio.run(main)
    order = [e["path"] for e in shared.events() if e["root"] == str(root)]
    assert len(order) == 17
    # Besides the jobs started by the time it was queued, only those already handed to a worker
    # (a couple each) start ahead of the thumbnail; the rest of the queue waits behind it.
    assert order.index("f15/2.jpg") <= started_before + 4, (started_before, order)
    assert len(order) - order.index("f15/2.jpg") - 1 >= 4, (started_before, order)


def test_two_servers_asking_for_one_missing_thumbnail_make_one_task(
    shared: Cluster, tmp_path: Path
) -> None:
    root = tmp_path / "gallery"
    root.mkdir()
    (root / "big.jpg").write_bytes(jpeg_bytes(4000, 3000, seed=9))  # a task long enough to overlap
    args = (str(root), "--scheduler", shared.address, "--no-index", "--no-watch", "--no-ui")
    with serving(*args) as (_, one), serving(*args) as (_, two):
        barrier = threading.Barrier(2)

        def get(url: str) -> httpx.Response:
            barrier.wait()
            return httpx.get(f"{url}/thumb", params={"path": "/big.jpg"}, timeout=30)

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(get, [one, two]))
        assert [a.status_code for a in answers] == [200, 200]
        assert answers[0].content == answers[1].content
        assert answers[0].headers["content-type"] == "image/webp"
    made = [e for e in shared.events() if e["root"] == str(root) and e["kind"] == "thumbnail"]
    assert [e["path"] for e in made] == ["big.jpg"]
    assert (root / "big.jpg.thumbnail").read_bytes() == answers[0].content


def test_a_worker_killed_mid_task_leaves_its_folder_to_another_and_no_partial_file(
    tmp_path: Path,
) -> None:
    root = tmp_path / "gallery"
    (root / "big").mkdir(parents=True)
    for i in range(8):  # PNG: no shrink-on-load, so the folder's job lasts a while
        (root / "big" / f"{i}.png").write_bytes(png_bytes(2400, 1600, seed=i))
    with cluster(2) as running:
        run = index_in_background(root, running)
        victim = first_started(running, lambda e: e["path"] == "big")["worker"]
        time.sleep(0.2)  # mid-task: some thumbnails written, others being made
        running.kill_worker(victim)
        out, err = run.communicate(timeout=120)
        ran = [e["worker"] for e in running.events() if e["path"] == "big"]
    assert run.returncode == 0, err
    assert "8 images" in out
    assert ran[0] == victim
    assert ran[-1] != victim  # run again, elsewhere
    leftovers = [p.name for p in root.rglob("*") if ".tmp" in p.name]
    assert leftovers == []
    manifest = json.loads((root / "big" / "_index.json").read_text())
    assert [i["hasThumb"] for i in manifest["items"]] == [True] * 8
    for i in range(8):
        thumb = pyvips.Image.new_from_file(str(root / "big" / f"{i}.png.thumbnail"))
        assert max(thumb.width, thumb.height) == 256


def test_a_scheduler_that_does_not_answer_stops_index_serve_and_worker_with_exit_3(
    tmp_path: Path,
) -> None:
    nowhere = f"tcp://127.0.0.1:{free_port()}"
    root = tmp_path / "gallery"
    root.mkdir()
    runs = [
        ("index", str(root), "--scheduler", nowhere),
        ("serve", str(root), "--scheduler", nowhere, "--port", str(free_port())),
        ("worker", "--scheduler", nowhere, "--connect-timeout", "2"),
    ]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        done = list(pool.map(lambda args: lenslet(*args), runs))
    for result in done:
        assert result.returncode == 3, (result.args, result.stderr)
        assert f"the Dask scheduler at {nowhere} does not answer" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_server_that_loses_its_scheduler_says_so_within_2_s_makes_thumbnails_itself_and_rejoins(
    tmp_path: Path,
) -> None:
    root = tmp_path / "gallery"
    root.mkdir()
    (root / "a.jpg").write_bytes(jpeg_bytes(800, 600, seed=1))
    (root / "b.jpg").write_bytes(jpeg_bytes(800, 600, seed=2))
    with cluster(1) as running:
        args = (str(root), "--scheduler", running.address, "--no-index", "--no-watch", "--no-ui")
        with serving(*args) as (_, url):
            first = httpx.get(f"{url}/thumb", params={"path": "/a.jpg"}, timeout=30)
            assert first.status_code == 200
            health = httpx.get(f"{url}/health").json()
            assert health["jobs"]["cluster"]["connected"] is True
            assert health["jobs"]["cluster"]["workers"] == 1
            running.kill_scheduler()
            lost = time.monotonic()
            while httpx.get(f"{url}/health").json()["jobs"]["cluster"]["connected"]:
                assert time.monotonic() - lost < 2.0, "health still says connected"
                time.sleep(0.05)
            said = httpx.get(f"{url}/health")
            assert said.status_code == 200  # the server still serves
            assert "does not answer" in said.json()["jobs"]["cluster"]["error"]
            second = httpx.get(f"{url}/thumb", params={"path": "/b.jpg"}, timeout=30)
            assert second.status_code == 200
            assert second.headers["content-type"] == "image/webp"
            assert (root / "b.jpg.thumbnail").read_bytes() == second.content
            metrics = httpx.get(f"{url}/metrics").text
            assert "lenslet_cluster_connected 0.0" in metrics
            assert "lenslet_cluster_workers 0.0" in metrics
            time.sleep(6)  # past the 5 s in which Dask's client tries to reconnect by itself
            assert httpx.get(f"{url}/health").json()["jobs"]["cluster"]["connected"] is False
            # The scheduler back (restarted): the worker joins it again, and so does the server.
            running.start_scheduler()
            deadline = time.monotonic() + 30
            while (cluster_now := httpx.get(f"{url}/health").json()["jobs"]["cluster"])[
                "workers"
            ] != 1:
                assert time.monotonic() < deadline, cluster_now
                time.sleep(0.2)
            assert cluster_now["connected"] is True
            (root / "a.jpg.thumbnail").unlink()
            third = httpx.get(f"{url}/thumb", params={"path": "/a.jpg"}, timeout=30)
            assert third.status_code == 200
            assert [e["path"] for e in running.events() if e["kind"] == "thumbnail"] == ["a.jpg"]


def test_entering_the_engine_without_a_scheduler_raises_engine_unavailable(tmp_path: Path) -> None:
    engine = DaskEngine(f"tcp://127.0.0.1:{free_port()}", connect_timeout=1)

    async def main() -> None:
        async with Lenslet(str(tmp_path), Settings(), engine=engine):
            pass

    with pytest.raises(EngineUnavailable, match="does not answer"):
        anyio.run(main)


def test_no_dask_import_without_a_scheduler(tmp_path: Path) -> None:
    code = (
        "import sys; from lenslet_cli.main import app; "
        "from typer.testing import CliRunner; "
        f"r = CliRunner().invoke(app, ['index', {str(tmp_path)!r}]); "
        "assert r.exit_code == 0, r.output; assert 'distributed' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})


def test_a_server_on_the_cluster_sends_its_watch_waves_there(
    shared: Cluster, tmp_path: Path
) -> None:
    root = tmp_path / "gallery"
    (root / "new").mkdir(parents=True)
    with serving(str(root), "--scheduler", shared.address, "--no-ui", "--watch") as (_, url):
        assert httpx.get(f"{url}/health").json()["jobs"]["cluster"]["workers"] == 2
        time.sleep(1.5)  # the watcher is listening (it hears changes within a second)
        (root / "new" / "arrived.jpg").write_bytes(jpeg_bytes(640, 480, seed=7))
        deadline = time.monotonic() + 30
        while True:
            page = httpx.get(f"{url}/folders", params={"path": "/new"}).json()
            if [i.get("hasThumb") for i in page["items"]] == [True]:
                break
            assert time.monotonic() < deadline, page
            time.sleep(0.2)
    ran = [(e["kind"], e["path"]) for e in shared.events() if e["root"] == str(root)]
    assert ("folder", "new") in ran  # the wave's index job: its folder's work on a worker
    assert (root / "new" / "arrived.jpg.thumbnail").is_file()


def test_task_keys_share_one_group_and_only_thumbnails_share_a_key() -> None:
    from dask.utils import key_split

    from lenslet_core.dask_engine import task_key
    from lenslet_core.work import FOLDER, INDEX, THUMBNAIL

    thumb = Job("thumbnail", "s3://b/p", "a/x.jpg")
    assert task_key(thumb, THUMBNAIL, "1") == task_key(thumb, THUMBNAIL, "2")
    folder = Job("folder", "s3://b/p", "a")
    assert task_key(folder, FOLDER, "1") != task_key(folder, FOLDER, "2")
    keys = [task_key(thumb, THUMBNAIL), task_key(folder, FOLDER, "1"), task_key(folder, INDEX, "3")]
    assert {key_split(k) for k in keys} == {"lenslet"}  # one task group: strict priorities


def test_a_gallery_runs_only_jobs_of_its_own_root(tmp_path: Path) -> None:
    from lenslet_core import InvalidParameter

    async def main() -> None:
        async with Lenslet(str(tmp_path), Settings()) as lens:
            with pytest.raises(InvalidParameter, match="sent to the gallery"):
                await lens.run_job(Job("index", "/elsewhere", ""))
            report = await lens.run_job(Job("folder", lens.url, ""))
            assert report.indexed
            assert report.report.folders == 1

    anyio.run(main)


def thumb_when_ready(server: str, image: str, *, within: float = 60) -> httpx.Response:
    """``GET /thumb`` as a client asks it: again after each 503's ``Retry-After``."""
    deadline = time.monotonic() + within
    while True:
        answer = httpx.get(f"{server}/thumb", params={"path": image}, timeout=30)
        if answer.status_code != 503 or time.monotonic() > deadline:
            return answer
        time.sleep(min(float(answer.headers.get("retry-after", "1")), 2))


def test_two_servers_and_the_workers_share_an_s3_root(shared: Cluster, s3: S3) -> None:
    s3.put("gallery/trip/a.jpg", jpeg_bytes(1200, 900, seed=11))
    s3.put("gallery/trip/b.png", png_bytes(800, 600, seed=12))
    args = (s3.url(), "--endpoint-url", s3.endpoint, "--scheduler", shared.address, "--no-ui",
            "--no-index", "--no-watch")  # fmt: skip
    with serving(*args) as (_, one), serving(*args) as (_, two):
        # A worker's first job loads libvips; past the route's short wait that is a 503 with
        # Retry-After, which a client follows (as the web clients do).
        a = thumb_when_ready(one, "/trip/a.jpg")
        b = thumb_when_ready(two, "/trip/b.png")
        assert (a.status_code, b.status_code) == (200, 200)
        # Each made by a worker and kept in the bucket: the other server serves it as stored.
        assert httpx.get(f"{two}/thumb", params={"path": "/trip/a.jpg"}).content == a.content
        assert httpx.get(f"{one}/thumb", params={"path": "/trip/b.png"}).content == b.content
        tagged = httpx.put(f"{one}/item", params={"path": "/trip/a.jpg"}, json={"tags": ["sea"]})
        assert tagged.status_code == 200, tagged.text
        assert httpx.get(f"{two}/item", params={"path": "/trip/a.jpg"}).json()["tags"] == ["sea"]
    assert s3.get("gallery/trip/a.jpg.thumbnail") == a.content
    assert s3.get("gallery/trip/b.png.thumbnail") == b.content
    made = [e for e in shared.events() if e["root"] == s3.url() and e["kind"] == "thumbnail"]
    assert sorted(e["path"] for e in made) == ["trip/a.jpg", "trip/b.png"]


def test_a_run_whose_last_worker_leaves_finishes_in_process(tmp_path: Path) -> None:
    root = tmp_path / "gallery"
    for f in range(4):
        for i in range(4):
            write(root / f"f{f}" / f"{i}.png", png_bytes(1600, 1200, seed=f * 4 + i))
    with cluster(1) as running:
        run = index_in_background(root, running)
        first_started(running, lambda e: e["kind"] == "folder")
        running.kill_worker(next(iter(running.workers)))
        out, err = run.communicate(timeout=60)  # not forever: what the cluster held runs here
    assert run.returncode == 0, err
    assert "16 images in 5 folders" in out
    assert len(list(root.rglob("*.png.thumbnail"))) == 16
    assert "no workers" in err


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root")
def test_a_worker_that_does_not_see_the_root_loses_nothing(shared: Cluster, tmp_path: Path) -> None:
    root = tmp_path / "gallery"
    make_tree(root)
    assert lenslet("index", str(root), "--no-progress").returncode == 1
    rollup = json.loads((root / "_rollup.json").read_bytes())
    with cluster(0) as blind:
        # Its only worker sees an empty folder where the root is (a mount that is not there).
        hide = ("unshare", "-m", "sh", "-c", f'mount -t tmpfs none {root} && exec "$@"', "-")
        blind.start_worker(prefix=hide)
        (root / "trip" / "new.jpg").write_bytes(jpeg_bytes(200, 100, seed=8))
        done = lenslet("index", str(root), "--no-progress", "--scheduler", blind.address)
    assert done.returncode == 3, done.stderr  # not one folder could be indexed: a failure
    assert "does not see the same root" in done.stdout
    kept = json.loads((root / "_rollup.json").read_bytes())
    assert kept["items"] == rollup["items"]  # nothing forgotten
    assert json.loads((root / "_health.json").read_bytes())["counts"]["items"] == 5


def test_a_folder_job_for_a_folder_that_is_gone_is_no_failure(tmp_path: Path) -> None:
    async def main() -> None:
        async with Lenslet(str(tmp_path), Settings()) as lens:
            outcome = await lens.run_job(Job("folder", lens.url, "gone"))
            assert outcome.gone
            assert not outcome.indexed
            assert lens.stats().jobs.failed == 0  # health stays ok

    anyio.run(main)
