"""Health: ``_health.json`` at the root, what is wrong with a gallery and how far behind it is.

Counted from what index runs see anyway (each folder's listing and manifest), so it costs no
extra request: images, folders, missing thumbnails, orphan sidecars and thumbnails (their image
is gone), files skipped with the reason, broken or looping pointers, the last index run, and the
job queue (depth and failures).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Sequence
from typing import Any

from . import paths
from .build import unsupported
from .codec import VERSION, dumps, format_time, loads, utcnow
from .errors import NotFound
from .manifest import ItemEntry, Skipped
from .storage import Entry, Store

__all__ = ["FolderHealth", "Health", "Status", "folder_health", "read_health"]


@dataclasses.dataclass(frozen=True)
class Status:
    """How a running gallery is, for a health check: whether the storage answered (else the
    error), this process's job queue, and ``_health.json`` as last written (``None``: none, or
    not read in time). ``ok``: the storage answered, no job failed and the stored health
    finds nothing wrong."""

    reachable: bool
    error: dict[str, str] | None
    jobs: dict[str, Any]
    gallery: dict[str, Any] | None
    readonly: bool

    @property
    def ok(self) -> bool:
        fine = self.gallery is None or bool(self.gallery.get("ok"))
        return self.reachable and not self.jobs.get("failed") and fine

    def to_json(self) -> dict[str, Any]:
        storage: dict[str, Any] = {"reachable": self.reachable}
        if self.error is not None:
            storage["error"] = self.error
        return {
            "ok": self.ok,
            "readonly": self.readonly,
            "storage": storage,
            "jobs": self.jobs,
            "gallery": self.gallery,
        }


@dataclasses.dataclass(frozen=True)
class FolderHealth:
    """One folder's share of the counts."""

    items: int
    missing_thumbnails: int
    orphan_sidecars: tuple[str, ...]
    orphan_thumbnails: tuple[str, ...]
    #: The key of the manifest build these counts were taken from (``""``: unknown).
    manifest: str = ""
    #: Image files lenslet cannot show, by type (``(("image/heic", 12),)``).
    unsupported: tuple[tuple[str, int], ...] = ()


def folder_health(
    folder: str,
    entries: Sequence[Entry],
    items: Sequence[ItemEntry],
    manifest: str = "",
    skipped: Sequence[Skipped] = (),
) -> FolderHealth:
    """Count a folder from its listing and its new manifest (``manifest``: the key of that
    manifest's build, its listing signature and build id; ``skipped``: the files it skipped)."""
    files = {e.name for e in entries if e.kind == "file"}
    sidecars: list[str] = []
    thumbs: list[str] = []
    for name in sorted(files):
        image = paths.image_of(name)
        if image is not None and image not in files:
            found = thumbs if name.endswith(paths.THUMBNAIL_SUFFIX) else sidecars
            found.append(paths.join(folder, name))
    missing = sum(1 for item in items if not item.hasThumb)
    others = tuple(sorted(unsupported(entries, skipped).items()))
    return FolderHealth(len(items), missing, tuple(sidecars), tuple(thumbs), manifest, others)


class Health:
    """The health of one root, in memory, updated by index runs."""

    def __init__(self) -> None:
        self._folders: dict[str, FolderHealth] = {}
        self._skipped: dict[str, Skipped] = {}
        self.last_index: dict[str, Any] | None = None
        #: What the rollup was when last read or written (``Rollup.stored_state``), kept here
        #: so that an index run that changes nothing need not read the rollup itself.
        self.rollup: dict[str, Any] | None = None

    @property
    def broken_pointers(self) -> list[dict[str, str]]:
        """Pointer folders the last runs could not follow (missing or unreachable target,
        loop, refused target, unreadable config): they are skipped folders with a
        ``pointer_*`` code."""
        return [
            {"path": s.path, "code": s.code, "reason": s.reason}
            for s in sorted(self._skipped.values(), key=lambda s: s.path)
            if s.code.startswith("pointer_")
        ]

    def set_folder(self, folder: str, counts: FolderHealth) -> None:
        self._folders[folder] = counts

    def counted(self, folder: str, manifest: str) -> bool:
        """Whether ``folder`` was last counted from the manifest build with this key (so
        counting it again would give the same)."""
        known = self._folders.get(folder)
        return bool(manifest) and known is not None and known.manifest == manifest

    def finish_run(
        self,
        under: str,
        recursive: bool,
        seen: Iterable[str],
        skipped: Sequence[Skipped],
        run: dict[str, Any] | None,
        *,
        keep_below: Iterable[str] = (),
    ) -> None:
        """Take an index run's outcome: folders under ``under`` it did not see are gone, its
        skipped files replace the earlier ones of the folders it covered. ``run`` (its
        summary) becomes the last index run, unless ``None``."""
        seen = set(seen)

        def covered(folder: str) -> bool:
            if any(paths.within(folder, shelter) for shelter in keep_below):
                return False  # a folder the run could not read keeps what was known of it
            return paths.within(folder, under) if recursive else folder == under

        for folder in list(self._folders):
            if covered(folder) and folder not in seen:
                del self._folders[folder]
        for path in list(self._skipped):
            if covered(paths.parent(path)) or covered(path):
                del self._skipped[path]
        for problem in skipped:
            self._skipped[problem.path] = problem
        if run is not None:
            self.last_index = run

    def forget(self, under: str) -> None:
        """Drop the counts and problems of a folder that is gone, and of those below it."""
        for folder in list(self._folders):
            if paths.within(folder, under):
                del self._folders[folder]
        for path in list(self._skipped):
            if paths.within(path, under):
                del self._skipped[path]

    def report(self, jobs: dict[str, Any] | None = None) -> dict[str, Any]:
        """:meth:`to_json` as clients see it (without the rollup bookkeeping)."""
        document = self.to_json(jobs)
        del document["rollup"]
        return document

    def to_json(self, jobs: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``_health.json`` document: counts, the problems by path, and each folder's
        share (so that a later process can carry on from it)."""
        folders = self._folders
        orphan_sidecars = sorted(p for f in folders.values() for p in f.orphan_sidecars)
        orphan_thumbs = sorted(p for f in folders.values() for p in f.orphan_thumbnails)
        skipped = sorted(self._skipped.values(), key=lambda s: s.path)
        failures = int((jobs or {}).get("failed", 0))
        others: dict[str, int] = {}
        for folder in folders.values():
            for kind, count in folder.unsupported:
                others[kind] = others.get(kind, 0) + count
        counts = {
            "items": sum(f.items for f in folders.values()),
            "folders": len(folders),
            "missingThumbnails": sum(f.missing_thumbnails for f in folders.values()),
            "orphanSidecars": len(orphan_sidecars),
            "orphanThumbnails": len(orphan_thumbs),
            "skipped": len(skipped),
            "brokenPointers": len(self.broken_pointers),
            "failedJobs": failures,
            "unsupported": sum(others.values()),
        }
        problems = ("orphanSidecars", "orphanThumbnails", "skipped", "brokenPointers", "failedJobs")
        return {
            "v": VERSION,
            "generatedAt": format_time(utcnow()),
            "ok": not any(counts[k] for k in problems),
            "counts": counts,
            "orphanSidecars": orphan_sidecars,
            "orphanThumbnails": orphan_thumbs,
            "skipped": [s.to_json() for s in skipped],
            # Not problems: files lenslet does not show (JPEG, PNG, WebP only), said so.
            "unsupported": dict(sorted(others.items())),
            "pointers": {"broken": self.broken_pointers},
            "lastIndex": self.last_index,
            "jobs": jobs,
            "folders": {path: _folder_json(f) for path, f in sorted(folders.items())},
            "rollup": self.rollup,
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Health:
        """Carry on from a stored ``_health.json`` (what cannot be read back is dropped: the
        next index run of a folder counts it again)."""
        health = cls()
        sidecars: dict[str, list[str]] = {}
        thumbs: dict[str, list[str]] = {}
        for path in document.get("orphanSidecars") or ():
            sidecars.setdefault(paths.parent(str(path)), []).append(str(path))
        for path in document.get("orphanThumbnails") or ():
            thumbs.setdefault(paths.parent(str(path)), []).append(str(path))
        for path, counts in (document.get("folders") or {}).items():
            if isinstance(counts, dict):
                health._folders[str(path)] = FolderHealth(
                    int(counts.get("items", 0)),
                    int(counts.get("missingThumbnails", 0)),
                    tuple(sidecars.get(path, ())),
                    tuple(thumbs.get(path, ())),
                    # Written before unsupported files were counted: counted again.
                    str(counts.get("manifest") or "") if "unsupported" in counts else "",
                    _counts_of(counts.get("unsupported")),
                )
        for problem in document.get("skipped") or ():
            if isinstance(problem, dict):
                path = str(problem.get("path", ""))
                reason, code = str(problem.get("reason", "")), str(problem.get("code", ""))
                health._skipped[path] = Skipped(path, reason, code)
        last = document.get("lastIndex")
        health.last_index = last if isinstance(last, dict) else None
        health.rollup = _rollup_state(document.get("rollup"))
        return health

    def rollup_signatures(self, stamp: tuple[int, float] | None) -> dict[str, str] | None:
        """The rollup's folders and their signatures as :attr:`rollup` has them, if the
        rollup's size and mtime are still ``stamp`` (``None``: not known)."""
        if self.rollup is None or stamp is None or tuple(self.rollup["stamp"]) != stamp:
            return None
        return dict(self.rollup["folders"])

    async def save(self, storage: Store, jobs: dict[str, Any] | None = None) -> None:
        """Write ``_health.json`` (atomically)."""
        await storage.write(paths.HEALTH_NAME, dumps(self.to_json(jobs)))


def _folder_json(counts: FolderHealth) -> dict[str, Any]:
    document: dict[str, Any] = {
        "items": counts.items,
        "missingThumbnails": counts.missing_thumbnails,
    }
    if counts.manifest:
        document["manifest"] = counts.manifest
    document["unsupported"] = dict(counts.unsupported)
    return document


def _rollup_state(value: object) -> dict[str, Any] | None:
    """The stored rollup state, if it has its shape (else nothing is known of the rollup)."""
    if not isinstance(value, dict):
        return None
    stamp, folders = value.get("stamp"), value.get("folders")
    if not isinstance(stamp, list) or len(stamp) != 2 or not isinstance(folders, dict):
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in stamp):
        return None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in folders.items()):
        return None
    return {"stamp": [int(stamp[0]), float(stamp[1])], "folders": folders}


def _counts_of(value: object) -> tuple[tuple[str, int], ...]:
    """Counts by type as stored (what is not is dropped: counted again by the next run)."""
    if not isinstance(value, dict):
        return ()
    return tuple(sorted((str(k), v) for k, v in value.items() if isinstance(v, int)))


async def read_health(storage: Store, *, bookkeeping: bool = False) -> dict[str, Any] | None:
    """The stored ``_health.json``, or ``None`` when there is none; without what it keeps of
    the rollup for index runs (``rollup``: not for clients) unless ``bookkeeping``."""
    try:
        document = await storage.read_into(
            paths.HEALTH_NAME, functools.partial(loads, what=paths.HEALTH_NAME)
        )
    except NotFound:
        return None
    if not bookkeeping and isinstance(document, dict):
        document.pop("rollup", None)
    return document
