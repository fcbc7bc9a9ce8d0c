from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lenslet_core import RollupItem
from lenslet_core.search import LiveSearch, SearchIndex, naive_search

# A small alphabet so that random paths share folders and prefixes, with letters whose lower
# case is special: "É" (é), "ß" (already lower), "İ" (lowers to two code points).
LETTERS = "abAB-.éÉßİ"
segments = st.text(LETTERS, min_size=1, max_size=3).filter(lambda s: s not in (".", ".."))
# Notes and tags may hold a NUL (JSON allows "\u0000"): such images are searched apart.
words = st.text(LETTERS + " \0", max_size=6)


@st.composite
def rollup_items(draw: st.DrawFn) -> list[RollupItem]:
    folders = draw(st.lists(st.lists(segments, max_size=2), min_size=1, max_size=4))
    by_path: dict[str, RollupItem] = {}
    for _ in range(draw(st.integers(0, 12))):
        folder = draw(st.sampled_from(folders))
        name = draw(segments) + draw(st.sampled_from([".jpg", ".PNG", ".webp"]))
        path = "/".join([*folder, name])
        tags = tuple(draw(st.lists(words, max_size=3, unique=True)))
        by_path[path] = RollupItem(path, name, tags, draw(words))
    return list(by_path.values())


@st.composite
def searches(draw: st.DrawFn) -> tuple[list[RollupItem], str, int, str]:
    items = draw(rollup_items())
    fields = [f for i in items for f in (i.name, i.notes, *i.tags) if f]
    from_a_field = draw(st.booleans())
    if fields and from_a_field:
        field = draw(st.sampled_from(fields))
        start = draw(st.integers(0, len(field) - 1))
        end = draw(st.integers(start + 1, len(field)))
        query = field[start:end]
        query = draw(st.sampled_from([query, query.upper(), query.lower(), query.swapcase()]))
    else:
        query = draw(st.text(LETTERS, min_size=1, max_size=3))
    folders = sorted({i.path.rsplit("/", 1)[0] for i in items if "/" in i.path})
    path = draw(st.sampled_from(["", *folders, "/" + draw(segments), "a/b/"]))
    return items, query, draw(st.integers(1, 6)), path


def by_path(items: list[RollupItem]) -> list[RollupItem]:
    return sorted(items, key=lambda i: i.path)


@settings(max_examples=100, deadline=None)
@given(searches())
def test_index_agrees_with_naive_search(case: tuple[list[RollupItem], str, int, str]) -> None:
    items, query, limit, path = case
    expected = naive_search(by_path(items), query, limit=limit, path=path)
    assert SearchIndex(items).search(query, limit=limit, path=path) == expected
    # Groups of one to three images: the three-byte filter rules groups in and out.
    for chunk in (1, 2, 3):
        found = SearchIndex(items, chunk=chunk).search(query, limit=limit, path=path)
        assert found == expected, chunk


def item(path: str, tags: tuple[str, ...] = (), notes: str = "") -> RollupItem:
    return RollupItem(path, path.rsplit("/", 1)[-1], tags, notes)


ITEMS = [
    item("a/bc/sea.jpg"),
    item("a/b/x.jpg", notes="by the sea, at dusk"),
    item("a/b/y.jpg", ("Seaside",)),
    item("z/last.jpg", ("SEA",)),
    item("a/b/nested/deep.png", ("sea", "Sea")),
    item("other.webp", ("land",), "nothing here"),
]


def test_exact_tags_come_first_then_the_other_matches_by_path() -> None:
    found = [i.path for i in SearchIndex(ITEMS).search("sea")]
    assert found == [
        "a/b/nested/deep.png",
        "z/last.jpg",
        "a/b/x.jpg",
        "a/b/y.jpg",
        "a/bc/sea.jpg",
    ]
    assert found == [i.path for i in naive_search(by_path(ITEMS), "sea")]


@pytest.mark.parametrize("query", ["SEA", "sEa", "Sea"])
def test_matching_ignores_case(query: str) -> None:
    found = [i.path for i in SearchIndex(ITEMS).search(query)]
    assert found[:2] == ["a/b/nested/deep.png", "z/last.jpg"]
    assert len(found) == 5


def test_unicode_case_folding_matches_like_str_lower() -> None:
    items = [item("Éclair.jpg", ("Straße",), "İstanbul")]
    index = SearchIndex(items)
    assert index.search("éCLAIR") == items
    assert index.search("STRASSE") == []  # lower(), not casefold(): ß is not "ss"
    assert index.search("straße") == items
    assert index.search("\u0130STANBUL") == items  # İ lowers to "i" + U+0307
    assert index.search("stanbul") == items


def test_a_folder_prefix_is_a_whole_folder() -> None:
    found = [i.path for i in SearchIndex(ITEMS).search("sea", path="a/b")]
    assert found == ["a/b/nested/deep.png", "a/b/x.jpg", "a/b/y.jpg"]
    assert "a/bc/sea.jpg" not in found
    assert SearchIndex(ITEMS).search("sea", path="/a/b/") == SearchIndex(ITEMS).search(
        "sea", path="a/b"
    )
    assert [i.path for i in SearchIndex(ITEMS).search("sea", path="a/bc")] == ["a/bc/sea.jpg"]
    assert SearchIndex(ITEMS).search("sea", path="nowhere") == []


def test_limit_keeps_the_best_first() -> None:
    index = SearchIndex(ITEMS)
    assert [i.path for i in index.search("sea", limit=1)] == ["a/b/nested/deep.png"]
    assert [i.path for i in index.search("sea", limit=3)] == [
        "a/b/nested/deep.png",
        "z/last.jpg",
        "a/b/x.jpg",
    ]
    assert index.search("sea", limit=0) == []


def test_no_match() -> None:
    assert SearchIndex(ITEMS).search("volcano") == []
    assert SearchIndex([]).search("sea") == []


def test_a_query_with_nul_matches_nothing() -> None:
    assert SearchIndex(ITEMS).search("sea\x00") == []
    assert SearchIndex(ITEMS).search("\x00") == []
    assert naive_search(by_path(ITEMS), "\x00") == []


def test_names_tags_and_notes_are_matched_as_substrings() -> None:
    index = SearchIndex(ITEMS)
    assert [i.path for i in index.search("dusk")] == ["a/b/x.jpg"]  # notes
    assert [i.path for i in index.search("side")] == ["a/b/y.jpg"]  # tag
    assert [i.path for i in index.search(".webp")] == ["other.webp"]  # name
    assert index.search("a/b/x") == []  # the image's own path is not matched, only its name
    # ... and its folder's: images whose folder path holds "a/b" (a/bc too: a substring)
    found = [i.path for i in index.search("a/b")]
    assert found == [i.path for i in by_path(ITEMS) if "a/b" in i.path.rsplit("/", 1)[0]]
    assert "a/bc/sea.jpg" in found


FOLDERS = [
    RollupItem("Day 1 – Lake/IMG_001.jpg", "IMG_001.jpg"),
    RollupItem("Day 1 – Lake/sub/IMG_002.jpg", "IMG_002.jpg"),
    RollupItem("Fête à Montréal/IMG_003.jpg", "IMG_003.jpg", ("party",)),
    RollupItem("旅行/東京/IMG_004.jpg", "IMG_004.jpg"),
    RollupItem("other/lake-view.jpg", "lake-view.jpg"),
    RollupItem("other/IMG_005.jpg", "IMG_005.jpg", ("lake",)),
]


@pytest.mark.parametrize("engine", ["index", "naive", "live"])
def test_folders_are_found_by_any_part_of_their_path_any_case_any_accent(engine: str) -> None:
    def search(query: str) -> list[str]:
        if engine == "naive":
            return [i.path for i in naive_search(by_path(FOLDERS), query)]
        if engine == "live":
            live = LiveSearch()
            live.replace(SearchIndex(FOLDERS[:3]))
            live.change({i.path: i for i in FOLDERS[3:]})  # half of it edited since the build
            return [i.path for i in live.search(query)]
        return [i.path for i in SearchIndex(FOLDERS).search(query)]

    # an exact tag first, then names, then the images of folders named so (with sub-folders)
    assert search("lake") == [
        "other/IMG_005.jpg",
        "other/lake-view.jpg",
        "Day 1 – Lake/IMG_001.jpg",
        "Day 1 – Lake/sub/IMG_002.jpg",
    ]
    assert search("montreal") == ["Fête à Montréal/IMG_003.jpg"]
    assert search("FÊTE À") == ["Fête à Montréal/IMG_003.jpg"]
    assert search("東京") == ["旅行/東京/IMG_004.jpg"]
    assert search("旅行/東") == ["旅行/東京/IMG_004.jpg"]
    assert search("day 1 – lake/sub") == ["Day 1 – Lake/sub/IMG_002.jpg"]


def test_an_empty_query_matches_every_image_like_naive_search() -> None:
    # naive_search's contract: "" is a substring of everything.
    expected = naive_search(by_path(ITEMS), "", limit=10)
    assert len(expected) == len(ITEMS)
    assert SearchIndex(ITEMS).search("", limit=10) == expected
    assert SearchIndex(ITEMS).search("", path="a/b") == naive_search(by_path(ITEMS), "", path="a/b")


@settings(max_examples=100, deadline=None)
@given(searches(), rollup_items(), st.data())
def test_live_search_over_changes_agrees_with_naive_search(
    case: tuple[list[RollupItem], str, int, str], changed: list[RollupItem], data: st.DataObject
) -> None:
    """An index of a snapshot plus an overlay of changed and removed images finds what a plain
    scan of the images as they are now finds."""
    items, query, limit, path = case
    removed = (
        data.draw(st.lists(st.sampled_from([i.path for i in items]), max_size=3)) if items else []
    )
    live = LiveSearch()
    live.replace(SearchIndex(items))
    changes: dict[str, RollupItem | None] = {p: None for p in removed}
    changes.update({i.path: i for i in changed})
    live.change(changes)
    now = {i.path: i for i in items}
    for key, value in changes.items():
        if value is None:
            now.pop(key, None)
        else:
            now[key] = value
    expected = naive_search(by_path(list(now.values())), query, limit=limit, path=path)
    assert live.search(query, limit=limit, path=path) == expected


def test_live_search_asks_for_a_new_index_after_enough_changes() -> None:
    live = LiveSearch(rebuild_after=2)
    live.replace(SearchIndex(ITEMS))
    live.change({"a/b/x.jpg": None, "q.jpg": item("q.jpg", ("sea",))})
    assert not live.stale
    assert [i.path for i in live.search("sea", limit=2)] == ["a/b/nested/deep.png", "q.jpg"]
    live.change({"r.jpg": item("r.jpg")})
    assert live.stale


def test_one_nul_in_a_note_does_not_slow_every_search() -> None:
    items = [item(f"a/{n:03d}.jpg", notes=f"note {n}") for n in range(50)]
    items.append(item("a/odd.jpg", notes="pasted\0text"))
    index = SearchIndex(items)
    assert index._odd == [50]  # only that image is searched the plain way
    for query in ("note 1", "pasted", "text", "odd", "\0", "zz"):
        assert index.search(query, limit=5) == naive_search(by_path(items), query, limit=5)
