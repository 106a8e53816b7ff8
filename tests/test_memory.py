"""Freed Arrow memory goes back to the operating system when asked."""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pytest

from acctgraph.memory import release_unused


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_release_unused_returns_freed_arrow_buffers():
    release_unused()
    before = _rss_mb()
    texts = pa.concat_arrays([pa.array(["x" * 400] * 1000)] * 1000)  # about 400 MB of Arrow buffers
    shuffled = texts.take(pa.array(np.random.default_rng(0).permutation(len(texts))))
    assert _rss_mb() > before + 600
    del texts, shuffled
    release_unused()
    assert _rss_mb() < before + 150
