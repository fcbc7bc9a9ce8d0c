"""A folder listing's signature: a digest of everything its manifest is built from, so that an
index run that finds the signature a manifest was built from can reuse that manifest whole.

The digest has two parts. :func:`signed_rows` covers the listing's entries; it is the part
that costs (every entry of every folder, each index run), and it needs nothing but the entries,
so an index run computes it where it lists, off the event loop. :func:`listing_signature`
adds the sub-folders' kinds, the size limits and the page size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import orjson
from blake3 import blake3

from . import paths
from .backend import Entry, entry_name
from .manifest import DirKind

__all__ = ["listing_signature", "signed_rows"]

#: Bumped when what a signature covers changes, so that older signatures never match.
#: (2: sidecars by size and mtime, since the manifest carries their ``star``.)
SIGNATURE_VERSION = 2
#: Files that change on every run and say nothing about the folder's images.
_UNSIGNED = frozenset({paths.ROLLUP_NAME, paths.HEALTH_NAME})
#: Files whose presence is all a manifest shows of them.
_BY_NAME = paths.THUMBNAIL_SUFFIX


def signed_rows(entries: Iterable[Entry], thumbnails: Iterable[str] = ()) -> bytes:
    """The entries a signature covers, each once and in name order, as the JSON the digest
    is made of: each image's, sidecar's (the manifest carries their ``star``) and any other
    file's name, kind, size and mtime, and which thumbnails there are (by name: their content
    is not in the manifest). ``thumbnails`` adds thumbnail names kept elsewhere (a cache) or
    made since the listing.

    Left out: sub-folders' sizes and mtimes (which change with every file written in them),
    hidden files (temp files, ``.DS_Store``), the manifest's own files and the root's rollup
    and health: they change without the folder's images changing."""
    # One plain loop: this runs over every entry of every folder of each index run.
    rows: dict[str, tuple[str, str, int, float, str | None]] = {}
    is_manifest, unsigned = paths.is_manifest_name, _UNSIGNED
    for name, kind, size, mtime, problem, _ in entries:
        if name[0] == "." or name in unsigned or (name[0] == "_" and is_manifest(name)):
            continue
        if kind == "dir" or name.endswith(_BY_NAME):
            rows[name] = (name, kind, 0, 0.0, problem)
        else:
            rows[name] = (name, kind, size, mtime, problem)
    for name in thumbnails:
        rows.setdefault(name, (name, "file", 0, 0.0, None))
    # By name (each once; a row starts with it): faster than comparing the rows themselves.
    return orjson.dumps(sorted(rows.values(), key=entry_name))


def listing_signature(
    entries: Sequence[Entry],
    child_kinds: Mapping[str, DirKind],
    *,
    max_file_bytes: int,
    max_pixels: int,
    page_size: int,
    thumbnails: Iterable[str] = (),
    rows: bytes | None = None,
) -> str:
    """The signature of a folder's listing: its :func:`signed_rows`, the sub-folders with
    their kinds, the size limits and the page size. The same signature means the same build.
    ``rows``: the entries' :func:`signed_rows` when they are known already (with no
    ``thumbnails``: they are computed again when there are any)."""
    thumbnails = list(thumbnails)
    if rows is None or thumbnails:
        rows = signed_rows(entries, thumbnails)
    limits = (SIGNATURE_VERSION, max_file_bytes, max_pixels, page_size)
    kinds = sorted(child_kinds.items())
    # The bytes of orjson.dumps([limits, rows, kinds]), which has no spaces, made from parts.
    digest = blake3(b"[")
    for part in (orjson.dumps(limits), b",", rows, b",", orjson.dumps(kinds), b"]"):
        digest.update(part)
    return digest.hexdigest(length=16)
