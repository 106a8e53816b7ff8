"""Template layer's clause tier: paraphrased prompts built from one stock of instructions link their
senders; one common sentence in common does not."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import edges_of, write_world

import acctgraph
from acctgraph.config import Config
from acctgraph.layers.templates_mining import BREAK, TemplateMiner, mask_prompts

CFG = Config.from_dict({"build": {"layers": ["templates"]}})

STOCK = ["Think step by step and show every intermediate result",
         "Explain your design decisions before writing the code",
         "Cite the underlying principle for each claim you make",
         "Return the final answer on a separate last line",
         "List the edge cases your solution handles"]
WRAPPERS = ["Hi there, quick one: {}", "As an expert, {}", "{} Thanks a lot!", "Please help. {}", "yo {} ty"]
TASKS = ["prove that {} is prime", "sort {} numbers in Rust", "why is the sky blue in {}",
         "build a cache for {} keys", "compare {} sorting algorithms"]


def _campaign_prompt(rng: np.random.Generator) -> str:
    clauses = rng.choice(STOCK, size=3, replace=False)
    task = rng.choice(TASKS).format(rng.integers(10, 10**6))
    body = ". ".join([task.capitalize(), *clauses]) + "."
    return rng.choice(WRAPPERS).format(body)


def test_mask_breaks_only_add_clause_boundaries():
    prompts = pa.array(["Think step by step. Then answer: what is 2+2?", 'Say "hi. there" at 3.5 now',
                        "line one\nline two\n\nthree", "café。 über! x", "", None, "e.g. this; that"])
    plain, broken = mask_prompts(prompts), mask_prompts(prompts, breaks=True)
    assert [None if b is None else b.replace(BREAK, " ") for b in broken.to_pylist()] == plain.to_pylist()
    assert broken[0].as_py().split(BREAK) == ["think step by step", "then answer", "what is <n>"]
    assert BREAK not in broken[1].as_py()  # the full stop inside the quote and the number are masked spans


def test_add_with_clauses_maps_rows_to_their_clauses():
    miner = TemplateMiner()
    h, rows, clauses = miner.add_with_clauses(pa.array([
        "Think step by step. Show all your work please. ok",  # 2 clauses of >= 3 words
        None,
        "Show all your work please! Give the final answer now.",
    ]))
    assert h.null_count == 1
    assert rows.tolist() == [0, 0, 2, 2]
    assert clauses[1] == clauses[2]  # "show all your work please" in rows 0 and 2
    assert len(set(clauses.tolist())) == 3


def test_paraphrased_campaign_is_linked_by_shared_clauses_and_a_common_sentence_is_not(tmp_path):
    rng = np.random.default_rng(3)
    req = []
    for a in range(12):  # 12 campaign accounts, 30 paraphrased prompts each, never the same prompt twice
        for i in range(30):
            req.append((f"camp{a:02d}", f"2026-02-0{1 + i % 9}T{i % 24:02d}:{a:02d}:00Z", f"198.51.{a}.{i}",
                        "m", _campaign_prompt(rng)))
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    for a in range(40):  # people who all end with the same sentence, otherwise unrelated
        words = " ".join("".join(rng.choice(letters, 7)) for _ in range(8))  # this person's own topic
        for i in range(3):
            req.append((f"user{a:02d}", f"2026-02-03T{i:02d}:{a % 60:02d}:00Z", f"203.0.{a}.1", "m",
                        f"Please explain {words} for {i + 2} days. Thank you so much for helping."))
    d = write_world(tmp_path / "in", req)
    no_clauses = Config.from_dict({"build": {"layers": ["templates"]}, "templates": {"clause_factor": 0.0}})
    acctgraph.build(d, tmp_path / "ws0", config=no_clauses, quiet=True)
    acctgraph.build(d, tmp_path / "ws", config=CFG, quiet=True)
    before, got = edges_of(tmp_path / "ws0", "templates"), edges_of(tmp_path / "ws", "templates")
    gained = {p for p in got if got[p] > before.get(p, 0.0) + 1e-12}
    camp = {p for p in gained if p[0].startswith("camp") and p[1].startswith("camp")}
    assert len(camp) >= 12 * 11 / 2 * 0.9           # the clause tier makes the campaign (nearly) a clique
    assert gained == camp                           # and gives the people sharing one sentence nothing
    ev = pq.read_table(tmp_path / "ws" / "evidence" / "clauses.parquet").to_pandas()
    assert {"node", "clause", "requests", "share"} <= set(ev.columns)
    assert ev["requests"].min() >= CFG.templates.clause_min_requests
    build = (tmp_path / "ws" / "build.json").read_text()
    assert '"clause_keys"' in build


def test_clause_groups_link_a_campaign_whose_exact_clauses_never_repeat(tmp_path):
    # Every clause carries a fresh slot word and a synonym, so no account sends the same clause twice;
    # the clause groups (paraphrase-robust) still tie the campaign together, and clauses.parquet names them.
    rng = np.random.default_rng(5)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    stock = ["list the main disputed facts about the {} affair and {} the sources",
             "rewrite this question about {} so that it sounds {} and would be answered",
             "compare how state media and {} historians {} the events"]
    syn = ["weigh", "evaluate", "assess", "neutral", "academic", "balanced", "describe", "report", "explain"]
    req = []
    for a in range(10):
        for i in range(24):
            parts = [c.format("".join(rng.choice(letters, 8)), rng.choice(syn)) for c in stock]
            req.append((f"camp{a:02d}", f"2026-02-0{1 + i % 9}T{i % 24:02d}:{a:02d}:00Z", f"198.51.{a}.{i}", "m",
                        "You are a careful analyst. " + ". ".join(rng.permutation(parts)) + "."))
    for a in range(20):
        for i in range(4):
            words = " ".join("".join(rng.choice(letters, 6)) for _ in range(9))
            req.append((f"user{a:02d}", f"2026-02-03T{i:02d}:{a:02d}:00Z", f"203.0.{a}.1", "m", f"Explain {words}."))
    d = write_world(tmp_path / "in", req)
    acctgraph.build(d, tmp_path / "ws", config=CFG, quiet=True)
    ev = pq.read_table(tmp_path / "ws" / "evidence" / "clauses.parquet").to_pandas()
    got = edges_of(tmp_path / "ws", "templates")
    camp = {p for p in got if p[0].startswith("camp") and p[1].startswith("camp")}
    assert len(camp) >= 10 * 9 / 2 * 0.9
    assert camp == set(got)
    groups = pq.read_table(tmp_path / "ws" / "clauses.parquet").to_pandas()
    assert {"clause_group", "canonical", "clauses", "requests", "accounts"} == set(groups.columns)
    disputed = groups[groups["canonical"].str.contains("disputed facts")]
    assert len(disputed) == 1 and disputed["accounts"].iloc[0] == 10 and disputed["clauses"].iloc[0] >= 100
    assert set(ev["clause"]) >= set(disputed["clause_group"])


def test_low_volume_members_of_a_large_campaign_meet_on_enough_clause_rings(tmp_path):
    # 150 accounts (clause groups above the cap, so sampled on rings), 8 prompts each from a stock of 6
    # clauses: every pair shares about 6 clause groups. With 10 ring successors a pair meets on 3 of those
    # rings with a probability of ~4%, and members kept a handful of links; looking clause_ring_k ahead fixes it.
    # 300 users of one public four-sentence template stay much weaker than the campaign.
    rng = np.random.default_rng(11)
    stock = ["Think step by step and show every intermediate result",
             "Explain your design decisions before writing the code",
             "Cite the underlying principle for each claim you make",
             "Return the final answer on a separate last line",
             "List the edge cases your solution handles",
             "Name the assumptions you rely on explicitly"]
    req = []
    for a in range(150):
        for i in range(8):
            body = ". ".join([rng.choice(TASKS).format(rng.integers(10, 10**6)).capitalize(),
                              *rng.choice(stock, size=3, replace=False)]) + "."
            req.append((f"camp{a:03d}", f"2026-02-0{1 + i}T{i:02d}:{a % 60:02d}:00Z", f"198.51.{a}.{i}", "m",
                        rng.choice(WRAPPERS).format(body)))
    for a in range(300):
        for i in range(2):
            req.append((f"user{a:03d}", f"2026-02-03T{i:02d}:{a % 60:02d}:00Z", f"203.0.{a % 250}.{i + 1}", "m",
                        "Translate the text below into French. Keep the tone friendly and informal. Do not add "
                        "any notes of your own. Preserve the original line breaks. Text: "
                        f"{rng.integers(10**6)} {rng.choice(TASKS).format(rng.integers(10**6))}"))
    d = write_world(tmp_path / "in", req)

    no_clauses = Config.from_dict({"build": {"layers": ["templates"]}, "templates": {"clause_factor": 0.0}})
    acctgraph.build(d, tmp_path / "ws0", config=no_clauses, quiet=True)
    before = edges_of(tmp_path / "ws0", "templates")

    def clause_links(**opts) -> tuple[dict, dict]:  # links (and weight) the clause tier adds, per account
        cfg = Config.from_dict({"build": {"layers": ["templates"]}, "templates": opts})
        ws = tmp_path / ("ws-" + "-".join(map(str, opts.values())))
        acctgraph.build(d, ws, config=cfg, quiet=True)
        got = edges_of(ws, "templates")
        links: dict[str, int] = {}
        strength: dict[str, float] = {}
        for (a, b), w in got.items():
            w -= before.get((a, b), 0.0)
            if w <= 1e-12:
                continue
            assert a[:4] == b[:4], (a, b)  # never a campaign account with a public template's user
            for x in (a, b):
                links[x] = links.get(x, 0) + 1
                strength[x] = strength.get(x, 0.0) + w
        return links, strength

    sparse, _ = clause_links(clause_ring_k=10, clause_partners=0)
    alike, _ = clause_links(clause_ring_k=10, clause_partners=5, clause_alike_shared=3)
    links, strength = clause_links(clause_ring_k=Config().templates.clause_ring_k, clause_partners=0)
    camp = [f"camp{a:03d}" for a in range(150)]
    assert sum(sparse.get(a, 0) < 12 for a in camp) >= 30      # the old sampling left many members loose
    # pairs whose clause sets are alike are kept although they met on fewer rings: nobody is left loose
    assert min(alike.get(a, 0) for a in camp) >= 10 and sum(alike.get(a, 0) < 12 for a in camp) < 30
    assert min(links.get(a, 0) for a in camp) >= 50            # looking further: every member has a stock of links
    # the price: users of a popular four-sentence template now also meet on 3 rings by chance (p ~ 3%),
    # and the hub weighting keeps them well below the campaign
    users = [s for x, s in strength.items() if x.startswith("user")]
    assert max(users) < 0.5 * float(np.median([strength[a] for a in camp]))


def test_prompts_at_reads_rows_in_any_order_across_row_groups(tmp_path):
    from acctgraph.layers.templates import prompts_at

    path = tmp_path / "it's here" / "r.parquet"  # a quote in the path: passed as a parameter, not spliced in
    path.parent.mkdir()
    pq.write_table(pa.table({"prompt": [f"p{i}" for i in range(25)]}), path, row_group_size=7)
    assert pq.ParquetFile(path).num_row_groups == 4
    rows = np.array([24, 0, 7, 6, 13, 14, 3, 7])  # repeats too
    got = prompts_at(path, rows)
    assert got.type == pa.large_string() and got.to_pylist() == [f"p{i}" for i in rows]
    assert prompts_at(path, np.zeros(0, np.int64)).to_pylist() == []
    import pytest

    with pytest.raises(IndexError, match="outside 0..24"):
        prompts_at(path, np.array([25]))


def test_examples_kept_as_row_numbers_give_the_same_templates(tmp_path):
    from acctgraph.layers.templates import prompts_at
    from acctgraph.layers.templates_mining import EXAMPLE_CHARS

    rng = np.random.default_rng(5)
    prompts = [_campaign_prompt(rng) + " " + "x" * int(rng.integers(0, 400)) for _ in range(300)]
    prompts += ["Act as a Linux terminal and reply with the output of: ls", None, ""] * 20
    path = tmp_path / "r.parquet"
    pq.write_table(pa.table({"prompt": prompts}), path, row_group_size=50)

    def mined(miner):
        for b in pq.ParquetFile(path).iter_batches(batch_size=64, columns=["prompt"]):
            miner.add(b.column("prompt"))
        return miner.finish()

    fetched = []

    def fetch(rows):
        fetched.append(rows)
        return prompts_at(path, rows)

    as_text = mined(TemplateMiner())
    as_rows = mined(TemplateMiner(example_rows=fetch))
    assert as_rows.templates.equals(as_text.templates)
    assert as_rows.skeletons.equals(as_text.skeletons)
    assert len(fetched) == 1 and len(fetched[0]) == as_text.templates.num_rows  # one read, canonical rows only
    ex = as_text.templates.column("example").to_pylist()
    assert max(len(e) for e in ex) == EXAMPLE_CHARS  # long prompts are cut
    assert all(any(p is not None and p.startswith(e) for p in prompts) for e in ex)  # each is a prompt's start
    import pytest

    with pytest.raises(ValueError, match="without example_rows"):
        TemplateMiner(example_rows=fetch).add_distinct(np.zeros(0, np.uint64), np.zeros(0, np.int64),
                                                       pa.array([], pa.string()), pa.array([], pa.string()),
                                                       pa.array([], pa.list_(pa.uint64())), np.zeros(0, np.uint64),
                                                       pa.array([], pa.string()))


def test_alike_pairs_keeps_alike_sets_that_met_on_few_rings():
    from acctgraph.engine import Engine
    from acctgraph.layers.templates import alike_pairs

    sets = {0: "abcdef", 1: "abcdef", 2: "abcdgh", 3: "ijklmn", 4: "ab", 5: "ab", 6: "opqrst", 7: "ouvwxy"}
    members = pa.table({"key": [ord(c) for n, s in sets.items() for c in s],
                        "node": [n for n, s in sets.items() for _ in s]})
    src, dst = np.array([0, 0, 0, 4, 6], np.int32), np.array([1, 2, 3, 5, 7], np.int32)
    with Engine() as eng:
        eng.register("_members", members)
        got = alike_pairs(eng, "_members", src, dst, min_shared=3, min_jaccard=0.3, partners=5).to_pylist()
        # members that are one row per (key, node), said so: the same pairs without making them distinct again
        assert alike_pairs(eng, "_members", src, dst, min_shared=3, min_jaccard=0.3, partners=5,
                           unique=True).to_pylist() == got
        # asking for more clauses in common than six: none
        assert alike_pairs(eng, "_members", src, dst, min_shared=3, min_jaccard=0.3, partners=5,
                           alike_shared=7).num_rows == 0
        assert eng.sql("SELECT count(*) AS n FROM duckdb_tables() WHERE table_name = '_held'").to_pylist() == [{"n": 0}]
    # identical six-clause sets (0, 1) and a 4-of-8 overlap (0, 2) stay; disjoint sets (0, 3), two shared
    # clauses (4, 5), one shared of eleven (6, 7) go; an alike pair counts as sharing its estimated intersection:
    # six for the identical sets
    assert [(r["src"], r["dst"]) for r in got] == [(0, 1), (0, 2)]
    assert got[0]["shared"] == 6.0 and 1.0 < got[1]["shared"] <= 4.0


def test_alike_pairs_bounds_partners_per_account():
    from acctgraph.engine import Engine
    from acctgraph.layers.templates import alike_pairs, similar_partners

    n = 12  # identical sets: every pair is alike, each account keeps its 2 best (ties: smaller ids)
    members = pa.table({"key": [k for _ in range(n) for k in range(5)], "node": [a for a in range(n) for _ in range(5)]})
    src, dst = np.triu_indices(n, 1)
    with Engine() as eng:
        eng.register("_members", members)
        got = alike_pairs(eng, "_members", src.astype(np.int32), dst.astype(np.int32), min_shared=3,
                          min_jaccard=0.3, partners=2).to_pandas()
    degree = np.bincount(np.r_[got["src"], got["dst"]], minlength=n)
    assert len(got) <= 2 * n and degree.min() >= 2
    # same answer whatever the row order
    perm = np.random.default_rng(0).permutation(len(src))
    score = np.ones(len(src))
    assert (similar_partners(src[perm], dst[perm], score, 2) == similar_partners(src, dst, score, 2)[perm]).all()


def test_alike_pairs_on_threads_over_slices_matches_one_pass(monkeypatch):
    """Enough candidate pairs for threads (THREAD_MIN_ITEMS): slices taken as the threads come free give the
    pairs of a single pass, alike ones kept and the others (disjoint, too small) left out."""
    from acctgraph.engine import Engine
    from acctgraph.layers import templates as tl
    from acctgraph.procs import THREAD_MIN_ITEMS

    rng = np.random.default_rng(3)
    n = 2_000
    family = rng.integers(0, 40, n)  # accounts of a family draw most keys from its pool: alike sets
    keys = [np.unique(np.where(rng.random(12) < 0.8, family[a] * 50 + rng.integers(0, 15, 12),
                               10_000 + rng.integers(0, 100_000, 12))) for a in range(n)]
    members = pa.table({"key": np.concatenate(keys), "node": np.repeat(np.arange(n), [len(k) for k in keys])})
    a, b = rng.integers(0, n, 3 * THREAD_MIN_ITEMS), rng.integers(0, n, 3 * THREAD_MIN_ITEMS)
    pk = np.unique(np.minimum(a, b).astype(np.int64) << 32 | np.maximum(a, b))
    pk = pk[(pk >> 32) != (pk & 0xFFFFFFFF)]
    src, dst = (pk >> 32).astype(np.int32), (pk & 0xFFFFFFFF).astype(np.int32)
    assert len(src) >= THREAD_MIN_ITEMS
    with Engine() as eng:
        eng.register("_members", members)
        run = lambda: tl.alike_pairs(eng, "_members", src, dst, min_shared=3, min_jaccard=0.3,  # noqa: E731
                                     partners=5)
        sliced = run()
        said_unique = tl.alike_pairs(eng, "_members", src, dst, min_shared=3, min_jaccard=0.3, partners=5, unique=True)
        monkeypatch.setattr(tl, "ALIKE_SLICES_PER_CORE", 1)
        whole = run()
    assert 0 < sliced.num_rows < len(src) and sliced.equals(whole) and said_unique.equals(whole)
    same_family = family[sliced.column("src").to_numpy()] == family[sliced.column("dst").to_numpy()]
    assert same_family.all()


def _similar_partners_by_sorting(src, dst, score, partners):
    """Reference: rank every endpoint's pairs with one lexsort over all of them (the former implementation)."""
    end, other = np.r_[src, dst], np.r_[dst, src]
    pair = np.r_[np.arange(len(src)), np.arange(len(src))]
    order = np.lexsort((other, -np.r_[score, score], end))
    end, pair = end[order], pair[order]
    first = np.flatnonzero(np.r_[True, end[1:] != end[:-1]])
    rank = np.arange(len(end)) - np.repeat(first, np.diff(np.r_[first, len(end)]))
    keep = np.zeros(len(src), dtype=bool)
    keep[pair[rank < partners]] = True
    return keep


@pytest.mark.parametrize("partners", [1, 3, 5])
def test_similar_partners_matches_a_full_sort(partners):
    from acctgraph.layers.templates import similar_partners

    rng = np.random.default_rng(partners)
    a, b = rng.integers(0, 300, 20_000), rng.integers(0, 300, 20_000)
    pk = np.unique(np.minimum(a, b) * 1000 + np.maximum(a, b))
    src, dst = pk // 1000, pk % 1000
    src, dst = src[src != dst], dst[src != dst]
    score = rng.integers(0, 6, len(src)) / 5  # many ties: broken by the partner's id
    got = similar_partners(src, dst, score, partners)
    assert got.sum() > 0 and (got == _similar_partners_by_sorting(src, dst, score, partners)).all()
    assert not similar_partners(src, dst, score, 0).any() and len(similar_partners(src[:0], dst[:0], score[:0], 2)) == 0


def test_alike_matches_counts_equal_entries_of_alike_pairs_only():
    from acctgraph.layers.coactivity import shared_from_jaccard
    from acctgraph.layers.templates_kernels import alike_matches

    rng = np.random.default_rng(7)
    nodes, perm = 50, 32
    sig = rng.integers(0, 3, (40, perm)).astype(np.uint32)  # small alphabet: every Jaccard occurs
    row_of = np.full(nodes, -1, np.int64)
    row_of[:40] = rng.permutation(40)  # nodes 40.. have no set
    deg = rng.integers(0, 30, nodes).astype(np.int64)
    src, dst = rng.integers(0, nodes, 5000).astype(np.int32), rng.integers(0, nodes, 5000).astype(np.int32)
    got = alike_matches(src, dst, row_of, deg, sig, 3, 0.3, 10.0)
    has = (row_of[src] >= 0) & (row_of[dst] >= 0)
    same = np.where(has, (sig[row_of[src]] == sig[row_of[dst]]).sum(axis=1), 0)
    jac = same / perm
    alike = has & (np.minimum(deg[src], deg[dst]) >= 3) & (jac >= 0.3) & \
        (shared_from_jaccard(jac, deg[src], deg[dst]) >= 10.0)
    assert 0 < alike.sum() < len(src)
    assert (got[alike] == same[alike]).all() and (got[~alike] == 255).all()
    # identical signatures (Jaccard 1): the estimated intersection is (da + db) / 2, alike from 10 on
    one = np.zeros((1, perm), np.uint32)
    pairs = np.array([0, 2, 4]), np.array([1, 3, 5])
    at = alike_matches(*pairs, np.zeros(6, np.int64), np.array([9, 10, 10, 10, 3, 40]), one, 3, 0.3, 10.0)
    assert at.tolist() == [255, perm, perm]


def _tap_world(tmp_path):
    """400 requests (a campaign of 8 accounts among one-off askers), one with an unreadable time."""
    from conftest import write_world

    rng = np.random.default_rng(11)
    req = []
    for i in range(400):
        campaign = i % 2 == 1
        ts = "not a time" if i == 7 else f"2026-02-01T{(i // 60) % 24:02d}:{i % 60:02d}:00Z"
        req.append((f"c{i % 8}" if campaign else f"u{i}", ts, f"198.51.100.{i % 9}", "m",
                    _campaign_prompt(rng) if campaign else f"what is {i} plus {i + 1}? " + "y" * (i % 50)))
    return write_world(tmp_path / "in", req)


@pytest.fixture
def batches_of_64(monkeypatch):
    """Read and mask 64 rows at a time, so the world's requests span several batches either way."""
    from acctgraph.io import readers
    from acctgraph.layers import templates

    monkeypatch.setattr(readers, "PARQUET_BATCH_ROWS", 64)
    monkeypatch.setattr(templates, "BATCH_ROWS", 64)


def _outputs(ws) -> dict:
    return {str(f.relative_to(ws)): pq.read_table(f) for f in sorted(ws.rglob("*.parquet"))}


def _masked_from_file(monkeypatch) -> list[int]:
    """Count the builds that mask the prompts by reading ``tables/requests.parquet`` again."""
    import threading

    from acctgraph.layers import templates

    calls: list[int] = []
    real = templates._mask_on_driver

    def counted(ctx, miner):
        calls.append(threading.get_ident())
        return real(ctx, miner)

    monkeypatch.setattr(templates, "_mask_on_driver", counted)
    return calls


def _no_masking_threads() -> bool:
    import threading

    return not [t for t in threading.enumerate() if t.name.startswith(("acctgraph-mask", "acctgraph-grouping"))]


def test_prompts_masked_while_loading_give_the_same_build(tmp_path, batches_of_64, monkeypatch):
    """The build masks the prompts on the rows the load accepts (templates.MaskingTap); reading them
    back from the validated file instead gives the same files, examples (row numbers) included."""
    from acctgraph.layers import templates

    world = _tap_world(tmp_path)
    from_file = _masked_from_file(monkeypatch)
    report = acctgraph.build(world, tmp_path / "tap", quiet=True)
    assert from_file == [] and report.load.tables["requests"].quarantined == 1
    monkeypatch.delattr(templates, "load_tap")
    acctgraph.build(world, tmp_path / "file", quiet=True)
    assert len(from_file) == 1
    tapped, read = _outputs(tmp_path / "tap"), _outputs(tmp_path / "file")
    assert tapped.keys() == read.keys() and "templates.parquet" in tapped
    assert all(tapped[k].equals(read[k]) for k in tapped)
    assert tapped["templates.parquet"].num_rows > 1
    assert _no_masking_threads() and not (tmp_path / "tap" / ".spill").exists()


def test_a_tap_that_missed_rows_is_dropped_for_the_file(tmp_path, batches_of_64, monkeypatch):
    """A tap that was not given every row (here: never told it was done) is closed and the prompts are
    masked from the validated file: the same build."""
    from acctgraph.layers import templates

    world = _tap_world(tmp_path)
    acctgraph.build(world, tmp_path / "tap", quiet=True)
    from_file = _masked_from_file(monkeypatch)
    monkeypatch.setattr(templates.MaskingTap, "done", lambda self: None)
    acctgraph.build(world, tmp_path / "file", quiet=True)
    assert len(from_file) == 1
    tapped, read = _outputs(tmp_path / "tap"), _outputs(tmp_path / "file")
    assert all(tapped[k].equals(read[k]) for k in tapped)
    assert _no_masking_threads()


@pytest.mark.parametrize("batch", [64, 1 << 19])
def test_a_masking_failure_fails_the_build_and_stops_its_threads(tmp_path, monkeypatch, batch):
    """Whether the masking fails while the load still hands it rows (small batches) or after (one batch)."""
    from acctgraph.io import readers
    from acctgraph.layers import templates

    monkeypatch.setattr(readers, "PARQUET_BATCH_ROWS", batch)

    def broken(miner, batches, rows_path, on_rows):
        next(iter(batches))
        raise MemoryError("masking ran out of memory")

    monkeypatch.setattr(templates, "_mask_batches", broken)
    with pytest.raises(MemoryError, match="masking ran out"):
        acctgraph.build(_tap_world(tmp_path), tmp_path / "ws", quiet=True)
    assert _no_masking_threads()
    assert not (tmp_path / "ws" / "build.json").exists() and not (tmp_path / "ws" / ".spill").exists()


def test_a_restarted_tap_masks_only_the_rows_after_its_last_start(tmp_path):
    from acctgraph.layers.templates import MaskingTap

    first = pa.table({"account_id": ["a", "b"], "prompt": ["first prompt one here", "first prompt two"]})
    second = pa.table({"account_id": ["a", "c", "c"],
                       "prompt": ["Please sort 3 numbers in Rust", "Please sort 9 numbers in Rust", None]})
    tap = MaskingTap(TemplateMiner, tmp_path / "rows.parquet")
    tap.start()
    tap.add(first)
    tap.start()
    tap.add(second)
    tap.done()
    assert tap.rows_in == 3
    model = tap.result().finish()
    alone = TemplateMiner()
    alone.add(second.column("prompt"))
    assert model.templates.equals(alone.finish().templates)
    rows = pq.read_table(tmp_path / "rows.parquet").sort_by([("account_id", "ascending")])
    assert rows.column("account_id").to_pylist() == ["a", "c", "c"]
    assert rows.column("count_all").to_pylist() == [1, 1, 1]
    assert _no_masking_threads()


def _clause_world():
    """A model whose clauses form groups (synonym swaps), with repeated clauses, and its rows per account."""
    from acctgraph.layers.templates import skeleton_counts

    rng = np.random.default_rng(7)
    swaps = [("every", "each"), ("Explain", "Justify"), ("final", "last"), ("handles", "covers")]
    prompts = []
    for i in range(600):
        p = _campaign_prompt(rng)
        a, b = swaps[i % len(swaps)]
        prompts.append(p.replace(a, b) if i % 3 == 0 else p)
    prompts += ["Think step by step. Think step by step. Then answer the question", None, "", "ok"] * 5
    accounts = pa.array([f"a{int(x)}" for x in rng.integers(0, 60, len(prompts))])
    miner = TemplateMiner()
    hashes = miner.add(pa.array(prompts))
    model = miner.finish()
    rows = skeleton_counts(accounts, hashes)
    node = pa.array([int(a[1:]) for a in rows.column("account_id").to_pylist()], pa.int32())
    skel_node = pa.table({"node": node, "skeleton_hash": rows.column("skeleton_hash"),
                          "count_all": rows.column("count_all")})
    return model, skel_node


def _clause_ev(fn, model, skel_node, min_requests):
    from acctgraph.engine import Engine

    with Engine(threads=2) as eng:
        eng.register("_skel_node", skel_node)
        fn(eng, model.clause_part, min_requests)
        return eng.sql("SELECT * FROM clause_ev ORDER BY node, clause")


@pytest.mark.parametrize("min_requests", [1, 2])
def test_clause_evidence_compiled_equals_sql(min_requests):
    """The compiled clause counts (DuckDB) are the SQL's (other engines), shares to the last bit; so with
    the model's tables in any order (not as the miner makes them: counted by the SQL)."""
    from acctgraph.layers.templates import _clause_ev_compiled, _clause_ev_sql, _skeleton_keys

    model, skel_node = _clause_world()
    assert _skeleton_keys(model.clause_part) is not None  # the miner's model: counted by the compiled kernels
    grouped = model.clauses.filter(pa.compute.not_equal(model.clauses.column("clause_hash"),
                                                        model.clauses.column("clause_group")))
    assert grouped.num_rows > 0  # some clauses count for a group besides themselves
    sql = _clause_ev(_clause_ev_sql, model, skel_node, min_requests)
    fast = _clause_ev(_clause_ev_compiled, model, skel_node, min_requests)
    assert sql.num_rows > 100 and fast.schema.equals(sql.schema) and fast.equals(sql)
    rng = np.random.default_rng(1)
    shuffled = dataclasses.replace(model, **{name: getattr(model, name).take(rng.permutation(getattr(model, name).num_rows))
                                             for name in ("skeletons", "clauses", "skeleton_clauses")})
    assert _skeleton_keys(shuffled.clause_part) is None
    assert _clause_ev(_clause_ev_compiled, shuffled, skel_node, min_requests).equals(sql)


def test_clause_evidence_counts_by_hand():
    """A clause listed twice by a skeleton counts twice; a clause in a group counts for the group too; the
    share is of all the account's clause-key counts; keys below the minimum are left out (after the share)."""
    from acctgraph.layers.templates import _clause_ev_compiled, _clause_ev_sql
    from acctgraph.layers import templates_mining as tm

    h = lambda *v: pa.array(v, pa.uint64())  # noqa: E731
    model = tm.TemplateModel(
        pa.table({"skeleton_hash": h(10, 20), "template_id": [0, 1], "requests": [3, 3]}, schema=tm._SKEL_SCHEMA),
        tm._TMPL_SCHEMA.empty_table(),
        clauses=pa.table({"clause_hash": h(100, 200), "clause_group": h(100, 100), "requests": [6, 3]},
                         schema=tm._CLAUSE_SCHEMA),
        skeleton_clauses=pa.table({"skeleton_hash": h(10, 10, 20), "clause_hash": h(100, 100, 200)},
                                  schema=tm._SKEL_CLAUSE_SCHEMA))
    skel_node = pa.table({"node": pa.array([0, 0, 1], pa.int32()), "skeleton_hash": h(10, 20, 20),
                          "count_all": [3, 1, 2]})
    want = [(0, 100, 7, 7 / 8), (0, 200, 1, 1 / 8), (1, 100, 2, 0.5), (1, 200, 2, 0.5)]
    # a listing of a skeleton the model does not hold (15) is left out, as by the SQL's join
    stray = dataclasses.replace(model, skeleton_clauses=pa.table(
        {"skeleton_hash": h(10, 10, 15, 20), "clause_hash": h(100, 100, 200, 200)}, schema=tm._SKEL_CLAUSE_SCHEMA))
    for fn in (_clause_ev_sql, _clause_ev_compiled):
        for m in (model, stray):
            got = _clause_ev(fn, m, skel_node, 1)
            assert [tuple(r.values()) for r in got.to_pylist()] == want
        assert _clause_ev(fn, model, skel_node, 2).column("clause").to_pylist() == [100, 100, 200]


@pytest.mark.parametrize("prior", [0.0, 5.0])
def test_template_evidence_compiled_equals_sql(prior):
    from acctgraph.engine import Engine
    from acctgraph.layers.templates import _skeleton_rows, _tmpl_ev_compiled, _tmpl_ev_sql

    model, skel_node = _clause_world()
    got = {}
    for fn in (_tmpl_ev_sql, _tmpl_ev_compiled):
        with Engine(threads=2) as eng:
            eng.register("_skel_node", skel_node)
            eng.register("_skeletons", model.skeletons)
            fn(eng, model, prior)
            got[fn] = eng.sql("SELECT * FROM tmpl_ev ORDER BY node, template_id")
            if fn is _tmpl_ev_compiled:  # the rows fetched once serve templates and clauses alike
                off, item, count = _skeleton_rows(eng, model.skeletons.column("skeleton_hash"))
                assert off[-1] == len(item) == skel_node.filter(pa.compute.is_valid(skel_node.column(1))).num_rows
    sql, fast = got[_tmpl_ev_sql], got[_tmpl_ev_compiled]
    assert sql.num_rows > 50 and fast.schema.equals(sql.schema) and fast.equals(sql)
