"""A representative, deterministic sample of a cluster's accounts for graph.html.

Above ``[export] graph_max_nodes`` accounts a browser cannot lay out the
graph usefully, so graph.html shows:

- the **hubs**: the ``hub_share`` of the cap with the strongest link weight
  inside the cluster (ties: more links, then account order), and
- a **stratified sample** of the rest: the remaining accounts, ranked by link
  strength, are cut into ``strata`` equal bands and the same number of
  accounts is taken at evenly spaced ranks from each band, so weakly and
  strongly attached accounts are both shown in proportion.

No random numbers are involved: the same cluster gives the same sample.

Example:
    >>> import numpy as np
    >>> idx = representative_sample(np.arange(1000, dtype=float), cap=100)
    >>> len(idx), 999 in idx, bool(np.all(np.diff(idx) > 0))
    (100, True, True)
"""

from __future__ import annotations

import numpy as np


def representative_sample(strength: np.ndarray, cap: int, *, degree: np.ndarray | None = None,
                          hub_share: float = 0.25, strata: int = 10) -> np.ndarray:
    """Sorted indices of at most ``cap`` accounts: the hubs plus a stratified sample of the others."""
    n = len(strength)
    if n <= cap:
        return np.arange(n)
    if cap <= 0:
        return np.zeros(0, dtype=np.int64)
    deg = np.zeros(n) if degree is None else np.asarray(degree, dtype=np.float64)
    order = np.lexsort((np.arange(n), -deg, -np.asarray(strength, dtype=np.float64)))  # strongest first
    n_hubs = min(max(int(round(cap * hub_share)), 1), cap)
    hubs, rest = order[:n_hubs], order[n_hubs:]
    want = cap - n_hubs
    picked: list[np.ndarray] = []
    bands = np.array_split(rest, min(strata, len(rest))) if want and len(rest) else []
    left = want
    for i, band in enumerate(bands):
        k = min(len(band), int(np.ceil(left / (len(bands) - i))))
        if k:
            picked.append(band[np.linspace(0, len(band) - 1, k).round().astype(np.int64)])
        left -= k
    sample = np.concatenate([hubs] + picked) if picked else hubs
    return np.sort(np.unique(sample))[:cap]
