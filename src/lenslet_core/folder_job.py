"""One folder of an index run as a job of its own: what a worker does for a run that walked
the tree elsewhere (``lenslet index --scheduler``, a server's index job on a cluster). It
indexes the folder — its manifest and missing thumbnails, as the settings say — and gives
back what the sending run keeps its rollup and health from (:class:`FolderOutcome`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from . import paths
from .imaging import Imaging
from .index_report import FolderOutcome
from .indexing import index_tree
from .manifest import ItemEntry, Skipped
from .settings import Settings
from .sidecar import Sidecar
from .storage import Entry, Store
from .thumbnails import ThumbnailStore

__all__ = ["index_folder"]


async def index_folder(
    storage: Store,
    imaging: Imaging,
    settings: Settings,
    folder: str,
    *,
    thumbs: ThumbnailStore | None = None,
) -> FolderOutcome:
    """Index one folder (not those below it) as a job does for a run that walked elsewhere:
    its manifest and missing thumbnails (as the settings say), and what the run needs back."""
    told: list[tuple[list[Entry], list[ItemEntry], float, str, list[Skipped]]] = []

    async def keep(
        done: str,
        entries: Sequence[Entry],
        items: Sequence[ItemEntry],
        listed_at: float,
        manifest: str,
        skipped: Sequence[Skipped],
        sidecars: Mapping[str, Sidecar],  # not sent back: the sending run's rollup reads them
    ) -> None:
        told.append(([*entries], [*items], listed_at, manifest, [*skipped]))

    report = await index_tree(
        storage,
        imaging,
        settings,
        folder,
        recursive=False,
        thumbs=thumbs,
        make_thumbs=settings.thumbnails,
        on_folder=keep,
    )
    # Its sub-folders that cannot be used are the sending run's to report (its walk saw them).
    listed = told[0][0] if told else []
    unusable = {paths.join(folder, e.name) for e in listed if e.kind == "dir" and e.problem}
    report.skipped = [
        s for s in report.skipped if not (s.code == "unusable_entry" and s.path in unusable)
    ]
    if not told:  # the folder's manifest could not be read: the report says why
        return FolderOutcome(report, [], [], time.time(), "", [], indexed=False)
    return FolderOutcome(report, *told[0])
