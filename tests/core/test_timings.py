"""Durations into buckets: every observation lands in exactly one bucket, counted once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lenslet_core import Timings
from lenslet_core.timings import SLA_BUCKETS

durations = st.lists(st.floats(min_value=-5, max_value=1e5, allow_nan=False), max_size=50)


@given(durations)
def test_cumulative_counts_match_the_observations(values: list[float]) -> None:
    timings = Timings(SLA_BUCKETS)
    for value in values:
        timings.observe(value)
    snapshot = timings.snapshot()
    assert snapshot.count == len(values)
    assert snapshot.total == pytest.approx(sum(max(0.0, v) for v in values))
    pairs = snapshot.cumulative()
    assert pairs[-1] == (float("inf"), len(values))
    for bound, below in pairs[:-1]:
        assert below == sum(1 for v in values if max(0.0, v) <= bound)
    assert [n for _, n in pairs] == sorted(n for _, n in pairs)


def test_bounds_must_increase() -> None:
    with pytest.raises(ValueError, match="increasing"):
        Timings((1.0, 1.0, 2.0))
