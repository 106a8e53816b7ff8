"""Seed expansion: start an investigation from accounts already known to be bad.

Given ``known_bad`` accounts (the validated ``known_bad`` table of the
workspace, or ids passed explicitly), a personalised PageRank over the
weighted account graph (restart on the seeds, damping 0.85) measures how
strongly every other account is connected to them. Clusters are ranked by the
PageRank mass of their members; accounts by their own score.

Example:
    >>> import numpy as np
    >>> ppr = personalised_pagerank(4, np.array([0, 1]), np.array([1, 2]), np.ones(2), np.array([0]))
    >>> bool(ppr[1] > ppr[2] > ppr[3])
    True
"""

from __future__ import annotations

import numpy as np


def personalised_pagerank(n: int, src: np.ndarray, dst: np.ndarray, weight: np.ndarray, seeds: np.ndarray,
                          damping: float = 0.85) -> np.ndarray:
    """Personalised PageRank of every vertex, restarting uniformly on ``seeds`` (sums to 1)."""
    import igraph as ig

    if n == 0 or len(seeds) == 0:
        return np.zeros(n)
    g = ig.Graph(n=n, directed=False)
    if len(src):
        g.add_edges(np.column_stack([src, dst]))
    w = np.asarray(weight, dtype=np.float64).tolist() if len(src) else None
    return np.asarray(g.personalized_pagerank(directed=False, damping=damping, reset_vertices=seeds.tolist(),
                                              weights=w), dtype=np.float64)
