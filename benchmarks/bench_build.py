"""Former name of ``benchmarks/suite.py``, kept so that old commands still work: runs the suite.

    .venv/bin/python benchmarks/bench_build.py ARGS   ==   .venv/bin/python benchmarks/suite.py ARGS
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

__test__: dict = {}  # nothing for pytest to collect

if __name__ == "__main__":
    import suite

    print("note: benchmarks/bench_build.py is now benchmarks/suite.py; running that", file=sys.stderr)
    raise SystemExit(suite.main())
