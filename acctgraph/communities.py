"""Community detection: Leiden (modularity) with a conductance-guided split pass.

1. **Leiden** (igraph's C implementation, modularity objective, resolution
   ``[communities] resolution``, seeded) on the combined weighted graph.
   Every account is a vertex, so accounts without edges are singletons.
2. **Resolution limit, handled knowingly.** Modularity merges small,
   well-separated groups into larger communities when the graph is large
   (Fortunato & Barthélemy 2007). So every community of at least
   ``split_min_size`` accounts is re-examined: Leiden runs again on its
   induced subgraph (at resolution 1, modularity's natural scale, or the
   configured one if higher), and each part whose *conductance* inside the community,
   ``cut(P, C \\ P) / min(vol(P), vol(C \\ P))``, is below ``split_conductance``
   is split off as a community of its own; the other parts stay together.
   A real sub-group (a company that modularity glued to a campaign through a
   few shared proxy exits) is nearly cut off from the rest and leaves; pieces
   of one homogeneous campaign are densely interlinked (conductance near 0.5)
   and stay whole, which is why the split is decided by conductance and not
   by the sub-partition's modularity (sparse random graphs have high
   modularity partitions). Split-off parts are examined again, up to
   ``split_depth`` levels.
3. Community ids are numbered by decreasing size (ties: smallest node id), so
   ``community_id`` 0 is the largest; runs are deterministic for a seed.

Example:
    >>> import numpy as np
    >>> src = np.array([0, 0, 1, 3, 3, 4]); dst = np.array([1, 2, 2, 4, 5, 5])
    >>> detect(7, src, dst, np.ones(6)).membership.tolist()
    [0, 0, 0, 1, 1, 1, 2]
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # igraph is imported where it runs: importing it imports matplotlib.pyplot (~0.5 s)
    import igraph as ig


@dataclass
class Partition:
    """A partition of the graph's vertices and how it was found."""

    membership: np.ndarray
    modularity: float
    splits: int = 0
    leiden_runs: int = 0
    seconds: float = 0.0
    log: list[dict] = field(default_factory=list)


def _leiden(g: ig.Graph, resolution: float, iterations: int, seed: int,
            initial: np.ndarray | None = None) -> np.ndarray:
    random.seed(seed)  # igraph draws from Python's random module
    part = g.community_leiden(objective_function="modularity", weights="weight", resolution=resolution,
                              n_iterations=iterations,
                              initial_membership=None if initial is None else initial.tolist())
    return np.asarray(part.membership, dtype=np.int64)


def _conductance(sub: ig.Graph, parts: np.ndarray) -> np.ndarray:
    """Conductance of each part of ``sub`` w.r.t. the rest of ``sub``."""
    el = np.asarray(sub.get_edgelist(), dtype=np.int64).reshape(-1, 2)
    w = np.asarray(sub.es["weight"], dtype=np.float64) if sub.ecount() else np.zeros(0)
    return conductance(el[:, 0], el[:, 1], w, parts)


def conductance(src: np.ndarray, dst: np.ndarray, w: np.ndarray, parts: np.ndarray,
                whole: np.ndarray | None = None) -> np.ndarray:
    """Conductance of each part (``parts``: a label 0..k-1 per vertex) w.r.t. the rest of the graph
    given by the edges: ``cut(P, rest) / min(vol(P), vol(rest))``, 1.0 where that is empty.

    With ``whole`` (a label per part; no edge may join parts of two wholes) the rest is
    the rest of the part's whole, so the parts of many communities are measured at once.

    >>> # a triangle 0-1-2 and a pair 3-4, one edge between them (1-3): cut 1, volumes 7 and 3
    >>> src, dst, parts = np.array([0, 1, 2, 3, 1]), np.array([1, 2, 0, 4, 3]), np.array([0, 0, 0, 1, 1])
    >>> conductance(src, dst, np.ones(5), parts).round(3).tolist()
    [0.333, 0.333]
    >>> # the same twice over (vertices 5-9), as two wholes: each part measured within its own
    >>> two = conductance(np.r_[src, src + 5], np.r_[dst, dst + 5], np.ones(10), np.r_[parts, parts + 2],
    ...                   whole=np.array([0, 0, 1, 1]))
    >>> two.round(3).tolist()
    [0.333, 0.333, 0.333, 0.333]
    """
    k = int(parts.max()) + 1
    vol = np.bincount(parts[src], w, k) + np.bincount(parts[dst], w, k)
    same = parts[src] == parts[dst]
    internal = np.bincount(parts[src[same]], w[same], k)
    cut = vol - 2 * internal
    total = vol.sum() if whole is None else np.bincount(whole, vol)[whole]
    denom = np.minimum(vol, total - vol)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, cut / denom, 1.0)


def detect(n: int, src: np.ndarray, dst: np.ndarray, weight: np.ndarray, *, resolution: float = 1.0,
           iterations: int = 2, seed: int = 0, split_min_size: int = 100, split_conductance: float = 0.2,
           split_depth: int = 2, initial: np.ndarray | None = None) -> Partition:
    """Partition ``n`` vertices given weighted undirected edges (see module docstring).

    ``initial`` (a membership per vertex) starts the first Leiden pass from a
    known partition instead of singletons: far fewer moves when the graph
    changed little (the calibration report's one-layer-off runs).
    """
    import igraph as ig

    t0 = time.perf_counter()
    g = ig.Graph(n=n, directed=False)
    if len(src):
        g.add_edges(np.column_stack([src, dst]))
        g.es["weight"] = np.asarray(weight, dtype=np.float64)
    else:
        g.es["weight"] = []
    memb = _leiden(g, resolution, iterations, seed, initial) if n else np.zeros(0, dtype=np.int64)
    runs, splits, log = 1, 0, []
    next_id = int(memb.max()) + 1 if n else 0
    sizes = np.bincount(memb, minlength=next_id) if n else np.zeros(0, dtype=np.int64)
    # only communities large enough to be re-examined are queued (a million singletons are not);
    # a deque, since list.pop(0) made this loop quadratic in the number of communities
    queue = deque((int(c), 0) for c in np.flatnonzero(sizes >= split_min_size)) if split_depth > 0 else deque()
    while queue:
        c, depth = queue.popleft()
        if depth >= split_depth or sizes[c] < split_min_size:
            continue
        verts = np.flatnonzero(memb == c)
        sub = g.induced_subgraph(verts.tolist(), implementation="create_from_scratch")
        if sub.ecount() == 0:
            continue
        parts = _leiden(sub, max(resolution, 1.0), iterations, seed + 1 + depth)
        runs += 1
        if parts.max() == 0:
            continue
        cond = _conductance(sub, parts)
        leave = np.flatnonzero(cond < split_conductance)
        if len(leave) == 0:
            continue
        stay = np.setdiff1d(np.arange(len(cond)), leave)
        new_groups = [[p] for p in leave] + ([stay.tolist()] if len(stay) else [])
        # the largest group keeps id c; the others get new ids
        new_groups.sort(key=lambda ps: -int(np.isin(parts, ps).sum()))
        if len(new_groups) == 1:
            continue
        log.append({"community_size": int(sizes[c]), "depth": depth, "parts": int(len(cond)),
                    "split_off": int(len(leave)), "conductance": [round(float(x), 4) for x in sorted(cond)[:10]]})
        for i, ps in enumerate(new_groups):
            members = verts[np.isin(parts, ps)]
            cid = c if i == 0 else next_id
            if i:
                next_id += 1
                sizes = np.append(sizes, 0)
            memb[members] = cid
            sizes[cid] = len(members)
            queue.append((cid, depth + 1))
        splits += len(new_groups) - 1
    memb = _renumber(memb)
    q = g.modularity(memb.tolist(), weights="weight") if g.ecount() else 0.0
    return Partition(memb, float(q), splits, runs, time.perf_counter() - t0, log)


def _renumber(memb: np.ndarray) -> np.ndarray:
    """Ids by decreasing size, ties by smallest member."""
    if not len(memb):
        return memb
    uniq, inv, counts = np.unique(memb, return_inverse=True, return_counts=True)
    first = np.full(len(uniq), len(memb), dtype=np.int64)
    np.minimum.at(first, inv, np.arange(len(memb)))
    order = np.lexsort((first, -counts))
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq))
    return rank[inv]
