"""Writes over HTTP: upload, move and delete, with an image's sidecar and thumbnail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lenslet_core import Settings
from tests.http.test_app import client
from tests.imagegen import jpeg_bytes, png_bytes, write

pytestmark = pytest.mark.anyio


def names(folder: Path) -> list[str]:
    """The files of a folder, lenslet's own bookkeeping (manifests, lock) aside."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(("_", ".")))


async def test_upload_adds_an_image_and_never_replaces_one(gallery: Path) -> None:
    (gallery / "inbox").mkdir()
    data = jpeg_bytes(120, 90)
    async with client(gallery) as http:
        files = {"file": ("new.jpg", data, "image/jpeg")}
        made = await http.post("/file", data={"dest": "/inbox"}, files=files)
        assert made.status_code == 201, made.text
        assert made.json() == {"ok": True, "path": "inbox/new.jpg"}
        again = await http.post("/file", data={"dest": "/inbox"}, files=files)
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "already_exists"
        named = await http.post(
            "/file",
            data={"dest": "inbox/renamed.png"},
            files={"file": ("whatever.png", png_bytes(20, 20), "image/png")},
        )
        assert named.json()["path"] == "inbox/renamed.png"
        bad = await http.post(
            "/file",
            data={"dest": "inbox"},
            files={"file": ("broken.jpg", data[:300], "image/jpeg")},
        )
        assert bad.status_code == 422
        text = await http.post(
            "/file", data={"dest": "inbox"}, files={"file": ("note.jpg", b"hello", "image/jpeg")}
        )
        assert text.status_code == 415
        sneaky = await http.post("/file", data={"dest": "../outside"}, files=files)
        assert sneaky.status_code == 400
        listed = await http.get("/folders", params={"path": "inbox"})
        assert [i["name"] for i in listed.json()["items"]] == ["new.jpg", "renamed.png"]
    assert (gallery / "inbox" / "new.jpg").read_bytes() == data
    assert not (gallery / "inbox" / "broken.jpg").exists()
    assert not (gallery / "inbox" / "note.jpg").exists()
    assert not [p for p in gallery.rglob("*") if p.name.endswith(".lenslet-tmp")]


async def test_move_takes_the_sidecar_and_thumbnail_along(gallery: Path) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    write(gallery / "a" / "x.jpg.json", b'{"tags": ["kept"]}')
    write(gallery / "a" / "x.jpg.thumbnail", b"RIFF....WEBP")
    other = write(gallery / "b" / "other.jpg", jpeg_bytes(seed=1)).read_bytes()
    async with client(gallery) as http:
        moved = await http.post("/move", data={"src": "/a/x.jpg", "dest": "/b"})
        assert moved.status_code == 200, moved.text
        assert moved.json()["path"] == "b/x.jpg"
        item = (await http.get("/item", params={"path": "b/x.jpg"})).json()
        assert item["tags"] == ["kept"]
        onto = await http.post("/move", json={"src": "b/x.jpg", "dest": "b/other.jpg"})
        assert onto.status_code == 409
        renamed = await http.post("/move", json={"src": "b/x.jpg", "dest": "b/y.jpg"})
        assert renamed.json()["path"] == "b/y.jpg"
        missing = await http.post("/move", json={"src": "a/x.jpg", "dest": "b"})
        assert missing.status_code == 404
    made = [n for n in names(gallery / "b") if not n.endswith(".thumbnail")]
    assert made == ["other.jpg", "y.jpg", "y.jpg.json"]
    assert (gallery / "b" / "y.jpg.thumbnail").read_bytes() == b"RIFF....WEBP"
    assert names(gallery / "a") == []
    assert (gallery / "b" / "other.jpg").read_bytes() == other


async def test_move_with_overwrite_replaces_an_image_and_its_files(gallery: Path) -> None:
    moving = write(gallery / "a" / "x.jpg", jpeg_bytes()).read_bytes()
    write(gallery / "a" / "x.jpg.json", b'{"tags": ["mine"]}')
    write(gallery / "b" / "old.jpg", jpeg_bytes(seed=1))
    write(gallery / "b" / "old.jpg.json", b'{"tags": ["stale"]}')
    write(gallery / "b" / "old.jpg.thumbnail", b"RIFF....WEBP")
    async with client(gallery) as http:
        refused = await http.post("/move", data={"src": "a/x.jpg", "dest": "b/old.jpg"})
        assert refused.status_code == 409
        moved = await http.post(
            "/move", json={"src": "a/x.jpg", "dest": "b/old.jpg", "overwrite": True}
        )
        assert moved.status_code == 200, moved.text
        item = (await http.get("/item", params={"path": "b/old.jpg"})).json()
        assert item["tags"] == ["mine"]
        found = (await http.get("/search", params={"q": "stale"})).json()
        assert found["items"] == []
    assert (gallery / "b" / "old.jpg").read_bytes() == moving
    thumb = gallery / "b" / "old.jpg.thumbnail"  # the old image's went; a new one may be made
    assert not thumb.exists() or thumb.read_bytes() != b"RIFF....WEBP"
    assert names(gallery / "a") == []


async def test_move_to_trash_and_back(gallery: Path) -> None:
    """What existing clients do: move an image into ``/_trash_`` (not there yet), then put it
    back where the sidecar's ``original_position`` says it came from."""
    write(gallery / "trips" / "x.jpg", jpeg_bytes())
    write(gallery / "trips" / "y.jpg", jpeg_bytes(seed=2))
    write(gallery / "trips" / "y.jpg.json", b'{"tags": ["kept"], "star": 3}')
    async with client(gallery) as http:
        for image in ("x.jpg", "y.jpg"):
            trashed = await http.post("/move", json={"src": f"/trips/{image}", "dest": "/_trash_"})
            assert trashed.status_code == 200, trashed.text
            assert trashed.json()["path"] == f"_trash_/{image}"
        item = (await http.get("/item", params={"path": "/_trash_/y.jpg"})).json()
        assert item["original_position"] == "trips/y.jpg"
        assert (item["tags"], item["star"]) == (["kept"], 3)
        fresh = (await http.get("/item", params={"path": "/_trash_/x.jpg"})).json()
        assert fresh["original_position"] == "trips/x.jpg"  # a sidecar was made for it
        trash = (await http.get("/folders", params={"path": "/_trash_"})).json()
        assert [i["name"] for i in trash["items"]] == ["x.jpg", "y.jpg"]
        root = (await http.get("/folders", params={"path": "/"})).json()
        assert {d["name"] for d in root["dirs"]} == {"_trash_", "trips"}
        found = (await http.get("/search", params={"q": "kept"})).json()
        assert [i["path"] for i in found["items"]] == ["_trash_/y.jpg"]
        back = await http.post(
            "/move", json={"src": "/_trash_/y.jpg", "dest": item["original_position"]}
        )
        assert back.json()["path"] == "trips/y.jpg"
        restored = (await http.get("/item", params={"path": "trips/y.jpg"})).json()
        assert restored["tags"] == ["kept"]
        assert restored["original_position"] == "_trash_/y.jpg"
        # Into a new folder deeper down, too; never a name lenslet owns or hides.
        deep = await http.post("/move", json={"src": "trips/y.jpg", "dest": "a/b/c.jpg"})
        assert deep.json()["path"] == "a/b/c.jpg"
        for bad in ("/.hidden", "/x/_index.json", "/bad\x01name", "/../out"):
            refused = await http.post("/move", json={"src": "a/b/c.jpg", "dest": bad})
            assert refused.status_code == 400, (bad, refused.text)
        missing = await http.post("/move", json={"src": "nope.jpg", "dest": "/new"})
        assert missing.status_code == 404
    assert not (gallery / "new").exists()
    assert not (gallery / ".hidden").exists()
    assert (gallery / "a" / "b" / "c.jpg").exists()
    assert (gallery / "a" / "b" / "c.jpg.json").exists()


async def test_a_move_into_a_new_folder_refuses_a_read_only_server(gallery: Path) -> None:
    write(gallery / "x.jpg", jpeg_bytes())
    async with client(gallery, Settings(readonly=True)) as http:
        refused = await http.post("/move", json={"src": "x.jpg", "dest": "/_trash_"})
        assert refused.status_code == 403
    assert not (gallery / "_trash_").exists()


async def test_delete_removes_an_image_with_its_files(gallery: Path) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    write(gallery / "a" / "x.jpg.json", b'{"tags": ["t"]}')
    write(gallery / "a" / "x.jpg.thumbnail", b"RIFF....WEBP")
    write(gallery / "a" / "y.jpg", jpeg_bytes(seed=1))
    async with client(gallery) as http:
        gone = await http.post("/delete", json={"paths": ["/a/x.jpg", "a/missing.jpg"]})
        assert gone.status_code == 200, gone.text
        assert gone.json() == {"ok": True, "deleted": ["a/x.jpg"]}
        refused = await http.post("/delete", json={"paths": ["a/y.jpg", "../etc/passwd"]})
        assert refused.status_code == 400  # nothing is deleted when one path is refused
        malformed = await http.post("/delete", json={"paths": "a/y.jpg"})
        assert malformed.status_code == 400
        listed = await http.get("/folders", params={"path": "a"})
        assert [i["name"] for i in listed.json()["items"]] == ["y.jpg"]
    assert [n for n in names(gallery / "a") if not n.endswith(".thumbnail")] == ["y.jpg"]
    assert not (gallery / "a" / "x.jpg.thumbnail").exists()


async def test_a_listed_image_deleted_through_the_api_has_no_thumbnail(gallery: Path) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    async with client(gallery) as http:
        await http.get("/folders", params={"path": "a"})  # the listing vouches for x.jpg ...
        made = await http.get("/thumb", params={"path": "a/x.jpg", "wait": "5"})
        assert made.status_code == 200
        await http.post("/delete", json={"paths": ["a/x.jpg"]})
        gone = await http.get("/thumb", params={"path": "a/x.jpg"})  # ... until it changes
        assert gone.status_code == 404


async def test_a_read_only_server_refuses_every_change(gallery: Path) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    async with client(gallery, Settings(readonly=True)) as http:
        files = {"file": ("new.jpg", jpeg_bytes(), "image/jpeg")}
        answers = [
            await http.post("/file", data={"dest": "a"}, files=files),
            await http.post("/move", json={"src": "a/x.jpg", "dest": "a/y.jpg"}),
            await http.post("/delete", json={"paths": ["a/x.jpg"]}),
        ]
    assert [a.status_code for a in answers] == [403, 403, 403]
    assert sorted(p.name for p in (gallery / "a").iterdir()) == ["x.jpg"]


async def test_oversized_bodies_are_refused_as_they_arrive(gallery: Path) -> None:
    """Bodies are counted as they come: refused from Content-Length before any byte is read,
    or as soon as a chunked body passes its limit, with the JSON error body."""
    write(gallery / "x.jpg", jpeg_bytes())
    sent = 0

    async def chunks(total: int) -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(total // 65536):
            sent += 65536
            yield b" " * 65536

    async with client(gallery, Settings(max_file_bytes=200_000)) as http:
        declared = await http.put(
            "/item", params={"path": "x.jpg"}, content=b" " * (2 * 1024 * 1024)
        )
        assert declared.status_code == 413
        assert declared.json()["error"]["code"] == "too_large"
        chunked = await http.put("/item", params={"path": "x.jpg"}, content=chunks(64 << 20))
        assert chunked.status_code == 413
        assert chunked.json()["error"]["code"] == "too_large"
        assert sent < 8 << 20  # stopped long before the 64 MB the client had to send
        upload = await http.post(
            "/file", data={"dest": ""}, files={"file": ("big.jpg", b"\xff" * 300_000)}
        )
        assert upload.status_code == 413
        assert upload.json()["error"]["code"] == "too_large"
        deleting = await http.post("/delete", content=chunks(8 << 20), headers={
            "Content-Type": "application/json"})  # fmt: skip
        assert deleting.status_code == 413
    assert not (gallery / "x.jpg.json").exists()
    assert not (gallery / "big.jpg").exists()


async def test_no_route_follows_a_folder_symlink_or_writes_through_a_link(gallery: Path) -> None:
    """As the indexer does: folder symlinks are not followed (reads, uploads, moves), and no
    write goes through a symlink (a dangling one would create its target)."""
    import os

    write(gallery / "bad" / "loop" / "x.jpg", jpeg_bytes())
    os.symlink(".", gallery / "bad" / "loop" / "self")
    os.symlink("loop", gallery / "bad" / "linked")
    os.symlink("made-by-link.jpg", gallery / "bad" / "trap.jpg")  # dangling, inside the root
    files = {"file": ("new.jpg", jpeg_bytes(), "image/jpeg")}
    async with client(gallery) as http:
        for folder in ("bad/loop/self", "bad/linked", "bad/loop/self/self"):
            listed = await http.get("/folders", params={"path": folder})
            assert listed.status_code == 400, (folder, listed.text)
            assert listed.json()["error"]["code"] == "invalid_path"
            uploaded = await http.post("/file", data={"dest": folder}, files=files)
            assert uploaded.status_code == 400, (folder, uploaded.text)
        through = await http.get("/item", params={"path": "bad/linked/x.jpg"})
        assert through.status_code == 400
        moved = await http.post("/move", json={"src": "bad/loop/x.jpg", "dest": "bad/linked"})
        assert moved.status_code == 400
        onto = await http.post("/move", json={"src": "bad/loop/x.jpg", "dest": "bad/trap.jpg"})
        assert onto.status_code in (400, 409), onto.text
        named = await http.post("/file", data={"dest": "bad/trap.jpg"}, files=files)
        assert named.status_code in (400, 409), named.text
        for bad in (b"tab\there.jpg", b"bell\x07.jpg"):
            # Raw, as a client that does not escape the name sends it.
            form = (
                b'--b\r\nContent-Disposition: form-data; name="dest"\r\n\r\nbad\r\n'
                b'--b\r\nContent-Disposition: form-data; name="file"; filename="' + bad + b'"'
                b"\r\nContent-Type: image/jpeg\r\n\r\n" + jpeg_bytes() + b"\r\n--b--\r\n"
            )
            headers = {"Content-Type": "multipart/form-data; boundary=b"}
            refused = await http.post("/file", content=form, headers=headers)
            assert refused.status_code == 400, (bad, refused.text)
        renamed = await http.post("/move", json={"src": "bad/loop/x.jpg", "dest": "bad/a\x01.jpg"})
        assert renamed.status_code == 400
        fine = await http.get("/folders", params={"path": "bad/loop"})
        assert [i["name"] for i in fine.json()["items"]] == ["x.jpg"]
    assert not (gallery / "bad" / "made-by-link.jpg").exists()
    assert not (gallery / "bad" / "loop" / "new.jpg").exists()
    assert (gallery / "bad" / "loop" / "x.jpg").exists()
