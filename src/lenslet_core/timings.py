"""Durations counted into fixed buckets, for operators' histograms (queue waits, the time a new
image takes to be indexed). Plain numbers, no metrics library: adapters turn a
:class:`TimingSnapshot` into whatever their monitoring speaks (``lenslet_http`` into Prometheus).
"""

from __future__ import annotations

import bisect
import dataclasses

__all__ = ["QUEUE_BUCKETS", "SLA_BUCKETS", "TimingSnapshot", "Timings"]

#: Seconds: from a millisecond (a thumbnail queued behind nothing) to ten minutes.
QUEUE_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0)
#: Seconds around the PRD's two-minute promise for a new image (indexed with its thumbnail).
SLA_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)


@dataclasses.dataclass(frozen=True)
class TimingSnapshot:
    """Counts per bucket (not cumulative; the last one is above every bound), their sum and
    their number, at one moment."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    total: float

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations at or below it)`` pairs, ending with infinity."""
        running, pairs = 0, []
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            pairs.append((bound, running))
        return pairs


class Timings:
    """A histogram of durations in seconds (negative ones count as zero)."""

    def __init__(self, bounds: tuple[float, ...] = QUEUE_BUCKETS) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError("bucket bounds must be increasing")
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._total = 0.0

    def observe(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self._counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self._total += seconds

    def snapshot(self) -> TimingSnapshot:
        return TimingSnapshot(self.bounds, tuple(self._counts), self._total)
