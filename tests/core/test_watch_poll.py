"""Watching by listing (roots without change events): what a wave must cover when one listing
of files is compared with the next."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lenslet_core import paths
from lenslet_core.watch import Snapshot, Wave, diff_snapshots, poll_changes

FOLDERS = ["", "a", "a/b", "a/b/c", "d"]
NAMES = ["x.jpg", "y.png", "x.jpg.json", "x.jpg.thumbnail", "_index.json", ".hidden.jpg"]
files = st.builds(lambda f, n: paths.join(f, n), st.sampled_from(FOLDERS), st.sampled_from(NAMES))
snapshots = st.dictionaries(files, st.tuples(st.integers(0, 3), st.just(1.0)), max_size=12)


def folders_of(snapshot: Snapshot) -> set[str]:
    found = {""}
    for path in snapshot:
        folder = paths.parent(path)
        while folder not in found:
            found.add(folder)
            folder = paths.parent(folder)
    return found


def covered(folder: str, wave: Wave) -> bool:
    """Whether a wave reindexes ``folder`` (itself, or under a new folder indexed whole)."""
    return folder in wave.folders or any(
        folder == top or folder.startswith(top + "/") for top in wave.new_folders
    )


@given(snapshots, snapshots)
def test_every_change_that_counts_is_covered(before: Snapshot, after: Snapshot) -> None:
    wave = diff_snapshots(before, after)
    had, has = folders_of(before), folders_of(after)
    for path in before.keys() | after.keys():
        if before.get(path) == after.get(path):
            continue
        folder, name = paths.split(path)
        counts = not name.startswith((".", "_")) and not name.endswith(".thumbnail")
        if counts and folder in has:
            assert covered(folder, wave), (path, wave)
    assert wave.removed == had - has
    assert wave.new_folders <= has - had
    for new in has - had:
        assert covered(new, wave)
        assert covered(paths.parent(new), wave) or paths.parent(new) in has - had
    assert not (wave.folders & wave.removed)


@given(snapshots)
def test_nothing_changed_is_no_wave(snapshot: Snapshot) -> None:
    assert not diff_snapshots(snapshot, dict(snapshot))


def test_derived_files_are_not_news() -> None:
    before: Snapshot = {"a/x.jpg": (1, 1.0)}
    after: Snapshot = {**before, "a/x.jpg.thumbnail": (5, 2.0), "a/_index.json": (9, 2.0)}
    assert not diff_snapshots(before, after)
    edited = diff_snapshots(after, {**after, "a/x.jpg.json": (3, 3.0)})
    assert edited.folders == {"a"}


def test_under_keeps_the_wave_below_a_folder() -> None:
    before: Snapshot = {"a/x.jpg": (1, 1.0), "d/x.jpg": (1, 1.0)}
    after: Snapshot = {"a/x.jpg": (2, 1.0), "d/x.jpg": (2, 1.0), "a/new/y.jpg": (1, 1.0)}
    wave = diff_snapshots(before, after, under="a")
    assert wave.folders == {"a"}
    assert wave.new_folders == {"a/new"}


@pytest.mark.anyio
async def test_poll_hands_over_each_difference_and_stops() -> None:
    listings: list[Snapshot] = [
        {"a/x.jpg": (1, 1.0)},
        {"a/x.jpg": (1, 1.0)},
        {"a/x.jpg": (1, 1.0), "a/y.jpg": (2, 2.0)},
    ]
    waves: list[Wave] = []
    stop = anyio.Event()

    async def snapshot() -> Snapshot:
        current = listings[0] if len(listings) == 1 else listings.pop(0)
        return current

    async def on_wave(wave: Wave) -> None:
        waves.append(wave)
        stop.set()

    with anyio.fail_after(10):
        await poll_changes(snapshot, on_wave, stop=stop, interval=0.01)
    assert [w.folders for w in waves] == [{"a"}]
