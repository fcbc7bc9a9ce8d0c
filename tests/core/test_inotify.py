"""Folder events from the kernel: real folders and files on local disk, changed the way other
processes and tools change them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lenslet_core.inotify import FolderEvents, file_system_kind
from tests.imagegen import jpeg_bytes, write


@pytest.fixture
def events(gallery: Path) -> FolderEvents:
    opened = FolderEvents.open(str(gallery))
    assert opened is not None  # the test machine's temp folders are on a local file system
    return opened


def test_the_kind_of_file_system_comes_from_the_mount_table(tmp_path: Path) -> None:
    assert file_system_kind("/proc") == "proc"
    assert file_system_kind(str(tmp_path)) not in (None, "proc")


def test_nothing_is_watched_where_the_kernel_cannot_tell_every_change() -> None:
    assert FolderEvents.open("/proc") is None  # not a local disk: nothing would be kept


def test_a_change_to_a_file_names_its_folder(gallery: Path, events: FolderEvents) -> None:
    write(gallery / "a" / "b" / "x.jpg", jpeg_bytes())
    assert events.watch("a/b")
    assert events.changed().folders == set()
    (gallery / "a" / "b" / "x.jpg.json").write_text('{"tags": ["sea"]}')
    (gallery / "a" / "top.jpg").write_bytes(b"")  # a file in a folder above: not a/b's
    changes = events.changed()
    assert changes.folders == {"a/b", "a"}
    assert not changes.trees
    assert not changes.everything
    assert events.changed().folders == set()  # each change is told once


def test_thumbnails_and_temp_files_are_not_changes(gallery: Path, events: FolderEvents) -> None:
    (gallery / "a").mkdir()
    assert events.watch("a")
    (gallery / "a" / "x.jpg.thumbnail").write_bytes(b"webp")
    (gallery / "a" / ".lenslet-abc.lenslet-tmp").write_bytes(b"half")
    assert events.changed().folders == set()
    os.replace(gallery / "a" / ".lenslet-abc.lenslet-tmp", gallery / "a" / "x.jpg.json")
    assert events.changed().folders == {"a"}  # the rename into place is the change


def test_a_folder_renamed_above_is_a_change_to_everything_below(
    gallery: Path, events: FolderEvents
) -> None:
    write(gallery / "trips" / "2025" / "x.jpg", jpeg_bytes())
    assert events.watch("trips/2025")
    os.rename(gallery / "trips", gallery / "moved")
    assert "trips" in events.changed().trees
    # A new folder of the old name is watched afresh, not through the moved one's watch.
    write(gallery / "trips" / "2025" / "y.jpg", jpeg_bytes())
    events.changed()
    assert events.watch("trips/2025")
    (gallery / "moved" / "2025" / "z.jpg").write_bytes(b"")
    (gallery / "trips" / "2025" / "y.jpg.json").write_text("{}")
    assert events.changed().folders == {"trips/2025"}


def test_a_folder_deleted_is_a_change_to_it(gallery: Path, events: FolderEvents) -> None:
    write(gallery / "a" / "x.jpg", jpeg_bytes())
    assert events.watch("a")
    (gallery / "a" / "x.jpg").unlink()
    (gallery / "a").rmdir()
    changes = events.changed()
    assert "a" in changes.folders
    assert "a" in changes.trees
    assert not events.watched("a")
    assert not events.watch("a")  # gone: cannot be watched


def test_events_the_kernel_dropped_are_a_change_to_everything(
    gallery: Path, events: FolderEvents
) -> None:
    one, two = gallery / "a" / "one.jpg", gallery / "a" / "two.jpg"
    write(one, b"")
    write(two, b"")
    assert events.watch("a")
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    for n in range(limit // 2 + 10):  # alternating, so the kernel cannot merge them
        os.utime(one, (n, n))
        os.utime(two, (n, n))
    assert events.changed().everything


def test_closed_events_watch_nothing(gallery: Path, events: FolderEvents) -> None:
    (gallery / "a").mkdir()
    events.close()
    assert not events.watch("a")
