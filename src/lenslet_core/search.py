"""Search over the rollup, in memory: case-insensitive substring match on an image's name, tags
and notes, and case- and accent-insensitive on the path of its folder (``lake`` finds
``Day 1 – Lake/…``, ``montreal`` finds ``Fête à Montréal/…``), optionally under a folder, best
first.

Order: images with a tag equal to the query come first, then those whose name, tags or notes
match, then those found by their folder alone; each group in path order. :func:`naive_search`
states that contract as a plain loop (the reference the tests and benchmarks compare against);
:class:`SearchIndex` gives the same results without touching every item:

- names and notes are lowered into one text in path order, so a query is a few C-level
  ``bytes.find`` calls over a few MB, stopping once ``limit`` hits are found;
- tags repeat a lot, so each distinct one is matched once (the same way) and its images come
  from a posting list (tag → image numbers, sorted);
- a folder prefix is a contiguous range of the path-sorted images;
- folders are few next to images: their folded paths are one more text, each with a posting
  list of its images.

:class:`GallerySearch` keeps one root's search current: it serves searches from the rollup in
memory, folds edits in as they happen, builds a new index off the event loop when the rollup
was read again or the edits pile up, and writes ``_rollup.json`` at most once a second.
"""

from __future__ import annotations

import bisect
import collections
import heapq
import itertools
import time
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence

import anyio
import anyio.to_thread

from . import paths
from .rollup import Rollup, RollupItem

__all__ = ["GallerySearch", "LiveSearch", "SearchIndex", "fold", "naive_search", "rank"]

#: Results when the caller gives no limit.
DEFAULT_LIMIT = 100
#: Images per group of the three-byte filter (see ``_Texts``): small enough that a rare
#: sequence rules out most groups, large enough that the masks stay short.
CHUNK = 1024
#: Seconds between two writes of ``_rollup.json`` while edits keep coming.
SAVE_EVERY = 1.0
#: Answers kept for questions asked again (each a list of at most ``limit`` items).
ANSWERS_KEPT = 256
#: Edits a search serves on top of its index before it must build a new one itself (the
#: rollup job builds one in the background after far fewer).
OVERLAY_MAX = 20_000


def fold(text: str) -> str:
    """Text as folder matching compares it: case-folded, accents dropped (``Montréal`` and
    ``MONTREAL`` fold alike)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _folder(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def _prefix(path: str) -> str:
    folder = paths.normalize(path)
    return folder + "/" if folder else ""


def naive_search(
    items: Sequence[RollupItem], query: str, *, limit: int = DEFAULT_LIMIT, path: str = ""
) -> list[RollupItem]:
    """The search contract as a plain scan of ``items`` (which must be sorted by path)."""
    if limit < 1:
        return []
    q, folded = query.lower(), fold(query)
    prefix = _prefix(path)
    groups: tuple[list[RollupItem], ...] = ([], [], [])
    for item in items:
        if item.path.startswith(prefix):
            group = _group(item, q, folded)
            if group is not None:
                groups[group].append(item)
    return [item for group in groups for item in group][:limit]


def _group(item: RollupItem, q: str, folded: str | None) -> int | None:
    """Which group of the results an image is in for the lowered query ``q``: 0 an exact tag,
    1 its name, a tag or its notes, 2 its folder (``folded``: the query folded; ``None``: the
    image is known to match) — ``None`` when it does not match."""
    tags = [t.lower() for t in item.tags]
    if q in tags:
        return 0
    if q in item.name.lower() or any(q in t for t in tags) or q in item.notes.lower():
        return 1
    if folded is None or folded in fold(_folder(item.path)):
        return 2
    return None


def rank(item: RollupItem, query: str) -> tuple[int, str]:
    """Where an image that matches ``query`` stands in the results (see the module
    docstring): its group, then its path."""
    group = _group(item, query.lower(), None)
    assert group is not None  # without a folded query every image is taken for a match
    return group, item.path


class _Texts:
    """Strings lowered and UTF-8 encoded into one bytes text, NUL-terminated, so finding which
    of them contain a query is a few C-level ``bytes.find`` calls, stopping at the first hits
    wanted. (Bytes: one byte per character for mostly-ASCII text, where one "é" would make a
    ``str`` four times larger. A UTF-8 needle only matches at character boundaries.)

    With ``chunk``, the strings are also grouped ``chunk`` at a time and each three-byte
    sequence remembers which groups hold it, so a query of three bytes or more scans only the
    groups that hold all of its sequences: a query that matches nothing costs a few set
    lookups instead of a scan of the whole text."""

    def __init__(self, strings: Iterable[str], *, chunk: int = 0) -> None:
        encoded = [s.encode("utf-8", "surrogatepass") for s in strings]
        self.text = b"\0".join(encoded) + b"\0"
        # starts[i]: where string i begins; one extra entry for the end.
        self.starts = [0, *itertools.accumulate(len(e) + 1 for e in encoded)]
        self.chunk = chunk
        #: three bytes -> bit mask of the groups that hold them
        self.groups: dict[bytes, int] = {}
        if chunk:
            text, starts, count = self.text, self.starts, len(encoded)
            for number, first in enumerate(range(0, count, chunk)):
                part = text[starts[first] : starts[min(first + chunk, count)]]
                bit = 1 << number
                groups = self.groups
                for gram in {part[i : i + 3] for i in range(len(part) - 2)}:
                    groups[gram] = groups.get(gram, 0) | bit

    def __len__(self) -> int:
        return len(self.starts) - 1

    def matching(self, q: str, lo: int = 0, hi: int | None = None) -> Iterator[int]:
        """Numbers of the strings in ``[lo, hi)`` that contain ``q``, in order."""
        needle = q.encode("utf-8", "surrogatepass")
        stop = len(self) if hi is None else hi
        for first, last in self._ranges(needle, lo, stop):
            yield from self._scan(needle, first, last)

    def _ranges(self, needle: bytes, lo: int, hi: int) -> Iterator[tuple[int, int]]:
        """The stretches of ``[lo, hi)`` that can hold ``needle``."""
        if not self.chunk or len(needle) < 3:
            yield lo, hi
            return
        mask = -1
        for i in range(len(needle) - 2):
            mask &= self.groups.get(needle[i : i + 3], 0)
            if not mask:
                return
        size = self.chunk
        mask >>= lo // size
        number = lo // size
        while mask:
            if mask & 1:
                first, last = max(number * size, lo), min((number + 1) * size, hi)
                if first >= hi:
                    return
                if first < last:
                    yield first, last
            mask >>= 1
            number += 1

    def _scan(self, needle: bytes, lo: int, hi: int) -> Iterator[int]:
        text, starts = self.text, self.starts
        position, end = starts[lo], starts[hi]
        while True:
            found = text.find(needle, position, end)
            if found < 0 or found >= end:  # b"" is also found at the very end
                return
            number = bisect.bisect_right(starts, found) - 1
            yield number
            position = starts[number + 1]


class SearchIndex:
    """The rollup's items, indexed for :meth:`search` (``chunk``: images per group of the
    three-byte filter). Immutable: build a new one when the rollup changes (500,000 items
    build in a few seconds, in a worker thread)."""

    def __init__(self, items: Iterable[RollupItem], *, chunk: int = CHUNK) -> None:
        self.items: list[RollupItem] = sorted(items, key=lambda i: i.path)
        self._paths = [item.path for item in self.items]
        # Name and notes of each image, NUL-separated: a query (without NUL) cannot match
        # across the two, nor across images. The rare image whose own text holds a NUL is
        # left out of the text and searched the plain way.
        self._odd = [n for n, i in enumerate(self.items) if "\0" in i.name or "\0" in i.notes]
        odd = set(self._odd)
        texts = (
            "" if n in odd else f"{i.name.lower()}\0{i.notes.lower()}"
            for n, i in enumerate(self.items)
        )
        self._texts = _Texts(texts, chunk=chunk)
        tags: dict[str, list[int]] = {}
        for number, item in enumerate(self.items):
            for tag in dict.fromkeys(t.lower() for t in item.tags):
                tags.setdefault(tag, []).append(number)
        self._tag_postings = tags
        self._tag_lists = list(tags.values())
        self._tags = _Texts(tags)
        # Each folder's images (by number), and the folders' paths folded into one text.
        folders: dict[str, list[int]] = {}
        for number, item in enumerate(self.items):
            folders.setdefault(_folder(item.path), []).append(number)
        self._folder_lists = list(folders.values())
        self._folders = _Texts(fold(folder) for folder in folders)

    def __len__(self) -> int:
        return len(self.items)

    def search(self, query: str, *, limit: int = DEFAULT_LIMIT, path: str = "") -> list[RollupItem]:
        """Up to ``limit`` images matching ``query`` under the folder ``path``, best first."""
        if limit < 1:
            return []
        if "\0" in query:
            return naive_search(self.items, query, limit=limit, path=path)
        q = query.lower()
        prefix = _prefix(path)
        lo = bisect.bisect_left(self._paths, prefix) if prefix else 0
        # Paths under "a/b/" sort before "a/b0" ("0" follows "/").
        hi = bisect.bisect_left(self._paths, prefix[:-1] + "0") if prefix else len(self._paths)
        if lo >= hi:
            return []
        exact = list(_within(self._tag_postings.get(q, ()), lo, hi)[:limit])
        sources: list[Iterable[int]] = [self._texts.matching(q, lo, hi)]
        if self._odd:
            sources.append(n for n in _within(self._odd, lo, hi) if self._plain_match(n, q))
        sources += [_within(self._tag_lists[n], lo, hi) for n in self._tags.matching(q)]
        chosen = set(exact)
        found = exact
        for number, _ in itertools.groupby(heapq.merge(*sources)):
            if len(found) >= limit:
                break
            if number not in chosen:
                found.append(number)
        if len(found) < limit:
            chosen.update(found)
            folded = fold(query)
            lists = [_within(self._folder_lists[n], lo, hi) for n in self._folders.matching(folded)]
            for number in heapq.merge(*lists):
                if len(found) >= limit:
                    break
                if number not in chosen:
                    found.append(number)
        return [self.items[n] for n in found]

    def _plain_match(self, number: int, q: str) -> bool:
        item = self.items[number]
        return q in item.name.lower() or q in item.notes.lower()


class LiveSearch:
    """Search that keeps up with a changing rollup without rebuilding its index each time: an
    index of a snapshot, and on top of it the images changed since (searched the plain way),
    until there are ``rebuild_after`` of them and a new index is due."""

    def __init__(self, rebuild_after: int = 2000) -> None:
        self.index = SearchIndex(())
        self.rebuild_after = rebuild_after
        self._overlay: dict[str, RollupItem | None] = {}
        #: Counts the changes taken: an answer found at one version holds until the next.
        self.version = 0

    def __len__(self) -> int:
        """Changed images searched on top of the index."""
        return len(self._overlay)

    @property
    def stale(self) -> bool:
        """Whether enough has changed that a new index should be built."""
        return len(self._overlay) > self.rebuild_after

    def replace(self, index: SearchIndex) -> None:
        self.index = index
        self._overlay = {}
        self.version += 1

    def change(self, changes: Mapping[str, RollupItem | None]) -> None:
        """Take images changed since the snapshot (``None``: removed)."""
        if changes:
            self._overlay.update(changes)
            self.version += 1

    def search(self, query: str, *, limit: int = DEFAULT_LIMIT, path: str = "") -> list[RollupItem]:
        """As :meth:`SearchIndex.search`, over the snapshot with the changes applied."""
        overlay = self._overlay
        if not overlay or limit < 1:
            return self.index.search(query, limit=limit, path=path)
        # Each changed image can hide at most one of the index's results.
        wider = self.index.search(query, limit=limit + len(overlay), path=path)
        base = [item for item in wider if item.path not in overlay]
        changed = sorted((i for i in overlay.values() if i is not None), key=lambda i: i.path)
        extra = naive_search(changed, query, limit=limit, path=path)
        return sorted(base + extra, key=lambda item: rank(item, query))[:limit]


def _within(numbers: Sequence[int], lo: int, hi: int) -> Sequence[int]:
    """The part of a sorted posting list inside ``[lo, hi)``."""
    if not numbers or (lo == 0 and numbers[-1] < hi):
        return numbers
    return numbers[bisect.bisect_left(numbers, lo) : bisect.bisect_left(numbers, hi)]


class GallerySearch:
    """The search of one root over its :class:`~lenslet_core.rollup.Rollup` (see the module
    docstring). Searches made during a build are served by the old index and the edits on top
    of it."""

    def __init__(self, rollup: Rollup) -> None:
        self.rollup = rollup
        self._live = LiveSearch()
        self._generation = -1  # the rollup generation the index was built from; -1: none yet
        self._lock = anyio.Lock()
        #: Answers by question, with the version of the search they were found at.
        self._answers: collections.OrderedDict[tuple[str, int, str], tuple[int, list[RollupItem]]]
        self._answers = collections.OrderedDict()
        self._building: dict[str, RollupItem | None] | None = None
        self._checked = 0.0
        self._saved = 0.0

    async def load(self) -> None:
        await self.rollup.load()
        self._checked = time.monotonic()

    async def search(
        self, query: str, *, limit: int = DEFAULT_LIMIT, path: str = "", ttl: float
    ) -> list[RollupItem]:
        """Search the rollup as it is now, first reading it again when another process may
        have saved a newer one (checked at most every ``ttl`` seconds)."""
        if self._due(ttl):
            self._checked = time.monotonic()
            await self.rollup.refresh()
        live = await self._current(rebuild=False)
        question = (query, limit, path)
        kept = self._answers.get(question)
        if kept is not None and kept[0] == live.version:
            self._answers.move_to_end(question)
            return kept[1]  # the same question of the same search: the same list
        found = live.search(query, limit=limit, path=path)
        self._answers[question] = (live.version, found)
        self._answers.move_to_end(question)
        if len(self._answers) > ANSWERS_KEPT:
            self._answers.popitem(last=False)
        return found

    def current(self, ttl: float) -> bool:
        """Whether the search is as it is now with nothing to read or build first (then
        :attr:`version` is what :meth:`search` would find at)."""
        return not self._due(ttl) and self._taken() is not None

    def _due(self, ttl: float) -> bool:
        """Whether another process may have saved a newer rollup since it was last looked at."""
        return time.monotonic() - self._checked >= ttl

    @property
    def version(self) -> int:
        """Changes when what a search finds may change (read after :meth:`search`)."""
        return self._live.version

    async def save(self, basis: float | None = None) -> bool:
        """Write ``_rollup.json`` now if it changed; whether it was written."""
        wrote = await self.rollup.save(basis=basis)
        self._saved = time.monotonic()
        return wrote

    async def save_soon(self) -> bool:
        """:meth:`save`, coalesced to at most one write a second however many edits arrive,
        and keep a search index that was used fresh (built off the search path)."""
        await anyio.sleep(max(0.0, self._saved + SAVE_EVERY - time.monotonic()))
        wrote = await self.save()
        if self._generation >= 0:
            await self._current(rebuild=True)
        return wrote

    def _taken(self) -> LiveSearch | None:
        """The search as it is, with the rollup's changes since taken into it, when its index
        is of the rollup read last and not too far behind it (else ``None``: one is built)."""
        live = self._live
        if self._generation != self.rollup.generation:
            return None
        changes = self.rollup.drain()
        if changes:
            live.change(changes)
            if self._building is not None:
                self._building.update(changes)  # the index being built has not seen them
        return live if len(live) < OVERLAY_MAX else None

    async def _current(self, *, rebuild: bool) -> LiveSearch:
        """The search over the rollup as it is now. A new index is built when the rollup was
        read again (another process saved it); ``rebuild`` also builds one when the edits
        since the last build are many."""
        live = self._live
        if not (rebuild and live.stale):
            taken = self._taken()
            if taken is not None:
                return taken
        async with self._lock:  # one build at a time
            if self._generation == self.rollup.generation and not live.stale:
                return live
            generation, parts = self.rollup.generation, self.rollup.parts()
            self.rollup.drain()  # the snapshot has them
            self._building = {}
            try:
                index = await anyio.to_thread.run_sync(
                    lambda: SearchIndex(itertools.chain.from_iterable(parts))
                )
            finally:
                during, self._building = self._building, None
            live.replace(index)
            live.change(during)
            self._generation = generation
        return live
