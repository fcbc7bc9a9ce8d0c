"""lenslet's own kinds of background work, highest priority first.

- ``thumbnail``: make one image's thumbnail (a request waits for it; one worker of its own);
- ``index``: one folder's manifest, with its missing thumbnails;
- ``rollup``: write ``_rollup.json`` (coalesced to one write a second);
- ``health``: write ``_health.json``.

A kind is a value an engine schedules by (:class:`~lenslet_core.jobs.Kind`); what it does is
its handler, registered with the engine beside it.
"""

from __future__ import annotations

from .jobs import Kind

__all__ = ["HEALTH", "INDEX", "KINDS", "ROLLUP", "THUMBNAIL"]

THUMBNAIL = Kind("thumbnail", priority=0, joins_running=True, dedicated_workers=1)
INDEX = Kind("index", priority=1)
ROLLUP = Kind("rollup", priority=2)
HEALTH = Kind("health", priority=3)
KINDS = (THUMBNAIL, INDEX, ROLLUP, HEALTH)
