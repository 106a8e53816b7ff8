"""Freed memory (Arrow's pool, glibc's heap) goes back to the operating system."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from acctgraph.memory import MMAP_THRESHOLD, TRIM_THRESHOLD, map_large_allocations, release_unused


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


_HOLES = """
import sys
import numpy as np
from acctgraph.memory import map_large_allocations
if sys.argv[1] == "fixed":
    assert map_large_allocations()
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
a = np.ones((1 << 22) - 1024); del a  # a freed 32 MB block: glibc would now serve smaller blocks from the heap
arrays = [np.ones(1 << 21) for _ in range(24)]   # 384 MB of 16 MB arrays (above MMAP_THRESHOLD)
before = rss(); del arrays[::2]  # every other one freed: holes between live arrays
print(round(before - rss()))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc")
def test_map_large_allocations_returns_freed_arrays_to_the_system():
    def returned(mode: str) -> float:
        out = subprocess.run([sys.executable, "-c", _HOLES, mode], capture_output=True, text=True, check=True)
        return float(out.stdout.strip())

    assert returned("fixed") > 150  # the 192 MB freed, unmapped at once
    assert returned("default") < 50  # glibc's default: held as holes in the heap


_TOP = """
import resource, sys
import numpy as np
from acctgraph.memory import heap_tops_kept, map_large_allocations

def faults():  # made and freed again and again: each time at the top of the heap
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(40):
        a = np.ones(1 << 19)  # 4 MiB (below MMAP_THRESHOLD: from the heap)
        del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

assert map_large_allocations()
np.ones(1 << 19)
with heap_tops_kept() as kept:
    assert kept
    inside = faults()
print(faults(), inside)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc")
def test_heap_tops_kept_while_inside_and_trimmed_again_after():
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}  # 4 KiB pages, glibc's defaults
    out = subprocess.run([sys.executable, "-c", _TOP], capture_output=True, text=True, check=True, env=env)
    after, inside = (int(x) for x in out.stdout.split())
    assert inside < 1_000  # the freed 4 MiB kept at the top of the heap and used again
    # glibc's starting threshold again: trimmed each time and faulted in (zeroed) again (about 19k faults)
    assert after > 10_000


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc")
def test_heap_tops_kept_gives_the_free_memory_back_on_leaving():
    script = """
import numpy as np
from acctgraph.memory import heap_tops_kept, map_large_allocations
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
assert map_large_allocations()
with heap_tops_kept(trim=1 << 30):
    arrays = [np.ones(1 << 19) for _ in range(50)]  # 200 MB of 4 MiB blocks on the heap
    del arrays
    held = rss()
print(round(held - rss()))
"""
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    assert float(out.stdout.strip()) > 150  # held while inside, returned on leaving


def test_mmap_threshold_is_within_what_glibc_accepts():
    # mallopt refuses a threshold above 32 MiB on 64-bit glibc (DEFAULT_MMAP_THRESHOLD_MAX)
    assert 128 * 1024 <= MMAP_THRESHOLD <= 32 << 20
    assert MMAP_THRESHOLD <= TRIM_THRESHOLD  # a freed block below the mapping threshold fits in what a heap keeps


def test_map_large_allocations_is_repeatable():
    first = map_large_allocations()
    assert map_large_allocations() == first == (platform.libc_ver()[0] == "glibc")
