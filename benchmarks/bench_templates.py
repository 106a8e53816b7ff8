"""Micro-benchmark of prompt-template mining (mask + hash throughput, finish time, peak RSS).

Usage::

    .venv/bin/python benchmarks/bench_templates.py --rows 2000000

Synthesises prompts from templates x paraphrase variants x slot fills (numbers,
names, quoted strings, URLs, e-mails, JSON tool calls, code blocks, free words)
plus a share of unique free-text prompts, streams them through
:class:`~acctgraph.layers.templates_mining.TemplateMiner` in batches and prints
a table. Grouping quality against the generator's ground truth is printed too
(purity and recall, row-weighted, over the templated rows).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from acctgraph.layers.templates_mining import TemplateConfig, TemplateMiner  # noqa: E402

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _word(i: int, prefix: str) -> str:
    out = prefix
    while True:
        out += LETTERS[i % 26]
        i //= 26
        if not i:
            return out


def synthesise(rows: int, templates: int, unique_frac: float, seed: int) -> tuple[list[str], np.ndarray]:
    """Prompts and ground-truth template labels (-1 for unique free text)."""
    rng = np.random.default_rng(seed)
    content = [_word(i, "q") for i in range(5000)]
    free = [_word(i, "x") for i in range(200_000)]
    glue = "the a to and of for in with your my this that please you".split()
    wrappers = ["Please", "I need you to", "Hey,", "Can you", "Kindly", "Quick question:"]
    names = ["Alice", "Bob Stone", "Maria Garcia", "Chen Wei", "Paris", "Berlin", "Acme Corp"]
    shapes = ["plain", "plain", "plain", "json", "code", "url"]
    tdefs = []
    for _ in range(templates):
        words = rng.choice(len(content), 16, replace=False)
        syn = {int(w): int(rng.integers(len(content))) for w in words[rng.choice(16, 5, replace=False)]}
        tdefs.append(([list(words[:6]), list(words[6:11]), list(words[11:])], syn,
                      shapes[int(rng.integers(len(shapes)))]))
    variants: dict[tuple[int, int], str] = {}

    def variant(t: int, v: int) -> str:
        key = (t, v)
        if key not in variants:
            clauses, syn, _ = tdefs[t]
            vr = np.random.default_rng(t * 1000 + v)
            cl = [list(c) for c in clauses]
            if v % 3:
                vr.shuffle(cl)
            parts = []
            for c in cl:
                ws = [content[syn[w]] if (w in syn and vr.random() < 0.5) else content[w] for w in c]
                ws.insert(int(vr.integers(len(ws) + 1)), glue[int(vr.integers(len(glue)))])
                parts.append(" ".join(ws))
            text = ", ".join(parts)
            if v % 2:
                text = f"{wrappers[int(vr.integers(len(wrappers)))]} {text}"
            variants[key] = text[0].upper() + text[1:]
        return variants[key]

    # Zipf-like template popularity
    pop = 1.0 / np.arange(1, templates + 1) ** 0.8
    labels = rng.choice(templates, size=rows, p=pop / pop.sum())
    unique = rng.random(rows) < unique_frac
    labels[unique] = -1
    v_of = rng.integers(12, size=rows)
    n_free = rng.integers(0, 4, size=rows)
    free_idx = rng.integers(len(free), size=(rows, 20))
    nums = rng.integers(10**7, size=rows)
    out = []
    for i in range(rows):
        lab = int(labels[i])
        fw = " ".join(free[j] for j in free_idx[i, :n_free[i]])
        if lab < 0:  # unique free text, like a human's question
            out.append(" ".join(free[j] for j in free_idx[i, :8 + i % 12]).capitalize() + "?")
            continue
        base = variant(lab, int(v_of[i]))
        shape = tdefs[lab][2]
        name = names[i % len(names)]
        if shape == "json":
            out.append(f'{base}. Reply in JSON: {{"tool": "search", "arguments": {{"query": "{fw} {nums[i]}", '
                       f'"user": "{name}", "page": {nums[i] % 9}}}}}')
        elif shape == "code":
            out.append(f"{base} for {name}:\n```python\ndef f(x):\n    return x * {nums[i]}  # {fw}\n```")
        elif shape == "url":
            out.append(f"{base}: https://example.com/item/{nums[i]}?ref={fw.replace(' ', '-')} "
                       f"(contact ops{nums[i] % 97}@example.org) {fw}")
        else:
            out.append(f"{base} for {name}: {fw} value {nums[i]} \"{free[int(free_idx[i, 19])]}\"")
    return out, labels


def quality(labels: np.ndarray, ids: np.ndarray) -> tuple[float, float]:
    m = labels >= 0
    lab, pid = labels[m], ids[m]
    pairs, cnt = np.unique(np.stack([pid, lab]), axis=1, return_counts=True)
    best_pred: dict[int, int] = {}
    best_true: dict[int, int] = {}
    for p, t, c in zip(pairs[0].tolist(), pairs[1].tolist(), cnt.tolist()):
        best_pred[p] = max(best_pred.get(p, 0), c)
        best_true[t] = max(best_true.get(t, 0), c)
    return sum(best_pred.values()) / m.sum(), sum(best_true.values()) / m.sum()


def cpu_s() -> float:
    """CPU seconds of this process and of its finished children (worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + ch.ru_utime + ch.ru_stime


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--templates", type=int, default=300)
    ap.add_argument("--unique-frac", type=float, default=0.25, help="share of unique free-text prompts")
    ap.add_argument("--batch", type=int, default=1 << 19, help="rows per add() batch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=0, help="TemplateConfig.workers (0 = one per core, max 4)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    prompts, labels = synthesise(args.rows, args.templates, args.unique_frac, args.seed)
    arr = pa.array(prompts, pa.string())
    del prompts
    t_gen = time.perf_counter() - t0
    rss_gen = rss_mb()
    mb = arr.nbytes / 2**20

    miner = TemplateMiner(TemplateConfig(workers=args.workers))
    hashes = []
    t0 = time.perf_counter()
    c0 = cpu_s()
    for i in range(0, len(arr), args.batch):
        hashes.append(miner.add(arr.slice(i, args.batch)))
    t_add = time.perf_counter() - t0
    c_add = cpu_s() - c0
    t0 = time.perf_counter()
    c0 = cpu_s()
    model = miner.finish()
    t_fin = time.perf_counter() - t0
    c_fin = cpu_s() - c0
    t0 = time.perf_counter()
    ids = np.asarray(model.assign(pa.concat_arrays(hashes)).fill_null(-1))
    t_assign = time.perf_counter() - t0
    purity, recall = quality(labels, ids)

    rows = [
        ("rows", f"{args.rows:,}"),
        ("prompt bytes", f"{mb:,.0f} MiB ({arr.nbytes / max(1, len(arr)):.0f} B/row)"),
        ("synthesis", f"{t_gen:.1f} s (RSS {rss_gen:,.0f} MiB)"),
        ("mask+hash (add)", f"{t_add:.1f} s = {args.rows / t_add:,.0f} rows/s ({mb / t_add:.0f} MiB/s), "
                            f"CPU {c_add:.1f} s (workers' CPU counted once they exit)"),
        ("distinct skeletons", f"{model.skeletons.num_rows:,}"),
        ("finish (grouping)", f"{t_fin:.1f} s (CPU {c_fin:.1f} s, includes stopping the workers)"),
        ("assign", f"{t_assign:.2f} s"),
        ("templates", f"{model.templates.num_rows:,} (generator: {args.templates} + unique free text)"),
        ("purity / recall", f"{purity:.4f} / {recall:.4f} (templated rows)"),
        ("peak RSS", f"{rss_mb():,.0f} MiB (of which input+synthesis {rss_gen:,.0f} MiB); "
                     f"largest worker {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:,.0f} MiB"),
    ]
    w = max(len(k) for k, _ in rows)
    print(f"{'metric':<{w}}  value")
    print(f"{'-' * w}  {'-' * 40}")
    for k, v in rows:
        print(f"{k:<{w}}  {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
