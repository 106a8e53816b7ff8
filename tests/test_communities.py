"""Community detection: invariants, planted groups recovered, split pass, determinism."""

from __future__ import annotations

import numpy as np

from acctgraph.communities import detect


def planted(sizes: list[int], p_in: float, p_out: float, seed: int = 0):
    """A planted-partition graph: dense blocks of the given sizes, sparse noise between them."""
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    block = np.repeat(np.arange(len(sizes)), sizes)
    src, dst = np.triu_indices(n, 1)
    same = block[src] == block[dst]
    keep = rng.random(len(src)) < np.where(same, p_in, p_out)
    return n, src[keep], dst[keep], np.ones(int(keep.sum())), block


def test_every_vertex_gets_a_community_and_isolated_ones_are_singletons():
    part = detect(5, np.array([0]), np.array([1]), np.array([1.0]))
    assert len(part.membership) == 5
    assert len(set(part.membership[2:].tolist())) == 3  # three isolated vertices, three singletons
    assert part.membership[0] == part.membership[1]


def test_planted_blocks_are_recovered_whole():
    # plain modularity merges the two 30-blocks (resolution limit); the split pass takes them apart
    n, s, d, w, block = planted([400, 150, 60, 30, 30], 0.3, 0.002)
    part = detect(n, s, d, w, split_min_size=40)
    for b in range(5):
        members = part.membership[block == b]
        assert np.bincount(members).max() / len(members) >= 0.95
        assert (part.membership == np.bincount(members).argmax()).sum() <= 1.05 * len(members)


def test_split_pass_separates_a_small_group_glued_by_the_resolution_limit():
    # a big campaign-like block and a tiny tight group hanging off it by a few edges: plain
    # modularity at a low resolution merges them; the conductance split takes the group out
    n, s, d, w, block = planted([500, 12], 0.05, 0.0)
    cs, cd = np.triu_indices(12, 1)  # the small group is a clique ...
    s, d = np.concatenate([s, cs + 500, [0, 1]]), np.concatenate([d, cd + 500, [500, 501]])  # ... tied by 2 edges
    w = np.ones(len(s))
    merged = detect(n, s, d, w, resolution=0.001, split_min_size=10**9)
    assert merged.membership[0] == merged.membership[505]
    split = detect(n, s, d, w, resolution=0.001, split_min_size=100, split_conductance=0.2)
    assert split.membership[0] != split.membership[505]
    big = split.membership[block == 0]
    assert np.bincount(big).max() / 500 >= 0.95  # the big block itself is not shattered
    assert split.splits >= 1 and split.log


def test_ids_ordered_by_size_and_deterministic():
    n, s, d, w, _ = planted([50, 120, 80], 0.2, 0.005, seed=3)
    a = detect(n, s, d, w, seed=7)
    b = detect(n, s, d, w, seed=7)
    assert (a.membership == b.membership).all()
    sizes = np.bincount(a.membership)
    assert (np.diff(sizes) <= 0).all()
