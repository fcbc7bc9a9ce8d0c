"""Listing signatures: what changes them, what does not, and that they stay what earlier
versions wrote (a manifest on disk is reused only while its signature matches)."""

from __future__ import annotations

import orjson
from blake3 import blake3
from hypothesis import given
from hypothesis import strategies as st

from lenslet_core.signature import SIGNATURE_VERSION, listing_signature, signed_rows
from lenslet_core.storage import Entry

LIMITS = {"max_file_bytes": 10**9, "max_pixels": 10**8}
names = st.text("abcxyz_.", min_size=1, max_size=8).filter(lambda n: not n.startswith("."))
images = st.builds(
    Entry,
    names.map(lambda n: n + ".jpg"),
    st.just("file"),
    st.integers(0, 10**6),
    st.floats(0, 2e9, allow_nan=False),
)
listings = st.lists(images, max_size=8, unique_by=lambda e: e.name)


def sign(
    entries: list[Entry],
    kinds: dict[str, str] | None = None,
    *,
    thumbnails: list[str] | None = None,
    rows: bytes | None = None,
    **limits: int,
) -> str:
    limits = {**LIMITS, "page_size": 5000, **limits}
    return listing_signature(
        entries,
        kinds or {},  # type: ignore[arg-type]
        thumbnails=thumbnails or (),
        rows=rows,
        **limits,
    )


@given(listings, st.randoms())
def test_a_signature_does_not_depend_on_listing_order(entries: list[Entry], rng: object) -> None:
    shuffled = list(entries)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert sign(shuffled) == sign(entries)


@given(listings, st.integers(1, 10**6), st.floats(1, 1e6))
def test_what_changes_derived_files_and_folder_mtimes_does_not_change_a_signature(
    entries: list[Entry], size: int, later: float
) -> None:
    kinds = {"sub": "leaf-real"}
    derived = [Entry(e.name + ".thumbnail", "file", size, e.mtime + later) for e in entries]
    noise = [
        Entry("_index.json", "file", size, later),
        Entry("_index_3.json", "file", size, later),
        Entry("_rollup.json", "file", size, later),
        Entry("_health.json", "file", size, later),
        Entry(".x.jpg.lenslet-tmp", "file", size, later),
        Entry(".DS_Store", "file", size, later),
    ]
    before = [*entries, *derived, Entry("sub", "dir", 4096, 1.0)]
    # Thumbnails rewritten, the sub-folder written into, lenslet's own files new.
    after = [
        *entries,
        *(Entry(d.name, d.kind, d.size + 1, d.mtime + 1) for d in derived),
        Entry("sub", "dir", 8192, 2.0 + later),
        *noise,
    ]
    assert sign(after, kinds) == sign(before, kinds)


@given(listings.filter(bool), st.data())
def test_what_a_manifest_shows_changes_its_signature(entries: list[Entry], data: object) -> None:
    draw = data.draw  # type: ignore[attr-defined]
    base = sign(entries)
    victim = draw(st.sampled_from(entries))
    others = [e for e in entries if e is not victim]
    changed = [
        [*others, victim._replace(size=victim.size + 1)],
        [*others, victim._replace(mtime=victim.mtime + 1)],
        others,  # gone
        [*entries, Entry(victim.name + ".json", "file")],  # a sidecar appears
        [*entries, Entry(victim.name + ".thumbnail", "file")],  # a thumbnail appears
        [*entries, Entry("new.png", "file", 1, 1.0)],
        [*entries, Entry("sub", "dir")],
    ]
    for listing in changed:
        assert sign(listing) != base
    # A sidecar rewritten (its star may have changed) changes it too.
    side = Entry(victim.name + ".json", "file", 10, 1.0)
    assert sign([*entries, side]) != sign([*entries, side._replace(mtime=2.0)])
    assert sign(entries, {"sub": "branch"}) != base
    assert sign(entries, max_pixels=1000) != base
    assert sign(entries, max_file_bytes=1000) != base
    assert sign(entries, page_size=10) != base
    assert sign(entries, thumbnails=[victim.name + ".thumbnail"]) != base


KNOWN = [
    Entry("b.jpg", "file", 1234, 1700000000.5),
    Entry("a.png", "file", 99, 1600000000.25),
    Entry("a.png.thumbnail", "file", 0, 0.0),
    Entry("b.jpg.json", "file", 40, 1700000001.0),
    Entry("sub", "dir", 4096, 5.0),
    Entry("_index.json", "file", 10, 1.0),
    Entry(".DS_Store", "file", 1, 1.0),
    Entry("link.jpg", "other", problem="broken symlink (gone)"),
]


def test_a_signature_is_the_one_earlier_versions_wrote() -> None:
    # Made by lenslet before the rows could be made apart from the digest (2026-12-03):
    # galleries indexed then keep their manifests.
    assert sign(KNOWN, {"sub": "branch"}) == "261d75164a6c3f7e30003eccc9377c63"
    elsewhere = sign(KNOWN, {"sub": "branch"}, thumbnails=["b.jpg.thumbnail"])
    assert elsewhere == "32d3edf04f3a29ce5885e49bf378f3b2"


extras = st.lists(
    st.sampled_from(
        [
            Entry("_index.json", "file", 7, 3.0),
            Entry("_rollup.json", "file", 7, 3.0),
            Entry(".x.jpg.lenslet-tmp", "file", 7, 3.0),
            Entry("sub", "dir", 4096, 9.0),
            Entry("gone.jpg", "other", problem="broken symlink (gone)"),
        ]
    ),
    unique=True,
)


@given(listings, extras, st.lists(names.map(lambda n: n + ".jpg.thumbnail"), max_size=3))
def test_rows_made_apart_give_the_signature_of_the_entries(
    entries: list[Entry], extra: list[Entry], thumbnails: list[str]
) -> None:
    listing = [*entries, *extra, *(Entry(e.name + ".thumbnail", "file") for e in entries[:2])]
    kinds = {"sub": "leaf-real"}
    rows = signed_rows(listing)
    assert sign(listing, kinds, rows=rows) == sign(listing, kinds)
    # Thumbnails known besides the listing are signed with it, rows or not.
    assert sign(listing, kinds, rows=rows, thumbnails=thumbnails) == sign(
        listing, kinds, thumbnails=thumbnails
    )
    # The digest is of one JSON document: the limits, the rows and the sub-folders' kinds.
    limits = [SIGNATURE_VERSION, LIMITS["max_file_bytes"], LIMITS["max_pixels"], 5000]
    document = orjson.dumps([limits, orjson.loads(rows), sorted(kinds.items())])
    assert sign(listing, kinds) == blake3(document).hexdigest(length=16)
