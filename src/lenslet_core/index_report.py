"""What an index run reports: where it is while it runs (:class:`IndexProgress`) and what it
did (:class:`IndexReport`: counts, the files it skipped with their reasons, its speed)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from .backend import Entry
from .codec import parse_time
from .manifest import ItemEntry, Manifest, Skipped

__all__ = ["FolderOutcome", "IndexProgress", "IndexReport", "arrivals"]


@dataclasses.dataclass
class IndexProgress:
    """Where a run is: folders listed and done, images seen out of those found. Folders are
    built while the walk goes on, so the totals grow until ``listed`` says the walk is over."""

    folders_total: int = 0
    folders_done: int = 0
    images_total: int = 0
    images_done: int = 0
    current: str = ""
    listed: bool = False


@dataclasses.dataclass
class IndexReport:
    """What an index run did (``root`` as printable text: undecodable bytes shown as U+FFFD)."""

    root: str
    path: str
    started_at: str = ""
    finished_at: str = ""
    seconds: float = 0.0
    folders: int = 0
    items: int = 0
    analyzed: int = 0
    reused: int = 0
    manifests_written: int = 0
    sidecars_refreshed: int = 0
    thumbnails_made: int = 0
    #: Whether the run made missing thumbnails, and if not, why.
    thumbnails: str = "off"
    temp_files_removed: int = 0
    #: Moves a killed process left half done, finished (the sidecar follows its image).
    moves_finished: int = 0
    #: For images new since a folder's previous manifest: when each arrived, as epoch seconds
    #: (its mtime, or the previous listing's time if the mtime is older, as after ``cp -p``).
    arrivals: list[float] = dataclasses.field(default_factory=list, repr=False)
    skipped: list[Skipped] = dataclasses.field(default_factory=list)
    #: Image files lenslet cannot show (not JPEG, PNG or WebP), counted by type.
    unsupported: dict[str, int] = dataclasses.field(default_factory=dict)
    #: Each folder's current manifest pages, when the run was asked to keep them (even where
    #: they could not be written, e.g. on a read-only root).
    pages: dict[str, list[Manifest]] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not self.skipped

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0

    def add(self, other: IndexReport) -> None:
        """Count a run over other folders (one folder indexed by a job) into this one."""
        for name in ("folders", "items", "analyzed", "reused", "manifests_written",
                     "sidecars_refreshed", "thumbnails_made", "temp_files_removed",
                     "moves_finished"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.arrivals.extend(other.arrivals)
        self.skipped.extend(other.skipped)
        for kind, count in other.unsupported.items():
            self.unsupported[kind] = self.unsupported.get(kind, 0) + count

    def summary(self) -> dict[str, Any]:
        """The run in a few numbers (what health keeps of it)."""
        return {
            "path": self.path,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "seconds": round(self.seconds, 3),
            "items": self.items,
            "itemsPerSecond": round(self.items_per_second, 1),
            "skipped": len(self.skipped),
            "unsupported": sum(self.unsupported.values()),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "path": self.path,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "seconds": round(self.seconds, 3),
            "folders": self.folders,
            "items": self.items,
            "analyzed": self.analyzed,
            "reused": self.reused,
            "manifestsWritten": self.manifests_written,
            "sidecarsRefreshed": self.sidecars_refreshed,
            "thumbnailsMade": self.thumbnails_made,
            "thumbnails": self.thumbnails,
            "tempFilesRemoved": self.temp_files_removed,
            "movesFinished": self.moves_finished,
            "itemsPerSecond": round(self.items_per_second, 1),
            "skipped": [s.to_json() for s in self.skipped],
            "unsupported": dict(sorted(self.unsupported.items())),
        }


@dataclasses.dataclass
class FolderOutcome:
    """One folder indexed by a job, as the run that sent the job needs it back: the job's
    report, and what the folder's rollup and health are made from (its listing, its current
    items, the listing's time, its manifest's build key and the files it skipped; none of it
    when the folder could not be ``indexed``, as its report then says, or was ``gone``).
    Plain data: it crosses processes."""

    report: IndexReport
    entries: list[Entry]
    items: list[ItemEntry]
    listed_at: float
    manifest: str
    skipped: list[Skipped]
    indexed: bool = True
    gone: bool = False


def arrivals(old_pages: Sequence[Manifest], items: Sequence[ItemEntry]) -> list[float]:
    """When the images missing from a folder's previous manifest arrived (none on a first
    index), for the arrival lag health reports."""
    listed = parse_time(old_pages[0].generated_at) if old_pages else None
    if listed is None:
        return []
    since = listed.timestamp()
    known = {item.name for page in old_pages for item in page.items}
    return [max(item.mtime, since) for item in items if item.name not in known]
