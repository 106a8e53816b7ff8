"""Shared helpers of the benchmark scripts: measured child processes, machine facts, cached worlds.

Not a test module and not part of the library: the scripts in ``benchmarks/``
import it as ``common`` (their own folder is first on ``sys.path`` when they run).
Nothing here runs at import time.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__test__: dict = {}  # nothing for pytest to collect (falsy; and doctest reads __test__ as a dict)

#: Input tables of ``acctgraph build`` (labels are ground truth, read only by evaluation).
BUILD_INPUTS = ("accounts", "requests", "payments", "ip_info", "known_bad")


@dataclass
class Measured:
    """One child process: wall seconds, CPU seconds (user + system), peak RSS in MiB, output."""

    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    returncode: int
    stdout: str
    stderr: str
    #: peak of the summed RSS of the child and all its descendants (sampled every ``interval`` s;
    #: matters when the child runs worker processes concurrently, which ``wait4`` cannot see)
    tree_rss_mib: float = float("nan")
    #: most processes seen in the child's tree at once
    tree_procs: int = 1
    #: True when the child's process group was killed at ``run_measured``'s ``timeout``
    timed_out: bool = False


def _tree_rss(root: int) -> tuple[int, int]:
    """(summed RSS bytes, processes) of ``root`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    page = os.sysconf("SC_PAGE_SIZE")
    total, n, todo = 0, 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * page
            n += 1
        except OSError:
            pass
        todo.extend(children.get(pid, ()))
    return total, n


class _TreeSampler:
    """Background thread sampling the summed RSS of a process tree (Linux /proc; no-op elsewhere)."""

    def __init__(self, pid: int, interval: float = 0.25):
        import threading

        self.pid, self.interval, self.peak, self.procs = pid, interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        if os.path.isdir("/proc"):
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss, n = _tree_rss(self.pid)
            except Exception:  # noqa: BLE001 - /proc races: skip this sample
                rss, n = 0, 0
            self.peak, self.procs = max(self.peak, rss), max(self.procs, n)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None,
                 timeout: float | None = None) -> Measured:
    """Run ``cmd`` to completion (or until ``timeout`` seconds) and measure it.

    CPU time is the difference of ``getrusage(RUSAGE_CHILDREN)`` before and after
    (user + system of the child and of any children it waited for). Peak RSS
    comes from ``os.wait4`` on this very child: exact per child, unlike
    ``RUSAGE_CHILDREN.ru_maxrss``, which is the largest child so far; but it is
    the largest *single* process of the child's tree, so the summed RSS of the
    tree (worker processes running at once) is also sampled from /proc.

    With ``timeout``, the child runs in a session (process group) of its own and
    the whole group (the child and any workers it started) is killed with
    SIGKILL once ``timeout`` seconds have passed; the result then has
    ``timed_out=True`` and the measurements up to the kill. The child is polled
    every 0.05 s in that case, so wall time is known to about that precision.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"acctgraph-bench-{os.getpid()}-{time.monotonic_ns()}"
    with open(f"{out_path}.out", "w+b") as fo, open(f"{out_path}.err", "w+b") as fe:
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, env=env, cwd=cwd, start_new_session=timeout is not None)
        sampler = _TreeSampler(proc.pid)
        timed_out = False
        if timeout is None:
            _, status, ru = os.wait4(proc.pid, 0)
        else:
            import signal

            deadline = t0 + timeout
            while True:
                pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
                if pid == proc.pid:
                    break
                if not timed_out and time.perf_counter() >= deadline:
                    # the child is not reaped yet, so its pid (= its process group id) cannot be reused
                    timed_out = True
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.05)
        wall = time.perf_counter() - t0
        sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        stdout, stderr = fo.read().decode(errors="replace"), fe.read().decode(errors="replace")
    for suffix in (".out", ".err"):
        Path(f"{out_path}{suffix}").unlink(missing_ok=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    tree = max(sampler.peak / 2**20, ru.ru_maxrss / 1024.0) if sampler.peak else float("nan")
    return Measured(wall, cpu, ru.ru_maxrss / 1024.0, proc.returncode, stdout, stderr, tree, sampler.procs,
                    timed_out)


def measured(m: Measured) -> dict:
    """A measurement as plain JSON data (what the scripts keep in their raw results)."""
    return {"wall_s": m.wall_s, "cpu_s": m.cpu_s, "peak_rss_mib": m.peak_rss_mib, "tree_rss_mib": m.tree_rss_mib,
            "procs": m.tree_procs, "returncode": m.returncode, "timed_out": m.timed_out}


def acctgraph_cmd() -> list[str]:
    """The command that runs acctgraph's CLI with this interpreter's environment."""
    exe = Path(sys.executable).parent / "acctgraph"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "acctgraph"]


def peak_mib(m: dict) -> float:
    """Peak memory of a measured child: the larger of its own peak RSS and its process tree's summed RSS."""
    tree = m.get("tree_rss_mib", float("nan"))
    return max(m["peak_rss_mib"], tree) if tree == tree else m["peak_rss_mib"]


def rss_text(m: dict) -> str:
    """Peak RSS in MiB as text, with the process tree's summed RSS when workers made it 5% larger."""
    tree = m.get("tree_rss_mib", float("nan"))
    base = f"{m['peak_rss_mib']:,.0f}"
    if tree == tree and m.get("procs", 1) > 1 and tree > m["peak_rss_mib"] * 1.05:
        base += f" (tree {tree:,.0f})"
    return base


def table(headers: list[str], rows: list[list[str]], md: bool = True, left: tuple[str, ...] = ()) -> str:
    """A Markdown table (columns after the first right-aligned, but those named in ``left``), or aligned
    plain text (numbers to the right)."""
    if md:
        lines = ["| " + " | ".join(headers) + " |",
                 "|" + "|".join("---" if i == 0 or h in left else "---:" for i, h in enumerate(headers)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    import re

    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    numeric = [i > 0 and all(re.match(r"[-+]?[\d.,]+|n/a$|$", r[i]) for r in rows) for i in range(len(headers))]

    def fmt(r: list[str]) -> str:
        return "  ".join(c.rjust(widths[i]) if numeric[i] else c.ljust(widths[i]) for i, c in enumerate(r))

    return "\n".join([fmt(headers), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])


def machine_lines(mach: dict, note: str = "") -> list[str]:
    """The "## Machine" section of a benchmark page (``note`` follows the hardware line)."""
    return ["## Machine", "",
            f"- {mach['cores']} cores ({mach['cpu']}), {mach['mem_gib']:.1f} GiB memory, {mach['os']}" + note,
            "- " + ", ".join(f"{k} {val}" for k, val in mach["versions"].items())]


def mem_gib() -> float:
    """Physical memory in GiB (``MemTotal`` of /proc/meminfo, else sysconf)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return float("nan")


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries the build uses (those installed)."""
    import importlib

    out = {"python": platform.python_version()}
    for name in ("acctgraph", "duckdb", "pyarrow", "numpy", "pandas", "igraph", "matplotlib"):
        try:
            out[name] = str(importlib.import_module(name).__version__)
        except Exception:  # noqa: BLE001 - missing or broken optional library
            continue
    return out


def machine() -> dict[str, object]:
    """Facts about this machine for benchmark reports."""
    return {"cores": os.cpu_count(), "mem_gib": mem_gib(), "cpu": cpu_model(),
            "os": f"{platform.system()} {platform.release()}", "versions": library_versions()}


def world_matches(out: Path, scale: float, seed: int, preset: str = "default") -> bool:
    """True if ``out`` holds a complete parquet world of this preset, scale and seed (and acctgraph version)."""
    meta_path = out / "world.json"
    if not meta_path.is_file():
        return False
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return False
    import acctgraph
    from acctgraph.synth import preset as make_preset

    want = json.loads(json.dumps(make_preset(preset, scale=scale).to_dict()))
    return (meta.get("seed") == seed and meta.get("format") == "parquet"
            and meta.get("acctgraph_version") == acctgraph.__version__
            and meta.get("config") == want
            and all((out / name).is_file() for name in meta.get("tables", {}).values()))


_GENERATE = """
import json, sys
import acctgraph
s = acctgraph.generate(sys.argv[1], preset=sys.argv[4], scale=float(sys.argv[2]), seed=int(sys.argv[3]), quiet=True)
print(json.dumps({"accounts": s.counts["accounts"], "requests": s.counts["requests"]}))
"""


#: Sidecar file in a cached world's folder: how long generating that very world took (see ``ensure_world``).
GENERATION_FILE = "generate.json"


def _world_digest(world: Path) -> str:
    """SHA-256 (16 hex digits) of a world's ``world.json``: ties a generation record to that world."""
    import hashlib

    return hashlib.sha256((world / "world.json").read_bytes()).hexdigest()[:16]


def generation_record(world: Path) -> dict | None:
    """The measurement of ``world``'s generation kept beside it, or None (not kept, or of another world)."""
    try:
        rec = json.loads((world / GENERATION_FILE).read_text())
        if rec.get("world_digest") != _world_digest(world):
            return None
    except (OSError, ValueError, AttributeError):
        return None
    return rec


def write_generation_record(world: Path, m: Measured, scale: float, seed: int, preset: str) -> dict:
    """Keep the generation's measurement in ``world/generate.json`` (wall, CPU, peak RSS, date, versions)."""
    import datetime as dt

    import acctgraph

    rec = {**measured(m), "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "acctgraph_version": acctgraph.__version__, "source": source_digest(),
           "scale": scale, "seed": seed, "preset": preset,
           "machine": {"cores": os.cpu_count(), "cpu": cpu_model(), "mem_gib": round(mem_gib(), 1)},
           "world_digest": _world_digest(world)}
    tmp = world / f".{GENERATION_FILE}.tmp"
    tmp.write_text(json.dumps(rec, indent=1) + "\n")
    tmp.replace(world / GENERATION_FILE)
    return rec


def ensure_world(cache: Path, scale: float, seed: int, preset: str = "default", *,
                 regenerate: bool = False) -> tuple[Path, Measured | None]:
    """The cached world ``cache/world-<scale>-<seed>``, generated (in a measured child process) unless it matches.

    Returns the folder and the generation's measurement (None when reused). A generation's
    measurement is also kept in the world's folder (``generate.json``, see ``generation_record``),
    so a later run that reuses the world can still say how long generating it took.
    ``regenerate=True`` generates (and measures) it again even when the cached one matches.
    """
    out = cache / f"world-{scale:g}-{seed}"
    if not regenerate and world_matches(out, scale, seed, preset):
        return out, None
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    m = run_measured([sys.executable, "-c", _GENERATE, str(out), repr(scale), str(seed), preset])
    if m.returncode != 0:
        sys.stderr.write(m.stderr)
        raise SystemExit(f"generating the world at scale {scale:g} failed (exit {m.returncode})")
    write_generation_record(out, m, scale, seed, preset)
    return out, m


def source_digest(package: str = "acctgraph") -> str:
    """SHA-256 (12 hex digits) over the package's ``*.py`` files: which library code a measurement ran."""
    import hashlib
    import importlib

    root = Path(importlib.import_module(package).__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def loglog_slope(x: list[float], y: list[float]) -> float:
    """Least-squares slope of log(y) against log(x) (the scaling exponent); nan with fewer than 2 points."""
    import math

    pts = [(math.log(a), math.log(b)) for a, b in zip(x, y) if a > 0 and b > 0]
    if len(pts) < 2:
        return float("nan")
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    if sxx == 0:
        return float("nan")
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx
