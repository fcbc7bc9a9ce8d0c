"""Logical path rules: normalization, refusals, lenslet's own files, and staying inside the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lenslet_core import InvalidPath, paths
from lenslet_core.paths import (
    MAX_PATH_LENGTH,
    image_of,
    index_name,
    is_flat_file,
    is_image_name,
    is_manifest_name,
    item_path,
    join,
    normalize,
    parent,
    resolve_within,
    sidecar_name,
    split,
    thumbnail_name,
)

# -- normalize -----------------------------------------------------------------------------------


@pytest.mark.parametrize("root", ["", "/", "//", "///"])
def test_root_spellings(root: str) -> None:
    assert normalize(root) == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/trips/2025", "trips/2025"),
        ("trips/2025", "trips/2025"),
        ("trips/2025/", "trips/2025"),
        ("/trips//2025//", "trips/2025"),
        ("//trips///2025", "trips/2025"),
        ("a.jpg", "a.jpg"),
        ("trips/ünïcödé folder/#1 ?x%20.jpg", "trips/ünïcödé folder/#1 ?x%20.jpg"),
        ("...", "..."),  # three dots is a name, not a step
        ("a/.hidden/..b", "a/.hidden/..b"),
        ("x/C:/y", "x/C:/y"),  # only the first segment can be a drive
        ("12:30.jpg", "12:30.jpg"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_leading_slash_means_the_root() -> None:
    assert normalize("/trips/2025") == normalize("trips/2025")


@pytest.mark.parametrize(
    "raw",
    [
        "..",
        "/..",
        "../x",
        "a/../b",
        "a/..",
        "a/../../x",
        ".",
        "./a",
        "a/./b",
        "a/.",
        "a\x00b",
        "\x00",
        "a\\b",
        "\\",
        "..\\x",
        "C:/x",
        "c:/x",
        "C:",
        "/C:/x",
        "C:foo.jpg",
        "z:\\windows",
    ],
)
def test_refused(raw: str) -> None:
    with pytest.raises(InvalidPath):
        normalize(raw)


def test_length_limit() -> None:
    longest = "a" * MAX_PATH_LENGTH
    assert normalize(longest) == longest
    with pytest.raises(InvalidPath, match="too long"):
        normalize(longest + "a")
    with pytest.raises(InvalidPath):
        normalize("a/" * MAX_PATH_LENGTH)


@pytest.mark.parametrize("value", [None, 3, b"trips", ["trips"]])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(InvalidPath, match="must be a string"):
        normalize(value)  # type: ignore[arg-type]


def test_refusal_carries_the_path() -> None:
    with pytest.raises(InvalidPath) as info:
        normalize("a/../b")
    assert info.value.path == "a/../b"
    assert info.value.code == "invalid_path"


# A segment: any text without a slash; the refusals are tested on their own above.
segment_text = st.text(min_size=1, max_size=12).filter(lambda s: "/" not in s)
slashes = st.text(alphabet="/", min_size=1, max_size=3)


@st.composite
def slashed_paths(draw: st.DrawFn, segments: st.SearchStrategy[list[str]]) -> str:
    """Segments joined by runs of slashes, with optional leading and trailing slashes."""
    parts = draw(segments)
    text = draw(st.sampled_from(["", "/", "//"]))
    for i, part in enumerate(parts):
        if i:
            text += draw(slashes)
        text += part
    return text + draw(st.sampled_from(["", "/", "//"]))


@given(st.text(max_size=60) | slashed_paths(st.lists(segment_text, max_size=6)))
@example("/trips//2025/")
@example("")
def test_normalize_output_is_canonical(raw: str) -> None:
    try:
        out = normalize(raw)
    except InvalidPath:
        return
    assert normalize(out) == out
    assert not out.startswith("/")
    assert not out.endswith("/")
    assert "//" not in out
    if out:
        assert all(seg not in (".", "..") for seg in out.split("/"))
    assert "\x00" not in out
    assert "\\" not in out


@given(slashed_paths(st.lists(segment_text, max_size=6)))
def test_slashes_do_not_change_the_meaning(raw: str) -> None:
    try:
        out = normalize(raw)
    except InvalidPath:
        return
    assert out == "/".join(seg for seg in raw.split("/") if seg)


@given(
    st.lists(segment_text, max_size=4),
    st.lists(segment_text, max_size=4),
    st.sampled_from(["", "/"]),
    st.sampled_from(["", "/"]),
)
def test_any_dotdot_segment_is_refused(
    before: list[str], after: list[str], lead: str, trail: str
) -> None:
    raw = lead + "/".join([*before, "..", *after]) + trail
    with pytest.raises(InvalidPath):
        normalize(raw)


# -- lenslet's own files -------------------------------------------------------------------------

FLAT_FILES = [
    "_index.json",
    "_index_0.json",
    "_index_3.json",
    "_index_12.json",
    "_rollup.json",
    "_health.json",
    ".lenscat.folder.json",
    ".lenslet.lock",
    ".foo.jpg.abc123.lenslet-tmp",
    "foo.jpg.thumbnail",
    "foo.png.thumbnail",
    "foo.jpg.json",
    "foo.JPG.json",
    "foo.jpeg.json",
    "foo.webp.json",
    "photo 1.png.json",
]

NOT_FLAT_FILES = [
    "notes.json",
    "foo.txt.json",
    "_index_x.json",
    "_index.json.bak",
    "index.json",
    "foo.jpg",
    "foo.json.jpg",
    "thumbnail",
]


@pytest.mark.parametrize("name", FLAT_FILES)
def test_flat_files(name: str) -> None:
    assert is_flat_file(name)


@pytest.mark.parametrize("name", NOT_FLAT_FILES)
def test_not_flat_files(name: str) -> None:
    assert not is_flat_file(name)


@pytest.mark.parametrize("name", FLAT_FILES)
@pytest.mark.parametrize("folder", ["", "trips/", "/trips/2025/"])
def test_item_path_refuses_flat_files(folder: str, name: str) -> None:
    with pytest.raises(InvalidPath):
        item_path(folder + name)


@pytest.mark.parametrize("name", [".DS_Store", ".hidden.jpg"])
def test_item_path_refuses_hidden_files(name: str) -> None:
    with pytest.raises(InvalidPath):
        item_path("trips/" + name)


@pytest.mark.parametrize("root", ["", "/", "//"])
def test_item_path_refuses_the_root(root: str) -> None:
    with pytest.raises(InvalidPath, match="root"):
        item_path(root)


@pytest.mark.parametrize(
    "raw",
    [
        "trips/foo.jpg",
        "trips/Ünïcödé ñame.JPG",
        "trips/with space.png",
        "trips/#hash.webp",
        "trips/what?.jpg",
        "trips/100%.jpg",
        "trips/%2e%2e.jpg",
        "trips/日本語/写真.jpeg",
    ],
)
def test_item_path_accepts_image_names(raw: str) -> None:
    assert item_path(raw) == raw
    assert item_path("/" + raw) == raw


@pytest.mark.parametrize("raw", ["notes.json", "package", "trips", "clip.mp4", "a.gif"])
def test_item_path_refuses_names_that_are_not_images(raw: str) -> None:
    # A sidecar write on "package" would otherwise rewrite a user's own package.json.
    with pytest.raises(InvalidPath, match="not an image"):
        item_path(raw)


def test_item_path_applies_the_normalize_rules() -> None:
    with pytest.raises(InvalidPath):
        item_path("trips/../foo.jpg")


image_names = st.builds(
    lambda stem, ext: stem + ext,
    st.text(min_size=1, max_size=20).filter(lambda s: "/" not in s and not s.startswith(".")),
    st.sampled_from([".jpg", ".JPG", ".jpeg", ".jpe", ".jfif", ".png", ".PNG", ".webp"]),
)


@given(image_names)
def test_an_image_is_an_item_but_its_sidecar_and_thumbnail_are_not(name: str) -> None:
    assert is_image_name(name)
    assert not is_flat_file(name)
    assert is_flat_file(sidecar_name(name))
    assert is_flat_file(thumbnail_name(name))
    try:
        logical = item_path("album/" + name)
    except InvalidPath:
        # Only the shared rules (NUL, backslash) may refuse an image name.
        assert "\x00" in name or "\\" in name
        return
    assert logical == "album/" + name
    for own in (sidecar_name(name), thumbnail_name(name)):
        with pytest.raises(InvalidPath):
            item_path("album/" + own)


def test_image_names() -> None:
    assert is_image_name("a.JPEG")
    assert not is_image_name("a.gif")
    assert not is_image_name(".a.jpg")
    assert not is_image_name("jpg")


def test_index_names() -> None:
    assert index_name() == "_index.json"
    assert index_name(0) == "_index_0.json"
    assert index_name(7) == "_index_7.json"
    assert all(is_manifest_name(index_name(p)) for p in (None, 0, 1, 42))
    assert not is_manifest_name("_index_.json")
    assert not is_manifest_name("x_index.json")


def test_join_split_parent() -> None:
    assert join("", "a.jpg") == "a.jpg"
    assert join("trips/2025", "a.jpg") == "trips/2025/a.jpg"
    assert split("trips/2025/a.jpg") == ("trips/2025", "a.jpg")
    assert split("a.jpg") == ("", "a.jpg")
    assert parent("trips/2025/a.jpg") == "trips/2025"
    assert parent("trips") == ""


# -- resolve_within ------------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> str:
    """A real (resolved) gallery root with a file and a folder inside, and a sibling outside."""
    real = Path(os.path.realpath(tmp_path))
    (real / "root" / "sub").mkdir(parents=True)
    (real / "root" / "in.jpg").write_bytes(b"in")
    (real / "outside").mkdir()
    (real / "outside" / "secret.jpg").write_bytes(b"secret")
    return str(real / "root")


def test_plain_paths_resolve_inside(root: str) -> None:
    assert resolve_within(root, "in.jpg") == os.path.join(root, "in.jpg")
    assert resolve_within(root, "sub") == os.path.join(root, "sub")
    assert resolve_within(root, "") == root
    assert resolve_within(root, "sub/..") == root
    assert resolve_within(root, "missing/x.jpg") == os.path.join(root, "missing", "x.jpg")


@pytest.mark.parametrize(
    "relative",
    ["..", "../outside/secret.jpg", "a/../../x", "sub/../../outside", "sub/../../../etc/passwd"],
)
def test_relative_escapes_are_refused(root: str, relative: str) -> None:
    with pytest.raises(InvalidPath, match="outside the root"):
        resolve_within(root, relative)


def test_absolute_paths_are_refused(root: str) -> None:
    with pytest.raises(InvalidPath):
        resolve_within(root, "/etc/passwd")


def test_a_sibling_with_the_root_as_prefix_is_outside(root: str) -> None:
    # "/x/root-evil" starts with "/x/root" as text but is not inside it.
    os.mkdir(root + "-evil")
    with pytest.raises(InvalidPath):
        resolve_within(root, "../root-evil/a.jpg")


def test_symlink_to_outside_is_refused(root: str) -> None:
    outside = os.path.join(os.path.dirname(root), "outside")
    os.symlink(os.path.join(outside, "secret.jpg"), os.path.join(root, "leak.jpg"))
    os.symlink(outside, os.path.join(root, "leakdir"))
    with pytest.raises(InvalidPath):
        resolve_within(root, "leak.jpg")
    with pytest.raises(InvalidPath):
        resolve_within(root, "leakdir/secret.jpg")
    with pytest.raises(InvalidPath):
        resolve_within(root, "leakdir")


def test_relative_symlink_to_outside_is_refused(root: str) -> None:
    os.symlink("../../outside/secret.jpg", os.path.join(root, "sub", "leak.jpg"))
    with pytest.raises(InvalidPath):
        resolve_within(root, "sub/leak.jpg")


def test_dangling_symlink_to_outside_is_refused(root: str) -> None:
    os.symlink("../outside/not-yet.jpg", os.path.join(root, "later.jpg"))
    with pytest.raises(InvalidPath):
        resolve_within(root, "later.jpg")


def test_symlink_inside_is_allowed(root: str) -> None:
    os.symlink("in.jpg", os.path.join(root, "alias.jpg"))
    os.symlink("sub", os.path.join(root, "subalias"))
    assert resolve_within(root, "alias.jpg") == os.path.join(root, "in.jpg")
    assert resolve_within(root, "subalias/x.jpg") == os.path.join(root, "sub", "x.jpg")


def test_paths_that_are_not_utf8_are_refused() -> None:
    import os

    with pytest.raises(InvalidPath, match="UTF-8"):
        normalize(os.fsdecode(b"caf\xe9"))


@given(
    st.text(min_size=1, max_size=20).filter(lambda s: "/" not in s and not s.startswith(".")),
    st.sampled_from([".jpg", ".JPEG", ".png", ".webp"]),
)
def test_image_of_names_the_image_of_its_sidecar_and_thumbnail(stem: str, ext: str) -> None:
    image = stem + ext
    assert image_of(sidecar_name(image)) == image
    assert image_of(thumbnail_name(image)) == image
    assert image_of(image) is None


@pytest.mark.parametrize(
    "name", ["_index.json", "_rollup.json", "notes.txt.json", "x.gif.thumbnail", ".x.jpg.json"]
)
def test_image_of_other_names_is_none(name: str) -> None:
    assert image_of(name) is None


@given(st.lists(st.sampled_from(["a", "b", "ab", "a.b"]), max_size=4),
       st.lists(st.sampled_from(["a", "b", "ab", "a.b"]), max_size=4))  # fmt: skip
def test_within_is_the_folder_itself_or_below_it(path: list[str], folder: list[str]) -> None:
    """``within`` agrees with comparing segments: a folder is a prefix of the path's."""
    assert paths.within("/".join(path), "/".join(folder)) == (path[: len(folder)] == folder)
