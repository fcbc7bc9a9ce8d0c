from __future__ import annotations

import datetime
import json
import multiprocessing
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lenslet_core import (
    ABSENT_ETAG,
    Exif,
    Lenslet,
    MalformedDocument,
    NotFound,
    ReadOnly,
    Settings,
    Sidecar,
    UnsupportedVersion,
)
from lenslet_core.codec import format_time, parse_time
from lenslet_core.hashing import hash_bytes
from lenslet_core.sidecar import Edit, decide, normalize_etag, same_but_derived
from tests.conftest import Requests
from tests.imagegen import jpeg_bytes, write

pytestmark = pytest.mark.anyio

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def at(seconds: int) -> str:
    return format_time(T0 + datetime.timedelta(seconds=seconds))


def read_json(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(path.read_bytes())
    return document


@pytest.fixture
def photo(gallery: Path) -> Path:
    return write(gallery / "trip" / "beach.jpg", jpeg_bytes(64, 48, taken="2025:07:14 09:30:00"))


# -- merge rules (pure) --------------------------------------------------------------------------

tags = st.lists(st.text(min_size=1, max_size=6), max_size=6)
times = st.one_of(st.none(), st.integers(0, 10**6).map(at))
extras = st.dictionaries(st.sampled_from(["star", "color", "original_position"]), st.integers())


def sidecars() -> st.SearchStrategy[Sidecar]:
    return st.builds(
        Sidecar,
        tags=tags.map(lambda t: tuple(dict.fromkeys(t))),
        notes=st.text(max_size=10),
        updated_at=times,
        extra=extras,
    )


NOW = T0 + datetime.timedelta(seconds=5 * 10**5)


@st.composite
def edits(draw: st.DrawFn, stored: Sidecar | None) -> dict[str, Any]:
    """A client's body: each field present or absent, with the stored stamp echoed (in
    either spelling), the client's own stamp, both, or none."""
    body: dict[str, Any] = {}
    if draw(st.booleans()):
        body["tags"] = draw(tags)
    if draw(st.booleans()):
        body["notes"] = draw(st.text(max_size=10))
    body.update(draw(extras))
    stamp = draw(st.sampled_from(["echo-camel", "echo-snake", "echo-and-own", "own", "none"]))
    echoed = stored.updated_at if stored is not None else None
    own = draw(times)
    if stamp == "echo-camel":
        body["updatedAt"] = echoed
    elif stamp == "echo-snake":
        body["updated_at"] = echoed
    elif stamp == "echo-and-own":
        body.update(updatedAt=echoed, updated_at=own)
    elif stamp == "own":
        body["updated_at"] = own
    return body


@given(st.data(), st.one_of(st.none(), sidecars()), st.sampled_from(["fresh", "stale", None]))
def test_the_write_rules_table(
    data: st.DataObject, stored: Sidecar | None, if_match: str | None
) -> None:
    """Present/absent fields x If-Match fresh/stale/absent x echoed/own/no stamp: no field the
    body does not name changes, and no tag is lost but one removed from the version the
    client saw (a fresh If-Match, or its stamp echoed without one)."""
    body = data.draw(edits(stored))
    wanted = {"fresh": "e1", "stale": "e0", None: None}[if_match]
    result = decide(
        (stored, "e1") if stored else None, Edit.from_body(body), wanted, now=NOW, writer="web"
    )
    current = stored or Sidecar()
    echoed = current.updated is not None and current.updated in {
        parse_time(body.get("updatedAt")),
        parse_time(body.get("updated_at")),
    }
    as_sent = stored is None or wanted == "e1" or (wanted is None and echoed)
    if "tags" in body:
        sent = tuple(dict.fromkeys(body["tags"]))
        assert result.tags == (sent if as_sent else tuple(dict.fromkeys(current.tags + sent)))
    else:
        assert result.tags == current.tags
    if "notes" not in body:
        assert result.notes == current.notes
    elif as_sent:
        assert result.notes == body["notes"]
    for key in {"star", "color", "original_position"} - set(body):
        assert result.extra.get(key, "absent") == current.extra.get(key, "absent")
    for key in set(body) & {"star", "color", "original_position"}:
        assert result.extra[key] in (body[key], current.extra.get(key))
        if as_sent:
            assert result.extra[key] == body[key]
    assert result.updated is not None
    assert result.updated >= NOW
    if current.updated is not None:
        assert result.updated > current.updated  # every accepted write advances the stamp
    assert result.updated_by == "web"


def test_an_echoed_stamp_replaces_and_a_clients_own_stamp_merges() -> None:
    stored = Sidecar(tags=("a", "b"), notes="kept", updated_at=at(10), updated_by="lenslet")
    read_back = {"tags": ["a"], "notes": "kept", "updatedAt": at(10), "updatedBy": "lenslet"}
    # Echoing the version read (with the client's own new stamp beside it) removes a tag ...
    echo = Edit.from_body({**read_back, "updated_at": format_time(NOW)})
    assert decide((stored, "e1"), echo, None, now=NOW, writer="web").tags == ("a",)
    # ... a stamp of its own, however new, does not: that body is merged.
    ahead = format_time(NOW + datetime.timedelta(minutes=1))
    own = Edit.from_body({"tags": ["a"], "updatedAt": ahead})
    result = decide((stored, "e1"), own, None, now=NOW, writer="web")
    assert result.tags == ("a", "b")
    assert result.updated_at == ahead  # newer than now (a clock a little ahead): kept
    # A partial body leaves the notes alone.
    partial = decide((stored, "e1"), Edit.from_body({"tags": ["c"]}), None, now=NOW, writer="x")
    assert (partial.tags, partial.notes, partial.updated_by) == (("a", "b", "c"), "kept", "x")


def test_the_author_is_the_one_the_body_names_else_the_writer() -> None:
    stored = Sidecar(tags=("a",), updated_at=at(10), updated_by="alice")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"tags": [], "updated_by": "bob"}, "bob"),
        ({"tags": [], "updatedBy": "alice", "updated_by": "carol"}, "carol"),  # echo + own
        ({"tags": [], "updatedBy": "alice"}, "alice"),
        ({"tags": []}, "web"),
    ]
    for body, author in cases:
        result = decide((stored, "e1"), Edit.from_body(body), "e1", now=NOW, writer="web")
        assert result.updated_by == author, body
    # Who the request says writes (X-Lenslet-User) beats an author only echoed back.
    echoed = Edit.from_body({"tags": [], "updatedBy": "alice"})
    assert decide((stored, "e1"), echoed, "e1", now=NOW, author="bob").updated_by == "bob"
    named = Edit.from_body({"tags": [], "updated_by": "carol"})
    assert decide((stored, "e1"), named, "e1", now=NOW, author="bob").updated_by == "carol"


def test_a_stamp_from_the_future_is_not_taken_at_its_word() -> None:
    stored = Sidecar(tags=("a",), notes="kept", updated_at=at(10))
    far = Edit.from_body({"notes": "n", "updatedAt": "9999-12-31T23:59:59.999Z"})
    first = decide((stored, "e1"), far, None, now=NOW, writer="web")
    assert first.updated is not None
    assert first.updated <= NOW + datetime.timedelta(minutes=5)
    # A later edit with no stamp of its own still wins the notes.
    later = decide((first, "e2"), Edit.from_body({"notes": "mine"}), None, now=first.updated)
    assert later.notes == "mine"
    # A stamp at the end of time that another tool stored does not break the next write.
    ended = Sidecar(tags=("a",), updated_at="9999-12-31T23:59:59.999Z")
    after = decide((ended, "e1"), Edit.from_body({"tags": ["b"]}), None, now=NOW, writer="web")
    assert after.tags == ("a", "b")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [('"abc"', "abc"), ('W/"abc"', "abc"), ("abc", "abc"), ("  ", None), (None, None)],
)
def test_etags_are_accepted_in_every_spelling(raw: str | None, expected: str | None) -> None:
    assert normalize_etag(raw) == expected


# -- reads and writes on disk --------------------------------------------------------------------


async def test_item_without_sidecar_gives_exif_basics(gallery: Path, photo: Path) -> None:
    async with Lenslet(str(gallery)) as lens:
        item = await lens.item("/trip/beach.jpg")
    assert not item.exists
    assert item.etag == ABSENT_ETAG
    doc = item.to_json()
    assert doc["exif"] == {"width": 64, "height": 48, "createdAt": "2025-07-14T09:30:00"}
    assert doc["tags"] == []
    assert doc["v"] == 1
    assert not (gallery / "trip" / "beach.jpg.json").exists()


async def test_item_of_missing_image_is_not_found(gallery: Path) -> None:
    async with Lenslet(str(gallery)) as lens:
        with pytest.raises(NotFound):
            await lens.item("nope.jpg")
        with pytest.raises(NotFound):
            await lens.update_item("nope.jpg", {"tags": ["x"]})
    assert not (gallery / "nope.jpg.json").exists()


async def test_orphan_sidecar_is_not_an_item(gallery: Path) -> None:
    (gallery / "gone.jpg.json").write_bytes(b'{"v":1,"tags":["a"],"exif":{"width":1}}')
    async with Lenslet(str(gallery)) as lens:
        with pytest.raises(NotFound):
            await lens.item("gone.jpg")


async def test_first_write_creates_the_sidecar(gallery: Path, photo: Path) -> None:
    async with Lenslet(str(gallery)) as lens:
        item = await lens.update_item("trip/beach.jpg", {"tags": ["sea", "sea", "sun"]})
        again = await lens.item("trip/beach.jpg")
    stored = read_json(gallery / "trip" / "beach.jpg.json")
    assert stored["tags"] == ["sea", "sun"]
    assert stored["v"] == 1
    assert stored["updatedBy"] == "lenslet"
    assert isinstance(stored["updatedAt"], str)
    assert again.etag == item.etag
    assert again.exists
    assert again.sidecar.exif == Exif(64, 48, "2025-07-14T09:30:00")


async def test_an_index_after_the_first_write_leaves_its_etag_good(
    gallery: Path, photo: Path
) -> None:
    # The first write carries the image's EXIF basics and hash, so the index that follows it
    # has nothing to add to the sidecar: the client's If-Match still names the stored version.
    async with Lenslet(str(gallery)) as lens:
        item = await lens.update_item("trip/beach.jpg", {"tags": ["sea"]})
        written = (gallery / "trip" / "beach.jpg.json").read_bytes()
        await lens.index("trip")
        assert (gallery / "trip" / "beach.jpg.json").read_bytes() == written
        again = await lens.update_item("trip/beach.jpg", {"tags": []}, if_match=item.etag)
    assert again.sidecar.tags == ()
    stored = read_json(gallery / "trip" / "beach.jpg.json")
    assert stored["exif"] == {"width": 64, "height": 48, "createdAt": "2025-07-14T09:30:00"}
    assert stored["hash"] == hash_bytes(photo.read_bytes())


async def test_a_first_write_outside_any_listing_asks_for_the_image_once(
    gallery: Path, photo: Path, requests: Requests
) -> None:
    async with Lenslet(str(gallery), observer=requests) as lens:
        await lens.update_item("trip/beach.jpg", {"tags": ["sea"]})
    # The stat that finds the image there also gives its basics' size and mtime; then it is
    # read for them (and perhaps again by the folder index the write queues).
    asked = [op for op, p in requests.log if p == "trip/beach.jpg"]
    assert asked[:2] == ["info", "read"]
    assert asked.count("info") == 1


async def test_tags_of_an_image_that_cannot_be_read_are_written_without_basics(
    gallery: Path,
) -> None:
    (gallery / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"not a jpeg" * 50)
    async with Lenslet(str(gallery)) as lens:
        item = await lens.update_item("bad.jpg", {"tags": ["keep"]})
        again = await lens.item("bad.jpg")
    assert item.sidecar.tags == ("keep",)
    assert item.sidecar.exif is None
    assert again.etag == item.etag
    assert read_json(gallery / "bad.jpg.json")["tags"] == ["keep"]


async def test_if_match_that_matches_writes_as_sent(gallery: Path, photo: Path) -> None:
    async with Lenslet(str(gallery)) as lens:
        first = await lens.update_item("trip/beach.jpg", {"tags": ["a", "b"], "notes": "x"})
        second = await lens.update_item(
            "trip/beach.jpg", {"tags": ["a"], "notes": "y"}, if_match=f'"{first.etag}"'
        )
    assert second.sidecar.tags == ("a",)
    assert read_json(gallery / "trip" / "beach.jpg.json")["tags"] == ["a"]
    assert second.etag != first.etag


async def test_if_match_that_is_stale_merges(gallery: Path, photo: Path) -> None:
    async with Lenslet(str(gallery)) as lens:
        seen = await lens.item("trip/beach.jpg")
        await lens.update_item("trip/beach.jpg", {"tags": ["from-a"]}, if_match=seen.etag)
        merged = await lens.update_item(
            "trip/beach.jpg", {"tags": ["from-b"], "notes": "b"}, if_match=seen.etag
        )
    assert set(merged.sidecar.tags) == {"from-a", "from-b"}
    assert merged.sidecar.notes == "b"


async def test_without_if_match_an_echoed_stamp_replaces_and_others_merge(
    gallery: Path, photo: Path
) -> None:
    async with Lenslet(str(gallery)) as lens:
        first = await lens.update_item("trip/beach.jpg", {"tags": ["a", "b"], "notes": "n"})
        # The client echoes what it read (the stored stamp): its removal of "b" sticks.
        echoed = {**first.to_json(), "tags": ["a"]}
        second = await lens.update_item("trip/beach.jpg", echoed)
        assert second.sidecar.tags == ("a",)
        assert str(second.sidecar.updated_at) > str(first.sidecar.updated_at)
        # The same echo again is stale now: merged, so nothing it lacks is lost.
        stale = await lens.update_item("trip/beach.jpg", {**echoed, "tags": ["c"]})
        assert stale.sidecar.tags == ("a", "c")
        # A stamp of the client's own, older or newer, is merged too; notes go by the stamp.
        older = await lens.update_item(
            "trip/beach.jpg", {"tags": ["d"], "notes": "old", "updatedAt": at(150)}
        )
        newer = await lens.update_item(
            "trip/beach.jpg", {"tags": [], "notes": "new", "updatedAt": at(10**9)}
        )
    assert older.sidecar.tags == ("a", "c", "d")
    assert older.sidecar.notes == "n"
    assert str(older.sidecar.updated_at) > str(stale.sidecar.updated_at)
    assert newer.sidecar.tags == ("a", "c", "d")
    assert newer.sidecar.notes == "new"
    assert str(newer.sidecar.updated_at) < at(10**9)  # a stamp from the future is not kept


async def test_unknown_fields_survive_every_write(gallery: Path, photo: Path) -> None:
    extra = {"star": 4, "original_position": {"x": 1, "y": [2, 3]}, "colour": None}
    async with Lenslet(str(gallery)) as lens:
        first = await lens.update_item("trip/beach.jpg", {"tags": ["a"], **extra})
        # A client that does not know the extra fields writes with a matching ETag ...
        second = await lens.update_item("trip/beach.jpg", {"tags": ["b"]}, if_match=first.etag)
        # ... and one without If-Match.
        await lens.update_item("trip/beach.jpg", {"tags": ["c"], "updatedAt": at(10**9)})
    stored = read_json(gallery / "trip" / "beach.jpg.json")
    for key, value in extra.items():
        assert stored[key] == value
    assert second.to_json()["star"] == 4


async def test_snake_case_is_read_and_camel_case_written(gallery: Path, photo: Path) -> None:
    sidecar = gallery / "trip" / "beach.jpg.json"
    sidecar.write_bytes(
        orjson.dumps({"tags": ["old"], "updated_at": at(5), "updated_by": "legacy-client"})
    )
    async with Lenslet(str(gallery)) as lens:
        item = await lens.item("trip/beach.jpg")
        assert item.sidecar.updated_by == "legacy-client"
        await lens.update_item("trip/beach.jpg", {"tags": ["new"]}, if_match=item.etag)
    stored = read_json(sidecar)
    assert "updated_at" not in stored
    assert "updated_by" not in stored
    assert stored["updatedBy"] == "lenslet"


@pytest.mark.parametrize(
    ("content", "error"),
    [(b"{not json", MalformedDocument), (b'{"v": 2, "tags": []}', UnsupportedVersion)],
)
async def test_unreadable_sidecars_are_refused_and_kept(
    gallery: Path, photo: Path, content: bytes, error: type[Exception]
) -> None:
    sidecar = gallery / "trip" / "beach.jpg.json"
    sidecar.write_bytes(content)
    async with Lenslet(str(gallery)) as lens:
        with pytest.raises(error):
            await lens.item("trip/beach.jpg")
        with pytest.raises(error):
            await lens.update_item("trip/beach.jpg", {"tags": ["x"]})
    assert sidecar.read_bytes() == content


async def test_read_only_root_refuses_writes(gallery: Path, photo: Path) -> None:
    async with Lenslet(str(gallery), Settings(readonly=True)) as lens:
        with pytest.raises(ReadOnly):
            await lens.update_item("trip/beach.jpg", {"tags": ["x"]})
    assert not (gallery / "trip" / "beach.jpg.json").exists()


# -- concurrency ---------------------------------------------------------------------------------


async def test_concurrent_writers_in_one_process_lose_no_tag(gallery: Path, photo: Path) -> None:
    async with Lenslet(str(gallery)) as lens:
        start = anyio.Event()
        seen = await lens.item("trip/beach.jpg")

        async def writer(n: int) -> None:
            await start.wait()
            # Every writer read the same version: each write after the first is a stale one.
            await lens.update_item(
                "trip/beach.jpg", {"tags": [*seen.sidecar.tags, f"t{n}"]}, if_match=seen.etag
            )

        async with anyio.create_task_group() as tg:
            for n in range(24):
                tg.start_soon(writer, n)
            start.set()
        final = await lens.item("trip/beach.jpg")
    assert set(final.sidecar.tags) == {f"t{n}" for n in range(24)}


def _process_writer(root: str, worker: int, count: int, barrier: object) -> None:
    async def run() -> None:
        async with Lenslet(root) as lens:
            seen = await lens.item("trip/beach.jpg")
            barrier.wait()  # type: ignore[attr-defined]
            for n in range(count):
                await lens.update_item(
                    "trip/beach.jpg", {"tags": [f"p{worker}-{n}"]}, if_match=seen.etag
                )

    anyio.run(run)


def test_concurrent_writers_in_many_processes_lose_no_tag(gallery: Path, photo: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers, count = 4, 8
    barrier = ctx.Barrier(workers)
    procs = [
        ctx.Process(target=_process_writer, args=(str(gallery), w, count, barrier))
        for w in range(workers)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    stored = read_json(gallery / "trip" / "beach.jpg.json")
    assert set(stored["tags"]) == {f"p{w}-{n}" for w in range(workers) for n in range(count)}
    leftovers = [p.name for p in (gallery / "trip").iterdir() if p.name.endswith(".lenslet-tmp")]
    assert leftovers == []


async def test_if_match_absent_merges_when_someone_created_the_sidecar_first(
    gallery: Path, photo: Path
) -> None:
    from lenslet_core import Storage
    from lenslet_core.sidecar import update_sidecar

    raced = False

    def racer(op: str, path: str) -> None:
        # Another writer creates the sidecar between our read and our conditional write.
        nonlocal raced
        if op == "write" and not raced:
            raced = True
            (gallery / "trip" / "beach.jpg.json").write_bytes(
                orjson.dumps({"v": 1, "tags": ["theirs"], "updatedAt": at(0)})
            )

    storage = Storage.open(str(gallery), observer=racer)
    stored, _, previous = await update_sidecar(
        storage, "trip/beach.jpg", {"tags": ["mine"]}, if_match="absent"
    )
    assert previous is not None
    assert previous.tags == ("theirs",)  # the version the write was decided against
    assert raced
    assert set(stored.tags) == {"mine", "theirs"}
    assert set(read_json(gallery / "trip" / "beach.jpg.json")["tags"]) == {"mine", "theirs"}


async def test_sidecars_are_only_for_image_files(gallery: Path) -> None:
    from lenslet_core import InvalidPath

    user_file = gallery / "package.json"
    user_file.write_bytes(b'{"name": "mysite", "notes": "mine", "tags": ["keep"]}')
    (gallery / "package").write_bytes(b"not an image")
    (gallery / "folder.jpg").mkdir()
    async with Lenslet(str(gallery)) as lens:
        with pytest.raises(InvalidPath, match="not an image"):
            await lens.update_item("package", {"tags": ["x"]})
        with pytest.raises(NotFound, match="not an image file"):
            await lens.update_item("folder.jpg", {"tags": ["x"]})
        with pytest.raises(NotFound):
            await lens.item("folder.jpg")
    assert user_file.read_bytes() == b'{"name": "mysite", "notes": "mine", "tags": ["keep"]}'
    assert not (gallery / "folder.jpg.json").exists()


@pytest.mark.parametrize("body", [{"notes": "\ud800"}, {"tags": ["a"], "star": 2**64}])
async def test_values_json_cannot_store_are_invalid_documents(
    gallery: Path, photo: Path, body: dict[str, object]
) -> None:
    from lenslet_core import InvalidDocument

    async with Lenslet(str(gallery)) as lens:
        with pytest.raises(InvalidDocument):
            await lens.update_item("trip/beach.jpg", body)
    assert not (gallery / "trip" / "beach.jpg.json").exists()


async def test_item_basics_honour_max_file_bytes(gallery: Path, photo: Path) -> None:
    from lenslet_core import ImageTooLarge

    async with Lenslet(str(gallery), Settings(max_file_bytes=100)) as lens:
        with pytest.raises(ImageTooLarge):
            await lens.item("trip/beach.jpg")


async def test_long_names_get_sidecars(gallery: Path) -> None:
    name = "p" * 236 + ".jpg"  # the sidecar name is 245 bytes, near the 255-byte limit
    write(gallery / name, jpeg_bytes())
    async with Lenslet(str(gallery)) as lens:
        item = await lens.update_item(name, {"tags": ["long"]})
    assert item.sidecar.tags == ("long",)
    assert read_json(gallery / (name + ".json"))["tags"] == ["long"]


async def test_lenslet_files_are_never_used_through_symlinks(
    gallery: Path, photo: Path, tmp_path: Path
) -> None:
    from lenslet_core import InvalidPath

    manifest = write(gallery / "private" / "_index.json", b'{"v":1,"items":[],"dirs":[]}')
    (gallery / "trip" / "beach.jpg.json").symlink_to(manifest)
    async with Lenslet(str(gallery)) as lens:
        with pytest.raises(InvalidPath, match="symlink"):
            await lens.item("trip/beach.jpg")
        with pytest.raises(InvalidPath, match="symlink"):
            await lens.update_item("trip/beach.jpg", {"tags": ["x"]})
    assert manifest.read_bytes() == b'{"v":1,"items":[],"dirs":[]}'

    outside = tmp_path / "created-by-lenslet"
    write(gallery / "other" / "x.jpg", jpeg_bytes())
    (gallery / "other" / ".lenslet.lock").symlink_to(outside)
    async with Lenslet(str(gallery)) as lens:
        with pytest.raises(InvalidPath):
            await lens.update_item("other/x.jpg", {"tags": ["x"]})
    assert not outside.exists()


async def test_names_too_long_for_a_sidecar(gallery: Path) -> None:
    from lenslet_core import InvalidPath

    name = "q" * 247 + ".jpg"  # 251 bytes: the image fits, its sidecar name would not
    write(gallery / name, jpeg_bytes())
    async with Lenslet(str(gallery)) as lens:
        item = await lens.item(name)
        assert not item.exists
        with pytest.raises(InvalidPath, match="too long for a sidecar"):
            await lens.update_item(name, {"tags": ["x"]})


async def test_sidecars_nested_too_deep_are_refused_and_kept(gallery: Path, photo: Path) -> None:
    deep: object = "leaf"
    for _ in range(300):
        deep = [deep]
    # orjson reads 300 levels but cannot write them; the standard library can.
    content = json.dumps({"v": 1, "tags": ["old"], "deep": deep}).encode()
    sidecar = gallery / "trip" / "beach.jpg.json"
    sidecar.write_bytes(content)
    async with Lenslet(str(gallery)) as lens:
        with pytest.raises(MalformedDocument, match="nested deeper"):
            await lens.item("trip/beach.jpg")
        with pytest.raises(MalformedDocument):
            await lens.update_item("trip/beach.jpg", {"tags": ["new"]})
    assert sidecar.read_bytes() == content


async def test_a_fifo_named_like_an_image_gets_no_sidecar(gallery: Path) -> None:
    import os

    os.mkfifo(gallery / "pipe.jpg")
    async with Lenslet(str(gallery)) as lens:
        with pytest.raises(NotFound, match="not an image file"):
            await lens.update_item("pipe.jpg", {"tags": ["x"]})
    assert not (gallery / "pipe.jpg.json").exists()


@given(
    st.dictionaries(
        st.sampled_from(["width", "height", "createdAt", "make", "lens"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
    )
)
def test_exif_keeps_what_another_tool_wrote(document: dict[str, object]) -> None:
    """A sidecar's exif read and written back keeps every field as it was (a known one of the
    wrong type too); only the three basics are ever added, as null when absent."""
    written = Exif.from_json(document).to_json()
    assert {k: v for k, v in written.items() if k in document} == document
    assert set(written) - set(document) <= {"width", "height", "createdAt"}
    assert all(written[k] is None for k in set(written) - set(document))


async def test_a_refresh_from_an_earlier_read_keeps_an_edit_made_since(tmp_path: Path) -> None:
    """An index run refreshes a sidecar's EXIF basics from the bytes it read for the star; a
    tag written in between makes that conditional write fail, and the retry reads it again."""
    from lenslet_core import Storage
    from lenslet_core.sidecar import read_sidecar_bytes, refresh_basics

    write(tmp_path / "a.jpg", jpeg_bytes(8, 6))
    sidecar = tmp_path / "a.jpg.json"
    sidecar.write_bytes(b'{"tags": ["before"], "mine": 1}')
    storage = Storage.open(str(tmp_path))
    stored = await read_sidecar_bytes(storage, "a.jpg")
    assert stored is not None
    _, etag, data = stored
    sidecar.write_bytes(b'{"tags": ["typed meanwhile"], "mine": 1}')  # another writer

    basics = Exif(8, 6, None)
    assert await refresh_basics(storage, "a.jpg", basics, "blake3:x", read=(data, etag))
    document = read_json(sidecar)
    assert document["tags"] == ["typed meanwhile"]
    assert (document["mine"], document["hash"]) == (1, "blake3:x")
    assert document["exif"] == basics.to_json()
    # From a read that is still current, the write goes through on its first attempt.
    stored = await read_sidecar_bytes(storage, "a.jpg")
    assert stored is not None
    _, etag, data = stored
    assert await refresh_basics(storage, "a.jpg", Exif(8, 6, None), "blake3:y", read=(data, etag))
    assert read_json(sidecar)["hash"] == "blake3:y"


_FIELDS = st.dictionaries(
    st.sampled_from(["tags", "notes", "star", "updatedAt"]),
    st.one_of(st.text(max_size=5), st.lists(st.text(max_size=3), max_size=3), st.integers(-9, 9)),
    max_size=4,
)
_DERIVED_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "exif": st.fixed_dictionaries({"width": st.integers(1, 9), "height": st.integers(1, 9)}),
        "hash": st.text("0123456789abcdef", min_size=4, max_size=4),
        "v": st.just(1),
    },
)


@given(_FIELDS, _DERIVED_FIELDS, _DERIVED_FIELDS)
def test_sidecars_differing_only_in_what_the_index_derives_are_the_same(
    fields: dict[str, Any], first: dict[str, Any], second: dict[str, Any]
) -> None:
    assert same_but_derived(orjson.dumps({**fields, **first}), orjson.dumps({**second, **fields}))


@given(_FIELDS, _FIELDS, _DERIVED_FIELDS)
def test_sidecars_differing_in_a_clients_field_are_not_the_same(
    fields: dict[str, Any], other: dict[str, Any], derived: dict[str, Any]
) -> None:
    same = same_but_derived(orjson.dumps({**fields, **derived}), orjson.dumps(other))
    assert same == (fields == other)


def test_bytes_that_are_no_sidecar_are_the_same_only_when_equal() -> None:
    assert same_but_derived(b"{not json", b"{not json")
    assert not same_but_derived(b"{not json", b"{not json ")
    assert not same_but_derived(b"[1]", b'{"tags": []}')
