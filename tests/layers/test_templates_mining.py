"""Prompt-template mining: masking, paraphrase grouping, determinism, scale."""

from __future__ import annotations

import random
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import acctgraph.layers.templates_mining as tm
from acctgraph.layers.templates_mining import (
    MAX_CHARS,
    TemplateConfig,
    TemplateMiner,
    TemplateModel,
    mask_prompts,
)


def mine(prompts, config: TemplateConfig = TemplateConfig(), batch: int | None = None):
    miner = TemplateMiner(config)
    arr = pa.array(prompts, pa.string())
    step = batch or max(1, len(arr))
    hashes = [miner.add(arr.slice(i, step)) for i in range(0, len(arr), step)]
    model = miner.finish()
    h = pa.concat_arrays(hashes) if hashes else pa.array([], pa.uint64())
    return model, h, model.assign(h).to_pylist()


# ---------------------------------------------------------------------------
# masking
# ---------------------------------------------------------------------------

MASK_CASES = [
    ("Solve 3x + 5 = 20 and round 3.14159 to 2 places",
     "solve <n> and round <n> to <n> places"),
    ("Order #12,345 shipped on 2024-01-05 at 10:30, id 550e8400-e29b-41d4-a716-446655440000 hex 0xDEADBEEF",
     "order <n> shipped on <n> at <n> id <n> hex <n>"),
    ("Read https://example.com/a?b=1&c=2 and www.test.org/page, then reply.",
     "read <url> and <url> then reply"),
    ("Contact john.doe+x@mail.example.co.uk or me@x.io today",
     "contact <email> or <email> today"),
    ('Translate "good morning, friend" and \'see you\' but keep don\'t and it\'s',
     "translate <q> and <q> but keep don t and it s"),
    ("Explain this:\n```python\ndef f(x):\n    return x * 2\n```\nand `g(y)` too",
     "explain this <code> and <code> too"),
    ("Write a cover letter for Jane Smith applying to Google in New York",
     "write a cover letter for <name> applying to <name> in <name>"),
    ("Hello World! Plan a trip to Paris, Rome and Tokyo.",
     "hello <name> plan a trip to <name> and <name>"),
    ('{"tool": "search", "arguments": {"query": "weather in Paris", "limit": 5}}',
     "tool <q> arguments query <q> limit <n>"),
    ("  Lots   of\t\tspace\n\nand <b>html</b> & punctuation!!!  ",
     "lots of space and b html b punctuation"),
    ("Übersetze: Grüße aus München, ÄRGER", "übersetze grüße aus <name> ärger"),
    ("请一步一步思考 then answer", "请 一 步 一 步 思 考 then answer"),
    ("", ""),
]


@pytest.mark.parametrize("raw,expected", MASK_CASES)
def test_mask_pinned_examples(raw, expected):
    assert mask_prompts(pa.array([raw])).to_pylist() == [expected]


def test_mask_vectorised_matches_rowwise_and_keeps_nulls():
    raws = [r for r, _ in MASK_CASES] * 3 + [None]
    out = mask_prompts(pa.chunked_array([pa.array(raws[:10]), pa.array(raws[10:])]))
    assert out.to_pylist() == [e for _, e in MASK_CASES] * 3 + [None]
    assert out.null_count == 1
    assert mask_prompts(pa.array([], pa.string())).to_pylist() == []
    assert mask_prompts(pa.array([None, None], pa.null())).to_pylist() == [None, None]


def test_control_bytes_cannot_forge_placeholders():
    assert mask_prompts(pa.array(["a\x05b \x01 c\x00d"])).to_pylist() == ["a b c d"]


def test_huge_prompt_is_truncated():
    big = "Think step by step about " + "lorem ipsum dolor " * 600_000  # ~10.8 MB
    t0 = time.perf_counter()
    out = mask_prompts(pa.array([big, "short one here"])).to_pylist()
    assert time.perf_counter() - t0 < 5
    assert out[0].startswith("think step by step about lorem ipsum dolor")
    assert len(out[0]) <= MAX_CHARS
    model, h, ids = mine([big, big[:5000], "short one here"])
    assert ids[0] == ids[1] and ids[0] is not None  # same first 2,000 characters
    assert len(model.templates["example"][0].as_py()) <= 300


# ---------------------------------------------------------------------------
# grouping
# ---------------------------------------------------------------------------

COT = [
    "Think step by step and show your full reasoning before giving the final answer to: {p}",
    "Think step-by-step and show all of your reasoning before you give the final answer to: {p}",
    "Before giving the final answer, think step by step and show your full reasoning. Problem: {p}",
    "Please think step by step and show your complete reasoning before giving the final answer to: {p}",
    "Think carefully step by step and show your full reasoning before giving the final answer to this: {p}",
    "Show your full reasoning and think step by step before giving your final answer to: {p}",
    "Think step by step, show your full reasoning, then give the final answer to: {p}",
    "I need you to think step by step and show your full reasoning before giving the final answer to: {p}",
    "Think step by step and show your whole reasoning before providing the final answer to: {p}. Thanks!",
    "Think it through step by step and show the full reasoning before giving the final answer for: {p}",
]
PROBLEMS = [
    "If a train travels 120 km in 1.5 hours, what is its average speed?",
    "What is 17 * 23 - 44?",
    "A rectangle has a perimeter of 30 and a width of 4; find its area.",
    "How many prime numbers are there below 50?",
    "Solve for x: 2x + 7 = 31",
    "Is 1001 divisible by 7?",
]

POPULAR = {
    "linux": ["I want you to act as a Linux terminal. I will type commands and you will reply with what "
              "the terminal should show. Only reply with the terminal output inside one unique code block. "
              "My first command is {c}",
              ],
    "travel": ["You are a travel planner. Plan a {n}-day itinerary for {city} for a family with a budget of "
               "${m}, including hotels, food and sightseeing."],
    "translate": ["Translate the following into French: {s}"],
    "summarize": ["Summarize this article in a few bullet points: {art}"],
    "cover": ["Write a cover letter for a {job} position at {company}, highlighting my experience in {skill}."],
    "eli5": ["Explain like I'm five: {q}"],
}
FILLS = {
    "c": ["pwd", "ls -la", "cat /etc/hosts", "whoami"],
    "n": ["3", "5", "7", "10"],
    "city": ["Paris", "Kyoto", "Lisbon", "Cape Town"],
    "m": ["2000", "3500", "800", "12,000"],
    "s": ["the weather is nice today and we are going to the park",
          "scientists discovered a new species of frog in the rainforest, which glows under ultraviolet light",
          "the central bank raised interest rates again to fight inflation",
          "our team shipped the new release after three weeks of testing"],
    "art": ["The city council approved a plan on Monday to build two hundred affordable homes near the river.",
            "Researchers say that regular walking lowers blood pressure, according to a study of older adults.",
            "A storm knocked out power for thousands of homes overnight; crews expect repairs by Friday.",
            "The museum reopened after renovation, adding a wing devoted to modern photography."],
    "job": ["data analyst", "nurse", "software engineer", "teacher"],
    "company": ["Acme Corp", "Globex", "Initech", "Umbrella"],
    "skill": ["SQL and dashboards", "patient care", "distributed systems", "classroom management"],
    "q": ["why is the sky blue?", "how do airplanes fly?", "what is money?", "why do we sleep?"],
}


def _popular_prompts():
    rows, labels = [], []
    for name, templates in POPULAR.items():
        for i in range(4):
            for t in templates:
                rows.append(t.format(**{k: v[(i + j) % len(v)] for j, (k, v) in enumerate(FILLS.items())}))
                labels.append(name)
    return rows, labels


def test_paraphrases_group_and_popular_templates_stay_apart():
    cot = [t.format(p=PROBLEMS[i % len(PROBLEMS)]) for i, t in enumerate(COT)]
    cot += [t.format(p=PROBLEMS[(i + 3) % len(PROBLEMS)]) for i, t in enumerate(COT)]
    pop, pop_labels = _popular_prompts()
    model, _, ids = mine(cot + pop)
    cot_ids = set(ids[:len(cot)])
    assert len(cot_ids) == 1, [(p, i) for p, i in zip(cot, ids)]
    by_label: dict[str, set[int]] = {}
    for lab, tid in zip(pop_labels, ids[len(cot):]):
        by_label.setdefault(lab, set()).add(tid)
    for lab, tids in by_label.items():
        assert len(tids) == 1, (lab, tids)
    all_sets = [cot_ids] + list(by_label.values())
    flat = [next(iter(s)) for s in all_sets]
    assert len(set(flat)) == len(flat), "different templates merged"
    assert model.templates.num_rows == len(flat)
    assert model.templates["requests"].to_pylist()[0] == len(cot)  # biggest template first


def test_agentic_json_template_groups():
    tools = [("search", "query", "best pizza in Naples"), ("search", "query", "GPU prices 2025"),
             ("calculator", "expression", "(17 * 23) - 4"), ("browser", "url", "https://news.ycombinator.com"),
             ("search", "query", "how to fine-tune a model"), ("files", "path", "/home/user/report.pdf")]
    rows = []
    for i, (tool, arg, val) in enumerate(tools):
        rows.append('You are an agent with tools. Respond ONLY with JSON. '
                    f'{{"thought": "I should use the {tool} tool", "tool": "{tool}", '
                    f'"arguments": {{"{arg}": "{val}", "max_results": {i + 3}}}, "step": {i}}}')
    other, _ = _popular_prompts()
    _, _, ids = mine(rows + other)
    assert len(set(ids[:len(rows)])) == 1
    assert not set(ids[:len(rows)]) & set(ids[len(rows):])


def test_chaining_guard_splits_bridged_templates():
    # A and B are different templates; bridge prompts mix them half-and-half,
    # so A~bridge and bridge~B are similar but A and B are not.
    a = "carefully list every ingredient needed and the exact cooking time for the recipe of {x}"
    b = "write a short poem with vivid imagery about the ocean waves at night near {x}"
    a_words, b_words = a.split(), b.split()
    rows = [a.format(x=f"dish{i}") for i in range(30)] + [b.format(x=f"place{i}") for i in range(30)]
    for i in range(6):
        k = len(a_words) // 2 + (i % 3) - 1
        rows.append(" ".join(a_words[:k] + b_words[k:]).format(x=f"mix{i}"))
    cfg_noguard = TemplateConfig(anchor_threshold=0.0)
    _, _, ids_ng = mine(rows, cfg_noguard)
    _, _, ids = mine(rows)
    assert len(set(ids[:30])) == 1 and len(set(ids[30:60])) == 1
    assert ids[0] != ids[30], "chain through bridge prompts merged two templates"
    # without the guard the bridges do chain them (the guard is what prevents it)
    assert ids_ng[0] == ids_ng[30]


def test_short_skeletons_are_their_own_templates():
    _, h, ids = mine(["hi", "hi", "hello", "ok thanks", "ok thanks!", "", None, "!!!"])
    assert ids[0] == ids[1] and ids[0] != ids[2]
    assert ids[3] == ids[4] != ids[2]
    assert ids[5:] == [None, None, None]
    assert h.to_pylist()[5:] == [None, None, None]


def test_empty_and_all_null_inputs():
    miner = TemplateMiner()
    assert miner.add(pa.array([], pa.string())).to_pylist() == []
    assert miner.add(pa.array([None, ""], pa.string())).to_pylist() == [None, None]
    model = miner.finish()
    assert model.skeletons.num_rows == 0 and model.templates.num_rows == 0
    assert model.assign(pa.array([1, None], pa.uint64())).to_pylist() == [None, None]
    assert model.skeletons.schema.field("skeleton_hash").type == pa.uint64()
    assert model.templates.column_names == ["template_id", "canonical", "example", "skeletons", "requests"]


# ---------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------

def test_determinism_across_batch_splits():
    rows, _ = _popular_prompts()
    cot = [t.format(p=p) for t in COT for p in PROBLEMS]
    data = (rows + cot + [None, ""]) * 3
    random.Random(1).shuffle(data)
    results = [mine(data, batch=b) for b in (None, 1, 7, 50)]
    m0, h0, ids0 = results[0]
    for m, h, ids in results[1:]:
        assert m.skeletons.equals(m0.skeletons)
        assert m.templates.equals(m0.templates)
        assert h.equals(h0)
        assert ids == ids0
    # hashes are content hashes: stable across miners and processes (pinned)
    assert TemplateMiner().add(pa.array(["hello world"])).to_pylist() == [
        int.from_bytes(__import__("hashlib").blake2b(b"hello world", digest_size=8).digest(), "little")]


def test_template_table_is_consistent():
    rows, _ = _popular_prompts()
    model, h, ids = mine(rows * 2)
    t = model.templates.to_pydict()
    assert t["template_id"] == list(range(len(t["template_id"])))
    assert sum(t["requests"]) == len(rows) * 2
    assert sum(t["skeletons"]) == model.skeletons.num_rows
    reqs = t["requests"]
    assert all(reqs[i] >= reqs[i + 1] for i in range(len(reqs) - 1))
    assert isinstance(model, TemplateModel)
    counts = np.bincount(np.array(ids), minlength=len(reqs))
    assert counts.tolist() == reqs


# ---------------------------------------------------------------------------
# scale
# ---------------------------------------------------------------------------

def _word(i: int, prefix: str) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = prefix
    while True:
        out += letters[i % 26]
        i //= 26
        if not i:
            return out


def synth_prompts(n_rows: int, n_templates: int = 50, seed: int = 0):
    """Templates x paraphrase variants x slot fills, with ground-truth labels."""
    rng = np.random.default_rng(seed)
    content = [_word(i, "k") for i in range(3000)]  # stand-ins for content words
    common = "the a to and of for in with your my this that please you".split()
    wrappers = ["please", "i need you to", "hey", "can you", "thanks", "kindly"]
    free = [_word(i, "z") for i in range(50000)]
    names = ["Alice", "Bob", "Maria Garcia", "Chen Wei", "Paris", "Berlin", "Acme"]
    templates = []
    for t in range(n_templates):
        words = rng.choice(len(content), 14, replace=False)
        clauses = [list(words[:5]), list(words[5:10]), list(words[10:])]
        syn = {int(w): int(rng.integers(len(content))) for w in words[rng.choice(14, 4, replace=False)]}
        templates.append((clauses, syn))
    labels = rng.integers(n_templates, size=n_rows)
    # a few distinct paraphrase variants per template, reused by many rows
    variants = {}
    out = []
    for i, lab in enumerate(labels.tolist()):
        v = int(rng.integers(6))
        key = (lab, v)
        if key not in variants:
            clauses, syn = templates[lab]
            vr = np.random.default_rng(lab * 100 + v)
            cl = [list(c) for c in clauses]
            if v:
                vr.shuffle(cl)
            text_cl = []
            for c in cl:
                ws = [content[syn[w]] if (w in syn and vr.random() < 0.5) else content[w] for w in c]
                ws.insert(int(vr.integers(len(ws) + 1)), common[int(vr.integers(len(common)))])
                text_cl.append(" ".join(ws))
            text = ", ".join(text_cl)
            if v % 2:
                text = wrappers[int(vr.integers(len(wrappers)))] + " " + text
            variants[key] = text
        slot = " ".join(free[j] for j in rng.integers(len(free), size=int(rng.integers(0, 4))))
        out.append(f"{variants[key]} for {names[i % len(names)]}: {slot} value {int(rng.integers(10**6))} "
                   f'"{free[int(rng.integers(len(free)))]}"')
    return out, labels


def grouping_quality(labels: np.ndarray, ids: np.ndarray) -> tuple[float, float]:
    """Row-weighted purity of predicted groups and recall of true templates."""
    pairs = np.unique(np.stack([ids, labels]), axis=1, return_counts=True)
    (pid, lab), cnt = pairs
    best_by_pred: dict[int, int] = {}
    best_by_true: dict[int, int] = {}
    for p, l, c in zip(pid.tolist(), lab.tolist(), cnt.tolist()):
        best_by_pred[p] = max(best_by_pred.get(p, 0), c)
        best_by_true[l] = max(best_by_true.get(l, 0), c)
    n = len(labels)
    return sum(best_by_pred.values()) / n, sum(best_by_true.values()) / n


def test_scale_200k_purity_recall():
    prompts, labels = synth_prompts(200_000)
    t0 = time.perf_counter()
    miner = TemplateMiner()
    arr = pa.array(prompts)
    hashes = [miner.add(arr.slice(i, 65_536)) for i in range(0, len(arr), 65_536)]
    t1 = time.perf_counter()
    model = miner.finish()
    t2 = time.perf_counter()
    ids = np.asarray(model.assign(pa.concat_arrays(hashes)))
    purity, recall = grouping_quality(labels, ids)
    print(f"\n200k rows: mask+hash {t1 - t0:.1f}s, finish {t2 - t1:.1f}s, skeletons {model.skeletons.num_rows}, "
          f"templates {model.templates.num_rows}, purity {purity:.4f}, recall {recall:.4f}")
    assert purity >= 0.95 and recall >= 0.95
    assert model.templates.num_rows <= 60


def test_masking_threads_give_identical_results(monkeypatch):
    import acctgraph.layers.templates_mining as tm

    monkeypatch.setattr(tm, "_PAR_MIN_ROWS", 16)  # split even small batches over the threads
    rows, _ = _popular_prompts()
    cot = [t.format(p=p) for t in COT for p in PROBLEMS]
    data = (rows + cot + [None, "", "!!!"]) * 4
    random.Random(2).shuffle(data)
    m1, h1, ids1 = mine(data, TemplateConfig(workers=1))
    miner = TemplateMiner(TemplateConfig(workers=2))
    arr = pa.array(data, pa.string())
    first = miner.add(arr.slice(0, 150))  # the first batch split in pieces starts the masking thread
    assert miner._pool is not None
    submitted = []
    real_submit = miner._pool.submit
    monkeypatch.setattr(miner._pool, "submit", lambda *a, **k: submitted.append(1) or real_submit(*a, **k))
    h2 = pa.concat_arrays([first] + [miner.add(arr.slice(i, 150)) for i in range(150, len(arr), 150)])
    assert submitted
    m2 = miner.finish()
    assert miner._pool is None  # finish() stops the threads
    assert h2.equals(h1)
    assert m2.skeletons.equals(m1.skeletons) and m2.templates.equals(m1.templates)
    assert m2.assign(h2).to_pylist() == ids1


def test_add_batches_equals_add_batch_by_batch_with_threads(monkeypatch):
    """add_batches queues the next batch for the masking thread and masks its pieces while that thread
    finishes the current one: the same hashes per batch, in order with their keys, and the same model."""
    import threading

    import acctgraph.layers.templates_mining as tm

    monkeypatch.setattr(tm, "_PAR_MIN_ROWS", 16)
    rows, _ = _popular_prompts()
    data = (rows + [t.format(p=p) for t in COT for p in PROBLEMS] + [None, "", "!!!"]) * 4
    random.Random(3).shuffle(data)
    arr = pa.array(data, pa.string())
    slices = [arr.slice(i, 150) for i in range(0, len(arr), 150)]
    one = TemplateMiner(TemplateConfig(workers=1))
    want = [one.add(b) for b in slices]
    miner = TemplateMiner(TemplateConfig(workers=2))
    miner.start_workers()
    caller = threading.current_thread()
    masked_by: list[str] = []
    real = tm._mask_hash

    def slow_on_caller(*a, **k):  # the caller is slowed down so that the thread surely takes pieces too
        here = threading.current_thread() is caller
        masked_by.append("caller" if here else "thread")
        if here:
            time.sleep(0.02)
        return real(*a, **k)

    monkeypatch.setattr(tm, "_mask_hash", slow_on_caller)
    got = list(miner.add_batches((i, b) for i, b in enumerate(slices)))
    assert [k for k, _ in got] == list(range(len(slices)))
    assert all(h.equals(w) for (_, h), w in zip(got, want))
    assert "caller" in masked_by and "thread" in masked_by  # both took pieces
    m1, m2 = one.finish(), miner.finish()
    assert m2.skeletons.equals(m1.skeletons) and m2.templates.equals(m1.templates)
    assert m2.skeleton_clauses.equals(m1.skeleton_clauses)


def test_a_failure_in_a_masking_thread_is_raised_to_the_caller(monkeypatch):
    import threading

    import acctgraph.layers.templates_mining as tm

    monkeypatch.setattr(tm, "_PAR_MIN_ROWS", 16)
    caller = threading.current_thread()
    real = tm._mask_hash

    def fails_on_thread(*a, **k):
        if threading.current_thread() is not caller:
            raise MemoryError("no memory for this piece")
        time.sleep(0.05)  # leave the thread time to start a piece
        return real(*a, **k)

    monkeypatch.setattr(tm, "_mask_hash", fails_on_thread)
    miner = TemplateMiner(TemplateConfig(workers=2))
    arr = pa.array([f"Explain step by step why {i} is odd. Then list the edge cases." for i in range(600)])
    with pytest.raises(MemoryError, match="no memory for this piece"):
        miner.add(arr)
    miner.close()
    assert miner._pool is None


def test_mining_in_a_script_without_main_guard_runs_it_once(tmp_path):
    """A user script without a __main__ guard runs once (masking uses threads, no spawned interpreter)."""
    import subprocess
    import sys

    script = tmp_path / "analysis.py"
    script.write_text("import pyarrow as pa\nfrom acctgraph.layers.templates_mining import TemplateMiner, "
                      "TemplateConfig\nprint('start', flush=True)\nm = TemplateMiner(TemplateConfig(workers=2))\n"
                      "m.add(pa.array(['Think step by step about %d apples' % i for i in range(300000)]))\n"
                      "print(m.finish().templates.num_rows)\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("start") == 1


SYLL = ["ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "vu", "ze"]


def _chain_word(t: int, k: int) -> str:
    return f"{SYLL[t]}{SYLL[k % 10]}{SYLL[k // 10]}x"


def test_chains_of_many_templates_are_grouped_not_left_alone():
    # Eight templates with their own words, each paraphrased (one word swapped per variant), chained
    # by bridge prompts that hold two neighbouring templates whole: one connected component of eight
    # templates. The component rounds resolve one template per round; the rest must still be grouped
    # (around local anchors), never left as one template per paraphrase.
    rows, truth = [], []
    base = [[_chain_word(t, k) for k in range(12)] for t in range(8)]
    for t, words in enumerate(base):
        rows += [" ".join(words)] * (20 - t)  # the unchanged template is the most requested variant
        truth += [t] * (20 - t)
        for v in range(6):
            w = list(words)
            w[v] = f"{SYLL[t]}{SYLL[v]}qq"
            rows.append(" ".join(w))
            truth.append(t)
    for t in range(7):
        for j in range(3):
            rows.append(" ".join(base[t] + base[t + 1] + [f"bridge{'abc'[j]}"]))
            truth.append(-1)
    chained = mine(rows, TemplateConfig(anchor_threshold=0.0))[2]
    assert len({chained[truth.index(t)] for t in range(8)}) < 8, "the bridges must chain the templates"
    _, _, ids = mine(rows, TemplateConfig(guard_rounds=1))
    by_template = {t: {i for i, tt in zip(ids, truth) if tt == t} for t in range(8)}
    assert all(len(s) == 1 for s in by_template.values()), by_template
    assert len({next(iter(s)) for s in by_template.values()}) == 8, "two templates merged"


def test_paraphrased_clauses_share_a_clause_group():
    topics = ["independent trade unions", "press freedom", "the famine years", "term limits", "election monitoring"]
    verbs = ["weigh", "evaluate", "compare", "assess"]
    rows = [f"You are a careful analyst. Item {i}: list the main disputed facts about {topics[i % 5]} and "
            f"{verbs[i % 4]} the sources. Be concise please." for i in range(40)]
    rows += ["Write a short poem with vivid imagery about the ocean waves at night. Thanks so much friend."] * 5
    miner = TemplateMiner()
    _, c_rows, c_hash = miner.add_with_clauses(pa.array(rows))
    model = miner.finish()
    group = dict(zip(model.clauses["clause_hash"].to_pylist(), model.clauses["clause_group"].to_pylist()))
    disputed = {c for r, c in zip(c_rows, c_hash.tolist()) if r < 40 and "disputed" in _clause_text(model, group[c])}
    assert len(disputed) >= 10                       # the exact clause varies with topic and verb ...
    assert len({group[c] for c in disputed}) == 1    # ... its group does not
    poem = {group[c] for r, c in zip(c_rows, c_hash.tolist()) if r >= 40}
    assert poem and not poem & {group[c] for c in disputed}
    g = model.clause_groups.to_pydict()
    assert g["requests"] == sorted(g["requests"], reverse=True)
    assert sum(g["clauses"]) == model.clauses.num_rows


def test_clause_requests_do_not_depend_on_the_lookup_slices(monkeypatch):
    # clause listings are looked up a slice at a time; slices of 3 give the tables one slice gives
    import acctgraph.layers.templates_mining as tm

    rows = [f"Think step by step about case {i}. Then explain your design decisions. Use tools if needed. "
            f"Cite {i % 4} sources please." for i in range(60)]
    rows += ["Give the answer only. Do not explain anything at all. Keep it short."] * 7
    want, _, _ = mine(rows)
    monkeypatch.setattr(tm, "_LISTING_CHUNK", 3)
    got, _, _ = mine(rows)
    assert want.clauses.num_rows >= 5 and sum(want.clauses["requests"].to_pylist()) > len(rows)
    for name in ("clauses", "clause_groups", "skeleton_clauses"):
        assert getattr(got, name).equals(getattr(want, name)), name


def _clause_text(model: TemplateModel, group: int) -> str:
    g = model.clause_groups.to_pydict()
    return g["canonical"][g["clause_group"].index(group)]


def _reduce_executor_output(batches) -> TemplateMiner:
    """What Spark does with :func:`mask_batch`'s output (sum rows; example and clauses of the first file
    row of each skeleton), fed to a miner with :meth:`TemplateMiner.add_distinct`."""
    from acctgraph.layers.templates_mining import CLAUSE_LIST
    from acctgraph.layers.templates_spark import CLAUSE, SKELETON

    t = pa.Table.from_batches(batches)
    kind = t.column("kind").to_numpy()
    sk = t.filter(pa.array(kind == SKELETON)).sort_by([("first_row", "ascending")])
    h = sk.column("hash").cast(pa.uint64()).to_numpy()
    first = np.unique(h, return_index=True)[1]  # first file row of each hash
    total = np.bincount(np.searchsorted(np.unique(h), h), weights=sk.column("count").to_numpy()).astype(np.int64)
    cl = t.filter(pa.array(kind == CLAUSE))
    ch, ci = np.unique(cl.column("hash").cast(pa.uint64()).to_numpy(), return_index=True)
    miner = TemplateMiner(TemplateConfig(workers=1))
    take = pa.array(first)
    miner.add_distinct(h[first], total, sk.column("text").take(take), sk.column("example").take(take),
                       sk.column("clauses").take(take).combine_chunks().cast(CLAUSE_LIST),
                       ch, cl.column("text").take(pa.array(ci)))
    return miner


def test_clauses_come_from_a_skeletons_first_prompt_however_the_rows_are_split():
    """One skeleton, two break structures ("step by step. show ..." / "step by step, show ..."): its clauses are
    those of its first prompt in input order, whether the embedded miner streams the rows in batches or
    the executors mask shuffled splits (then merged by file row, as on Spark); the models are identical."""
    from acctgraph.layers.templates_spark import mask_batch

    rng = np.random.default_rng(5)
    variants = ["Please think step by step. Show your work on item {i} now", "Please think step by step, "
                "show your work on item {i} now", "Write a poem about the sea and the wind. Keep it short and sweet"]
    order = rng.integers(0, 3, 3000)
    order[:40] = 2
    order[40] = 1  # the comma variant comes first: the skeleton has one long clause, not two
    prompts = [variants[v].format(i=i) for i, v in enumerate(order)]
    accounts = [f"a{i % 7}" for i in range(len(prompts))]
    embedded = TemplateMiner(TemplateConfig(workers=1))
    for s in range(0, len(prompts), 500):  # later batches start with the full-stop variant
        embedded.add(pa.array(prompts[s:s + 500]))
    want = embedded.finish()
    cuts = [0, 700, 1234, 2100, 3000]
    pieces = [(a, b) for a, b in zip(cuts[:-1], cuts[1:])][::-1]  # out of file order
    batches = []
    for a, b in pieces:
        perm = rng.permutation(np.arange(a, b))  # rows inside a split out of order too
        batches += mask_batch(pa.array([accounts[i] for i in perm]), pa.array([prompts[i] for i in perm]),
                              perm.astype(np.int64), 3)
    got = _reduce_executor_output(batches).finish()
    for name in ("skeletons", "templates", "clauses", "clause_groups", "skeleton_clauses"):
        assert getattr(got, name).equals(getattr(want, name)), name
    sc = want.skeleton_clauses.to_pydict()
    texts = dict(zip(want.clause_groups["clause_group"].to_pylist(), want.clause_groups["canonical"].to_pylist()))
    step = [texts.get(g) for g in want.clauses["clause_group"].to_pylist()]
    assert any("think step by step show your work" in (t or "") for t in step)  # the comma variant's one clause
    assert not any(t == "please think step by step" for t in step)  # the full-stop variant's clauses: never used
    assert len(sc["clause_hash"]) == 3  # the poem's two clauses and the long one
    rows = pa.Table.from_batches(batches).filter(pa.compute.equal(pa.Table.from_batches(batches).column("kind"), 0))
    assert sum(rows.column("count").to_pylist()) == len(prompts)


def test_batch_split_into_pieces_keeps_the_clause_settings_of_every_piece():
    # every piece is masked with the same clause settings as the first (a clause-count array once
    # shadowed them after the first piece)
    from acctgraph.layers import templates_mining as tm

    rows = 2 * tm._PAR_MIN_ROWS + 10
    prompts = pa.array([f"Explain step by step why {i} is odd. Then list the edge cases you see." for i in range(rows)])
    single = TemplateMiner(TemplateConfig(workers=1))
    want_h, want_rows, want_c = single.add_with_clauses(prompts)
    split = TemplateMiner(TemplateConfig(workers=2))
    assert len(split._pieces(rows)) == 2
    got_h, got_rows, got_c = split.add_with_clauses(prompts)
    assert got_h.equals(want_h) and (got_rows == want_rows).all() and (got_c == want_c).all()
    assert split.finish().templates.equals(single.finish().templates)


def _merge_distinct_former(parts):
    """The former ``_merge_distinct``: every merge took all rows into hash order."""
    h = np.concatenate([p[0] for p in parts])
    c = np.concatenate([p[1] for p in parts])
    arrays = [pa.concat_arrays([tm._widen(p[i]) for p in parts]) for i in range(2, len(parts[0]))]
    order = np.argsort(h, kind="stable")
    hs = h[order]
    start = np.ones(len(hs), bool)
    start[1:] = hs[1:] != hs[:-1]
    st = np.flatnonzero(start)
    counts = np.add.reduceat(c[order], st) if len(st) else c[:0]
    rep = pa.array(order[st])
    return (hs[st], counts, *[a.take(rep) for a in arrays])


@pytest.mark.parametrize("seed", range(4))
def test_incremental_merges_equal_one_merge_in_hash_order(seed):
    """Merging parts step by step (as add() compacts) and putting the result in hash order at the
    end gives exactly what merging everything at once into hash order gave."""
    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 1 << 64, 300, dtype=np.uint64)
    parts = []
    for k in range(int(rng.integers(1, 12))):
        n = int(rng.integers(1, 80))
        h = pool[rng.integers(0, len(pool), n)]
        if k % 3 != 2:  # pieces of add() hold distinct hashes; add_distinct's need not
            h = np.unique(h)
        n = len(h)
        text = pa.array([f"t{k}-{i}-" + "x" * int(rng.integers(0, 9)) for i in range(n)],
                        pa.string() if k % 2 else pa.large_string())
        lists = pa.LargeListArray.from_arrays(pa.array(np.arange(n + 1) * 2, pa.int64()),
                                              pa.array(rng.integers(0, 1 << 63, 2 * n).astype(np.uint64)))
        parts.append((h, rng.integers(1, 50, n).astype(np.int64), text, lists))
    want = _merge_distinct_former(parts)
    merged, rest = [], list(parts)
    while rest:
        take = int(rng.integers(1, 4))
        given = merged + rest[:take]
        merged = [tm._merge_distinct(given)]
        assert given == [None] * len(given)  # consumed part by part
        rest = rest[take:]
    perm, got = tm._by_hash(merged[0])
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    for a, b in zip(got[2:], want[2:]):
        assert isinstance(a, pa.Array) and a.equals(b)
    # merge order: every row where its hash first occurred
    assert tm._take(merged[0][2], perm).equals(want[2])


def test_lsh_bands_on_threads_group_exactly_as_inline(monkeypatch):
    from acctgraph import procs

    rows, _ = _popular_prompts()
    cot = [t.format(p=p) for t in COT for p in PROBLEMS]
    data = (rows + cot) * 2
    random.Random(3).shuffle(data)
    monkeypatch.setattr(procs, "THREAD_MIN_ITEMS", 1 << 62)  # inline
    m1, h1, ids1 = mine(data)
    calls = []
    real = procs.ThreadPoolExecutor
    monkeypatch.setattr(procs, "ThreadPoolExecutor", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(procs, "THREAD_MIN_ITEMS", 0)  # every band on the threads
    monkeypatch.setattr(procs, "usable_cores", lambda: 2)
    m2, h2, ids2 = mine(data)
    assert calls  # the bands did run on threads
    assert m2.skeletons.equals(m1.skeletons) and m2.templates.equals(m1.templates)
    assert m2.clauses.equals(m1.clauses) and ids2 == ids1
    assert len(set(ids1)) > 3  # there was something to group


def test_texts_spilled_during_grouping_give_the_same_model(monkeypatch, tmp_path):
    rows, _ = _popular_prompts()
    cot = [t.format(p=p) for t in COT for p in PROBLEMS]
    data = pa.array((rows + cot) * 2)
    kept = TemplateMiner()
    for lo in range(0, len(data), 40):  # merged parts: the texts arrive chunked, grouped in hash order
        kept.add(data.slice(lo, 40))
    m1 = kept.finish()
    files = []
    real_parts = tm._TextStore.parts

    def parts(self, spill_dir=None, min_bytes=None):
        for p in real_parts(self, spill_dir, min_bytes):
            files.append(list(tmp_path.iterdir()))
            yield p

    monkeypatch.setattr(tm, "_SPILL_MIN_BYTES", 0)
    monkeypatch.setattr(tm, "CONCURRENT_CLAUSES_MAX_SKELETONS", 0)  # large: the clauses first, their lists parked
    monkeypatch.setattr(tm, "_TOKEN_CHUNK", 7)  # several slices: canonical texts come from several file batches
    monkeypatch.setattr(tm._TextStore, "parts", parts)
    spilled = TemplateMiner(spill_dir=tmp_path)
    for lo in range(0, len(data), 40):
        spilled.add(data.slice(lo, 40))
    m2 = spilled.finish()
    texts = [[x for x in f if x.suffix == ".arrow"] for f in files]
    assert files and all(len(t) == 1 for t in texts if t)  # the skeletons' texts went to one file
    assert any(x.suffix == ".npz" for f in files for x in f)  # the clause lists waited beside them
    assert list(tmp_path.iterdir()) == []  # which is gone once the model is made
    for name in ("skeletons", "templates", "clauses", "clause_groups", "skeleton_clauses"):
        assert getattr(m2, name).equals(getattr(m1, name)), name
    assert m1.templates.num_rows > 3


@pytest.mark.parametrize("combine", [True, False], ids=["combined", "chunk-by-chunk"])
@pytest.mark.parametrize("spill", [False, True])
def test_text_store_gives_texts_in_grouping_order(monkeypatch, tmp_path, spill, combine):
    monkeypatch.setattr(tm, "_TOKEN_CHUNK", 4)
    if not combine:  # texts too large to combine into one array: taken chunk by chunk
        monkeypatch.setattr(tm, "_COMBINE_MAX_BYTES", 0)
    text = pa.chunked_array([[f"text {i}" for i in range(30)], [f"text {i}" for i in range(30, 50)]],
                            pa.large_string())
    order = np.random.default_rng(1).permutation(50)
    st = tm._TextStore(text, order=order)
    assert isinstance(st._src, pa.ChunkedArray) != combine
    want = [f"text {i}" for i in order]
    assert (np.argsort(st.rank()) == np.argsort([w for w in want])).all()  # rank by text
    idx = np.array([49, 3, 0, 3, 17])
    assert st.take(idx).to_pylist() == [want[i] for i in idx]  # before parts(): from the input
    slices = st.parts(tmp_path if spill else None, min_bytes=0)
    first = next(slices)
    assert (st._src is None) == spill  # spilled: the input is released before the first slice comes back
    got = [first.to_pylist()] + [p.to_pylist() for p in slices]
    assert st._src is None
    assert sum(got, []) == want and max(len(g) for g in got) == 4
    assert len(list(tmp_path.iterdir())) == (1 if spill else 0)
    assert st.take(idx).to_pylist() == [want[i] for i in idx]  # after: from the slices or the file
    assert len(st.take(np.zeros(0, np.int64))) == 0
    assert st.rank() is st.rank()  # ranked while the texts were held, kept
    with pytest.raises(RuntimeError):
        next(st.parts(tmp_path if spill else None, min_bytes=0))  # once only
    st.close()
    assert list(tmp_path.iterdir()) == []


def test_text_store_spilled_early_gives_the_same_texts(monkeypatch, tmp_path):
    monkeypatch.setattr(tm, "_TOKEN_CHUNK", 3)
    text = pa.chunked_array([[f"t{i:02d}" for i in range(10)]], pa.large_string())
    order = np.random.default_rng(2).permutation(10)
    want = [f"t{i:02d}" for i in order]
    small = tm._TextStore(text, order=order)
    assert not small.spill(tmp_path, min_bytes=1 << 30) and small._src is not None  # too small: kept
    st = tm._TextStore(text, order=order)
    rank = st.rank()
    assert st.spill(tmp_path, min_bytes=0) and st._src is None  # written and released now, not at parts()
    assert st.spill(tmp_path, min_bytes=0) and len(list(tmp_path.iterdir())) == 1  # once
    assert st.rank() is rank
    assert sum((p.to_pylist() for p in st.parts(tmp_path, min_bytes=0)), []) == want
    assert st.take(np.array([9, 0])).to_pylist() == [want[9], want[0]]
    st.close()
    assert list(tmp_path.iterdir()) == []


def test_park_lets_arrays_wait_on_disk_and_gives_them_back(tmp_path):
    from acctgraph.layers.templates_mining import _park

    a, b = np.arange(1000, dtype=np.int64), np.arange(500, dtype=np.uint64) * np.uint64(3)
    back = _park(tmp_path, (a, b), min_bytes=1)
    (parked,) = list(tmp_path.iterdir())  # one file while they wait
    assert parked.suffix == ".npz"
    a2, b2 = back()
    assert a2.dtype == a.dtype and b2.dtype == b.dtype
    assert a2.tolist() == a.tolist() and b2.tolist() == b.tolist()
    assert not list(tmp_path.iterdir())  # removed once read back
    small = _park(tmp_path, (a,))  # below the size worth a file: kept as it is
    assert small()[0] is a and not list(tmp_path.iterdir())


def _same(a, b) -> bool:
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a.equals(b)


@pytest.mark.parametrize("repeats", [False, True])
def test_mask_hash_is_the_same_whether_repeated_prompts_are_found_first(repeats, monkeypatch):
    from acctgraph.layers import templates_mining as M

    rng = np.random.default_rng(3)
    n = 3 * M._PROBE_ROWS
    if repeats:  # a campaign sending a handful of prompts word for word
        texts = [f"Summarise report {i} in three bullet points." for i in rng.integers(0, 50, n)]
    else:  # mostly distinct, with some repeats, nulls and empty prompts
        texts = [f"Explain step {i} of the proof. Then list {i % 7} caveats." for i in rng.integers(0, 10 * n, n)]
    for i in rng.integers(0, n, 40):
        texts[i] = None if i % 2 else ""
    raw = pa.array(texts, pa.string())
    codes, first, dist = M._distinct_prompts(raw)
    assert (len(dist) < n // 10) == repeats  # repeats found only where the probe saw them
    assert codes.max() + 1 == len(dist) and (codes == -1).sum() == raw.null_count
    assert dist.to_pylist() == raw.take(pa.array(first)).to_pylist()
    got = M._mask_hash(raw)
    monkeypatch.setattr(M, "_distinct_prompts", M._encode)  # always find the repeats
    assert _same(got, M._mask_hash(raw))


def test_clauses_grouped_beside_the_skeletons_give_the_same_model(monkeypatch):
    """Small models group their clauses on a second thread while the skeletons are grouped; large ones
    one after the other: the same model either way."""
    rows, _ = _popular_prompts()
    cot = [t.format(p=p) for t in COT for p in PROBLEMS]
    data = pa.array((rows + cot) * 2)
    models = []
    for most in (0, tm.CONCURRENT_CLAUSES_MAX_SKELETONS):
        monkeypatch.setattr(tm, "CONCURRENT_CLAUSES_MAX_SKELETONS", most)
        miner = TemplateMiner()
        miner.add(data)
        models.append(miner.finish())
    for name in ("skeletons", "templates", "clauses", "clause_groups", "skeleton_clauses"):
        assert getattr(models[0], name).equals(getattr(models[1], name)), name
    assert models[0].clause_groups.num_rows > 3


def test_the_clause_part_is_handed_over_before_the_skeletons_are_grouped(monkeypatch):
    """Grouped beside the skeletons, the clauses' part of the model goes to on_clauses (once, from the clause
    thread) while the skeletons are still being grouped; it is the model's clause part. Grouped first
    (large models), on_clauses is not called, and the model's part is the same."""
    import threading

    rows, _ = _popular_prompts()
    data = pa.array((rows + [t.format(p=p) for t in COT for p in PROBLEMS]) * 2)
    monkeypatch.setattr(tm, "usable_cores", lambda: 2)
    parts = []
    for most in (tm.CONCURRENT_CLAUSES_MAX_SKELETONS, 0):
        monkeypatch.setattr(tm, "CONCURRENT_CLAUSES_MAX_SKELETONS", most)
        miner = TemplateMiner()
        miner.add(data)
        handed, grouping = [], threading.Event()
        miner.on_step = lambda what: grouping.set() if what.startswith("grouping") else None
        numbered = miner._numbered_groups

        def skeletons_after_the_clauses(store, requests, spill=False, what=None):
            if what is not None and most:  # the skeletons' grouping waits until the clauses were handed over
                for _ in range(600):
                    if handed:
                        break
                    time.sleep(0.05)
                assert handed, "the clause part was not handed over while the skeletons were grouped"
            return numbered(store, requests, spill, what)

        miner._numbered_groups = skeletons_after_the_clauses
        miner.on_clauses = lambda part: handed.append((part, threading.current_thread() is threading.main_thread()))
        model = miner.finish()
        part = model.clause_part
        if most:
            assert len(handed) == 1 and handed[0][1] is False  # once, from the clause thread
            early = handed[0][0]
            assert np.array_equal(early.skeleton_hash, part.skeleton_hash)
            for name in ("clauses", "clause_groups", "skeleton_clauses"):
                assert getattr(early, name).equals(getattr(part, name)), name
            assert np.array_equal(early._listing_clause, part._listing_clause)
            assert np.array_equal(early._group_clause, part._group_clause)
        else:
            assert handed == []
        assert part.clause_groups.num_rows > 3 and part.nbytes > 0
        parts.append(part)
    assert np.array_equal(parts[0].skeleton_hash, parts[1].skeleton_hash)
    assert parts[0].skeleton_clauses.equals(parts[1].skeleton_clauses) and parts[0].clauses.equals(parts[1].clauses)


def test_text_order_by_duckdb_equals_arrow(monkeypatch):
    # many texts sorted by DuckDB give Arrow's order: bytes compared (upper case first, UTF-8 after ASCII),
    # prefixes first, long shared prefixes, chunked input
    rng = np.random.default_rng(4)
    words = ["a", "b", "A", "é", "日本", "please translate", "z" * 40, "", " ", "\x07"]
    texts = sorted({"".join(rng.choice(words, int(rng.integers(1, 6)))) + str(i % 7) for i in range(3000)})
    rng.shuffle(texts)
    arr = pa.chunked_array([texts[:1000], texts[1000:]], pa.large_string())
    want = np.asarray(pc.sort_indices(arr)).tolist()
    monkeypatch.setattr(tm, "_DUCK_SORT_MIN", 1)
    assert tm.text_order(arr).tolist() == want


def test_text_order_of_many_bytes_sorts_in_place(monkeypatch):
    # above _DUCK_SORT_MAX_BYTES Arrow sorts indices over the texts (DuckDB would copy them all)
    import duckdb

    texts = pa.array([f"text {i:05d} " + "x" * (i % 13) for i in range(2000)][::-1], pa.large_string())
    monkeypatch.setattr(tm, "_DUCK_SORT_MIN", 1)
    monkeypatch.setattr(tm, "_DUCK_SORT_MAX_BYTES", texts.nbytes - 1)

    def no_duckdb(*a, **k):
        raise AssertionError("DuckDB sorted the texts")

    monkeypatch.setattr(duckdb, "connect", no_duckdb)
    assert tm.text_order(texts).tolist() == list(range(1999, -1, -1))


def test_radix_orders_equal_numpy_lexsort():
    # the grouping's orders (by requests descending, ties by text rank; then by group) by packed radix sorts:
    # the same permutation as np.lexsort, ties included, and np.lexsort itself outside 32-bit non-negative keys
    from acctgraph.layers.templates_mining import _order_desc_asc, _then_by

    rng = np.random.default_rng(3)
    for n in (0, 1, 5, 5000):
        a, b, g = rng.integers(0, 4, n), rng.integers(0, 6, n), rng.integers(0, 50, n)  # many ties
        assert _order_desc_asc(a, b).tolist() == np.lexsort((b, -a)).tolist()
        assert _then_by(_order_desc_asc(a, b), g).tolist() == np.lexsort((b, -a, g)).tolist()
    big = np.array([2**40, 3, 2**40, -1])  # outside the packed range: np.lexsort
    assert _order_desc_asc(big, np.arange(4)).tolist() == np.lexsort((np.arange(4), -big)).tolist()
    # floats: whole numbers in range (radix), fractions, negatives, too large, NaN (np.lexsort)
    for f in (rng.integers(0, 4, 500).astype(float), np.array([2.5, 1.0, 2.5, 0.0]), np.array([3.0, -1.0, 3.0]),
              np.array([1e30, 2.0, 1e30]), np.array([np.nan, 1.0, 1.0])):
        idx = np.arange(len(f))[::-1].copy()
        assert _order_desc_asc(f, idx).tolist() == np.lexsort((idx, -f)).tolist(), f
