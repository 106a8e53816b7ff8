"""graph.html's representative sample: capped, keeps the hubs, covers every strength band, deterministic."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from acctgraph.export.sampling import representative_sample


def test_small_clusters_are_shown_whole():
    assert representative_sample(np.ones(5), cap=10).tolist() == [0, 1, 2, 3, 4]


def test_hubs_and_every_band_are_sampled():
    strength = np.arange(10_000, dtype=float)
    idx = representative_sample(strength, cap=400, hub_share=0.25, strata=10)
    assert len(idx) == 400
    assert set(range(9_900, 10_000)) <= set(idx)  # the 100 strongest accounts
    bands = np.histogram(strength[idx[strength[idx] < 9_900]], bins=10, range=(0, 9_900))[0]
    assert (bands >= 25).all()  # every tenth of the rest is represented


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=0, max_size=300), st.integers(0, 80))
def test_sample_is_a_sorted_unique_subset_of_size_min_n_cap(values, cap):
    s = np.array(values, dtype=float)
    idx = representative_sample(s, cap)
    assert len(idx) == min(len(s), cap)
    assert len(np.unique(idx)) == len(idx) and np.all(np.diff(idx) > 0)
    assert np.array_equal(idx, representative_sample(s, cap))
