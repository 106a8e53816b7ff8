"""The communities stage: detect communities, score clusters, flag campaigns, write the results.

Example:
    >>> import acctgraph, tempfile
    >>> ws = tempfile.mkdtemp()
    >>> _ = acctgraph.build(acctgraph.SAMPLE_DIR, ws, quiet=True)
    >>> result = acctgraph.communities(ws, quiet=True)
    >>> int(result.clusters["flagged"].sum()) >= 1
    True
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from acctgraph._version import __version__
from acctgraph.communities import Partition, _renumber, detect
from acctgraph.config import Config
from acctgraph.errors import ConfigError
from acctgraph.graph import LAYERS, SPECIFIC_LAYERS, combine_weights
from acctgraph.io.atomic import write_json_atomic, write_parquet_atomic
from acctgraph.io.csvsafe import write_csv_safe
from acctgraph.io.workspace import ARTIFACT_VERSION, UPSTREAM_KEY, Workspace
from acctgraph.memory import map_large_allocations
from acctgraph.procs import spawn_pool, usable_cores
from acctgraph.progress import say_nothing, steps
from acctgraph.scoring import (SIGNALS, cluster_signals, extraction_templates, is_own_template, reasons, score,
                               typical_volume)
from acctgraph.seeds import personalised_pagerank

EDGE_COLUMNS = ["src", "dst", "w_payments", "w_network", "w_templates", "w_coactivity"]


@dataclass
class CommunitiesResult:
    """Communities, scored clusters and flags of one run."""

    workspace: str
    members: pd.DataFrame  # node, account_id, community_id, strength_in, role, flagged
    clusters: pd.DataFrame  # one row per cluster of >= 2 accounts, by score descending
    partition: Partition
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def flagged(self) -> pd.DataFrame:
        return self.clusters[self.clusters["flagged"]]

    def first_screen(self, top: int = 10) -> pd.DataFrame:
        """The ``top`` clusters an analyst sees first: the flagged ones, then the others, each by score.

        ``clusters`` is by score alone, where pairs and small groups (never
        flagged: too few core members) can outscore a flagged campaign of
        hundreds; this view never hides a flagged cluster behind them.
        """
        c = self.clusters
        return pd.concat([c[c["flagged"]], c[~c["flagged"]]]).head(top)

    def to_dict(self, top: int = 10) -> dict[str, Any]:
        """A JSON-ready summary: counts, and the ``top`` clusters of :meth:`first_screen` with their reasons."""
        from acctgraph.display import jsonable

        cols = ["community_id", "operation_id", "size", "core_size", "score", "flagged", "seeded", "seed_mass",
                "reasons"]
        return jsonable({"workspace": self.workspace, "stats": self.stats,
                         "flagged": self.flagged["community_id"].tolist(), "clusters": self.first_screen(top)[cols]})

    def lines(self, top: int = 10) -> list[str]:
        s = self.stats
        out = [f"communities: {s['communities']:,} ({s['clusters']:,} with 2+ accounts, largest "
               f"{s['largest']:,}), modularity {s['modularity']:.3f}, {s['splits']} split off",
               f"flagged: {s['flagged_clusters']} clusters, {s['flagged_accounts']:,} accounts"]
        if s.get("calibration"):
            out += calibration_lines(s["calibration"], s["flagged_accounts"])
        head = self.first_screen(top)
        if len(head):
            out.append(f"{'cluster':>8} {'size':>7} {'score':>6} flag  top reasons   (flagged first, then by score)")
            for _, r in head.iterrows():
                out.append(f"{r['community_id']:>8} {r['size']:>7,} {r['score']:>6.3f} "
                           f"{'YES ' if r['flagged'] else '    '}  {r['reasons']}")
        return out


def _membership_strength(n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray, memb: np.ndarray) -> np.ndarray:
    same = memb[src] == memb[dst]
    return np.bincount(src[same], w[same], n) + np.bincount(dst[same], w[same], n)


@dataclass
class _Inputs:
    """Everything scoring reads, loaded once."""

    nodes: pd.DataFrame
    edges: pd.DataFrame
    src: np.ndarray
    dst: np.ndarray
    w: np.ndarray
    feats: pd.DataFrame
    tmpl: pd.DataFrame
    templates: pd.DataFrame
    clauses: pd.DataFrame  # clause evidence: node, clause, requests (empty if the build had none)
    # every edge of an idle account, however weak: src, dst, the layer weights and the combined ``weight``
    idle_edges: pd.DataFrame | None = None
    rarity: pd.Series | None = None  # per clause: log(accounts / accounts using it), see content_profiles
    # payment evidence: node, instrument (an integer code per instrument_id); empty if the build had none
    instruments: pd.DataFrame | None = None


def _load(ws: Workspace, combine, min_weight: float = 0.0) -> _Inputs:
    """Read what scoring needs; edge weights are recombined from the layers with ``combine``.

    ``edges`` (with its layer weights), ``src``, ``dst`` and ``w`` are the edges
    in use (see :func:`_recombined`, which re-weights them without reading again).
    """
    nodes = pq.read_table(ws.nodes_path).to_pandas()
    e = pq.read_table(ws.edges_path, columns=EDGE_COLUMNS).to_pandas()
    tmpl = (pq.read_table(ws.evidence_path("templates")).to_pandas() if ws.evidence_path("templates").is_file()
            else pd.DataFrame({"node": [], "template_id": [], "requests": [], "share": []}))
    templates = (pq.read_table(ws.templates_path, columns=["template_id", "canonical", "accounts"]).to_pandas()
                 if ws.templates_path.is_file() else pd.DataFrame({"template_id": [], "canonical": [], "accounts": []}))
    # matched once here, not in every scoring pass (the evasive world has 1.5M templates)
    templates["extraction"] = extraction_templates(templates["canonical"])
    clauses = (pq.read_table(ws.evidence_path("clauses"), columns=["node", "clause", "requests"]).to_pandas()
               if ws.evidence_path("clauses").is_file() else
               pd.DataFrame({"node": pd.Series([], dtype=np.int32), "clause": pd.Series([], dtype=np.uint64),
                             "requests": pd.Series([], dtype=np.int64)}))
    pay = (pq.read_table(ws.evidence_path("payments"), columns=["node", "instrument_id"]).to_pandas()
           if ws.evidence_path("payments").is_file() else pd.DataFrame({"node": [], "instrument_id": []}))
    instruments = pd.DataFrame({"node": pay["node"].to_numpy(np.int64),
                                "instrument": pd.factorize(pay["instrument_id"])[0].astype(np.int64)})
    empty = np.zeros(0)
    raw = _Inputs(nodes, e, empty, empty, empty, pq.read_table(ws.features_path).to_pandas(), tmpl, templates,
                  clauses, rarity=_rarity(clauses, "clause", len(nodes)) if len(clauses) else None,
                  instruments=instruments)
    return _recombined(raw, combine, min_weight)


def _recombined(x: _Inputs, combine, min_weight: float = 0.0) -> _Inputs:
    """``x`` with edge weights recombined from its layers with ``combine`` (nothing is read again).

    Edges whose combined weight is 0 or below ``min_weight`` are left out. A
    layer whose ``combine`` weight is 0 is switched off everywhere: its
    ``w_<layer>`` column is zeroed, so the core rules and the signals that read
    layer weights (``shared_payment``, ``multi_layer``) do not see it either.
    """
    e = x.edges.copy()
    # a layer switched off carries nothing, in the graph or in scoring (core rules, shared_payment, multi_layer)
    for l in LAYERS:
        if not getattr(combine, l):
            e[f"w_{l}"] = 0.0
    e["weight"] = combine_weights(e, combine)
    on = [l for l in LAYERS if getattr(combine, l)]
    e["layers"] = sum((e[f"w_{l}"] > 0).astype(np.int64) for l in on) if on else 0
    if x.idle_edges is None:  # first call, on every edge: keep those of idle accounts before the min_weight cut
        idle = x.feats["requests"].to_numpy() == 0 if len(x.feats) else np.zeros(len(x.nodes), bool)
        touch = idle[e["src"].to_numpy(np.int64)] | idle[e["dst"].to_numpy(np.int64)]
        idle_edges = e.loc[touch, ["src", "dst"] + [f"w_{l}" for l in LAYERS]].reset_index(drop=True)
    else:
        idle_edges = x.idle_edges.drop(columns="weight")
    idle_edges["weight"] = combine_weights(idle_edges, combine)
    e = e[(e["weight"] > 0) & (e["weight"] >= min_weight)].reset_index(drop=True)
    return dataclasses.replace(x, edges=e, src=e["src"].to_numpy(np.int64), dst=e["dst"].to_numpy(np.int64),
                               w=e["weight"].to_numpy(np.float64), idle_edges=idle_edges)


def flag_rule(scored: pd.DataFrame, sc) -> pd.Series:
    """Which clusters are flagged: enough core members, and any of the paths below.

    1. **Score**: ``score >= flag_score`` (many signals at once) and
       ``conduct >= flag_conduct``: the signals about what the accounts do
       (:data:`~acctgraph.scoring.CONDUCT`) must add up to something. Ties
       alone (one corporate card, one egress, both layers agreeing) are how a
       company looks; they are not abuse.
    2. **Purpose**: ``extraction_prompts >= extraction_flag`` and
       ``volume >= extraction_volume``: a coordinated group whose traffic is
       mostly capability extraction at many times the typical account's
       volume is what a distillation campaign *is*, whatever it hides (cards,
       exits, timing, creation dates, wording). Companies and universities
       lack the volume, bots the extraction prompts, VPN users both.
    3. **Hiding**: ``ip_rotation >= rotation_flag`` and ``volume >=
       rotation_volume``: a coordinated group whose typical member sends many
       times the typical account's volume from a new address for most of its
       requests hides behind a rotating proxy pool. Evading the network layer
       (no shared exit) lights this, and it needs no words of the prompts.
       People reuse their addresses (home, office, phone) and bots run from
       fixed servers: no legitimate cluster of 10+ core members in the
       measured worlds has both (docs/communities.md).

    >>> from acctgraph.config import ScoringConfig
    >>> c = pd.DataFrame({"score": [0.5, 0.3, 0.3, 0.4, 0.2, 0.2], "conduct": [0.3, 0.3, 0.3, 0.1, 0.3, 0.3],
    ...                   "core_size": [20] * 6,
    ...                   "extraction_prompts": [0.0, 0.8, 0.8, 0.0, 0.0, 0.0],
    ...                   "volume": [0.0, 0.9, 0.2, 0.0, 0.8, 0.2], "ip_rotation": [0.0] * 4 + [0.7, 0.7]})
    >>> flag_rule(c, ScoringConfig()).tolist()
    [True, True, False, False, True, False]
    """
    big = scored["core_size"] >= sc.flag_min_size
    many = (scored["score"] >= sc.flag_score) & (scored["conduct"] >= sc.flag_conduct)
    purpose = (scored["extraction_prompts"] >= sc.extraction_flag) & (scored["volume"] >= sc.extraction_volume)
    hiding = (scored["ip_rotation"] >= sc.rotation_flag) & (scored["volume"] >= sc.rotation_volume)
    return big & (many | purpose | hiding)


def flag_rule_text(sc) -> str:
    """The flag rule of :func:`flag_rule` in words, with the configured thresholds (for evidence packets).

    >>> from acctgraph.config import ScoringConfig
    >>> flag_rule_text(ScoringConfig())[:80]
    'flagged with at least 10 core members when the score is at least 0.36 and conduc'
    """
    return (f"flagged with at least {sc.flag_min_size} core members when the score is at least {sc.flag_score} "
            f"and conduct (the mean of the signals about what the accounts do, not how they are tied) at least "
            f"{sc.flag_conduct}, or when at least {sc.extraction_flag:.0%} of the requests are capability-"
            f"extraction prompts and the volume signal is at least {sc.extraction_volume}, or when the typical "
            f"member uses a new IP address for at least {sc.rotation_flag:.0%} of its requests and the volume "
            f"signal is at least {sc.rotation_volume}")


def core_members(src: np.ndarray, dst: np.ndarray, w: np.ndarray, w_pay: np.ndarray, memb: np.ndarray,
                 ratio: float, w_layers: np.ndarray | None = None,
                 idle: np.ndarray | None = None, reference: str = "median") -> tuple[np.ndarray, np.ndarray]:
    """Core mask and in-community strength of every account (see :func:`_score_partition`).

    An account is core when any of these holds inside its community:

    1. its link strength is at least ``ratio`` times the community's median;
    2. it is tied by payment instruments at least ``ratio`` times as firmly as
       the median member, or it is ``idle`` (sent no request) and tied by
       payment instruments at least ``ratio`` times as firmly as the median
       member that has payment links: cards are specific evidence, and a
       sleeper account a campaign created and has not used yet has no other
       link (however dense its campaign's other links make the medians);
    3. its links come from two or more layers (``w_layers``: one column per
       layer), i.e. independent kinds of evidence agree. An account that a
       campaign's shared proxy exit or a public sentence attaches to it has one.

    Rules 1 and 3 also need links to two or more members (in communities of
    four or more): an account tied to a single member is attached to the
    group, not part of it. Measured on the evasive generated world: 37
    individuals each shared one residential-proxy address (some with a card
    of the same BIN) with one account of a 260-account campaign and were
    flagged with it; campaign members have links to dozens of members.

    >>> src, dst = np.array([0, 1, 2, 0, 1, 3]), np.array([1, 2, 0, 3, 3, 4])
    >>> w = np.array([5.0, 5, 5, 0.01, 0.01, 0.01]); pay = np.array([1.0, 1, 1, 1, 1, 0])
    >>> core, _ = core_members(src, dst, w, pay, np.zeros(5, int), 0.05)
    >>> core.tolist()   # 3 shares cards only (weak overall, tied by cards); 4 hangs on by one weak link
    [True, True, True, True, False]
    >>> layers = np.column_stack([np.zeros(6), [1.0, 1, 1, 0, 0, 1], [1.0, 1, 1, 0, 0, 1]])
    >>> core_members(src, dst, w, np.zeros(6), np.zeros(5, int), 0.05, layers)[0].tolist()  # 3: two layers
    [True, True, True, True, False]
    """
    n = len(memb)
    strength = _membership_strength(n, src, dst, w, memb)
    median = (weighted_median(strength, memb) if reference == "weighted" else
              pd.Series(strength).groupby(memb).transform("median").to_numpy())
    several = _tied_to_several(src, dst, memb)
    core = (strength >= ratio * median) & several
    if w_pay.any():
        s_pay = _membership_strength(n, src, dst, w_pay, memb)
        med_pay = pd.Series(s_pay).groupby(memb).transform("median").to_numpy()
        core |= (med_pay > 0) & (s_pay >= ratio * med_pay)
        if idle is not None:  # sleepers: measured against the members that have payment links at all
            paid = s_pay > 0
            med_paid = pd.Series(s_pay[paid]).groupby(memb[paid]).median()
            core |= idle & paid & (s_pay >= ratio * med_paid.reindex(memb).to_numpy()) & several
    if w_layers is not None:
        core |= two_layer_members(src, dst, w_layers, memb)
    return core, strength


#: References of the core rule's strength bar (``[scoring] core_reference``).
CORE_REFERENCES: tuple[str, ...] = ("median", "weighted")


def weighted_median(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per element, its group's ``values``-weighted median: the smallest value such that the
    elements at or below it hold at least half of the group's total.

    The reference of ``core_reference = "weighted"``: where weakly tied accounts outnumber a
    community's members (rotating residential proxies tied 22,000 individuals, two links each,
    to a 14,000-account campaign at seed scale), the plain median is theirs, the weighted one the members'.

    >>> weighted_median(np.array([1.0, 1, 1, 10, 10, 0, 0]), np.array([0, 0, 0, 0, 0, 1, 1])).tolist()
    [10.0, 10.0, 10.0, 10.0, 10.0, 0.0, 0.0]
    """
    out = np.zeros(len(values))
    if not len(values):
        return out
    order = np.lexsort((values, groups))
    v, g = values[order], groups[order]
    start = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    sizes = np.diff(np.r_[start, len(v)])
    cs = np.cumsum(v)
    before = np.repeat(cs[start] - v[start], sizes)
    reached = (cs - before) >= np.repeat(np.add.reduceat(v, start) / 2.0, sizes)
    first = -np.maximum.reduceat(np.where(reached, -np.arange(len(v)), -len(v)), start)
    out[order] = np.repeat(v[first], sizes)
    return out


def two_layer_members(src: np.ndarray, dst: np.ndarray, w_layers: np.ndarray, memb: np.ndarray) -> np.ndarray:
    """Rule 3 of :func:`core_members`: links to two or more members, from two or more layers.

    It needs no community medians, so it also holds for an account of a
    small pool after the pool merged into a busier one.

    >>> src, dst = np.array([0, 0, 1]), np.array([1, 2, 2])
    >>> layers = np.array([[1.0, 0], [0, 1], [1, 0]])   # layer 0 (cards): 0-1, 1-2; layer 1: 0-2
    >>> two_layer_members(src, dst, layers, np.zeros(4, int)).tolist()   # 1 has cards only, 3 no links
    [True, False, True, False]
    """
    n = len(memb)
    same = memb[src] == memb[dst]
    kinds = np.zeros(n, np.int64)
    for j in range(w_layers.shape[1]):
        on = same & (w_layers[:, j] > 0)
        has = np.zeros(n, bool)
        has[src[on]] = True
        has[dst[on]] = True
        kinds += has
    return (kinds >= 2) & _tied_to_several(src, dst, memb)


def circumstantial_members(src: np.ndarray, dst: np.ndarray, w_layers: np.ndarray, memb: np.ndarray,
                           core: np.ndarray, ratio: float, specific: list[int], content: int,
                           may_count: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """Members tied to their community only by circumstance where its core is tied by what it writes.

    ``specific`` are the columns of ``w_layers`` whose evidence is specific to an
    actor (payment instruments, the prompt templates and clauses one writes);
    the others are circumstance (shared network addresses, time bins), which a
    campaign shares with every customer of its proxy service and everyone
    awake at the same hours. ``content`` (one of ``specific``) is the column of
    what the accounts write. A layer *counts* for a member when the member's
    link weight on it inside its community is at least ``ratio`` times that
    layer's median over the members with links on it, so a popular
    template's crumbs (1/1000 of what members share) do not count. (The
    plain median, not :func:`weighted_median`: a campaign's few heavy
    senders would lift the weighted one above its quiet members.)

    A member is circumstantial when no specific layer counts for it while
    content counts for at least half of the community's ``core``: a VPN user
    on the proxy exit of a campaign whose accounts send the same prompts is
    attached to it, however firmly the exit ties it, whether the campaign
    shares cards or pays with unique ones. Content is what a distillation
    campaign cannot do without; cards are not: where the core is tied by
    cards but not by content (it paraphrases beyond the templates layer, or
    the analysis switches that layer off), a member without cards may be one
    that paid on its own, and nobody is circumstantial.

    Links are those community detection sees (``[communities] min_weight``):
    a quiet campaign member whose template links are each below it, and
    whose other ties are shared hours, is circumstantial here (the seed-scale
    world of seed 4243: 9 of its 3,000 policy-probe accounts); the caller
    spares those who send the core's own templates (:func:`own_template_senders`).

    ``may_count`` narrows a specific layer to some accounts (column -> mask):
    the payments layer also links cards of one BIN bought in a burst, a tie
    to whoever else bought cards of a common BIN that day, so the caller lets
    payments count only for members sharing an instrument with another member
    or that sent no request (a sleeper's card is all it leaves:
    :func:`shared_instrument_members`).

    >>> src, dst = np.array([0, 0, 1, 3, 3]), np.array([1, 2, 2, 0, 1])
    >>> layers = np.array([[1.0, 1], [1, 1], [1, 1], [0.0001, 3], [0, 3]])  # 3: proxy exit + crumbs
    >>> circumstantial_members(src, dst, layers, np.zeros(4, int), np.ones(4, bool), 0.025, [0], 0).tolist()
    [False, False, False, True]
    """
    n = len(memb)
    counts = np.zeros(n, np.int64)
    writes = np.zeros(n, bool)
    for j in specific:
        s = _membership_strength(n, src, dst, w_layers[:, j], memb)
        has = s > 0
        if has.any():  # the plain median: a quiet member of a campaign with a few heavy senders still counts
            ref = pd.Series(s[has]).groupby(memb[has]).median().reindex(memb).to_numpy()
            ok = has & (s >= ratio * ref)
            if may_count is not None and j in may_count:
                ok &= may_count[j]
            counts += ok
            if j == content:
                writes = ok
    if not core.any():
        return np.zeros(n, bool)
    typical = pd.Series(writes[core]).groupby(memb[core]).mean().reindex(np.arange(int(memb.max()) + 1))
    return (counts == 0) & (typical.fillna(0).to_numpy()[memb] >= 0.5)


def shared_instrument_members(instruments: pd.DataFrame, memb: np.ndarray) -> np.ndarray:
    """Accounts holding a payment instrument that another member of their community holds too.

    ``instruments``: ``node, instrument`` (one row per account and instrument).
    Payment links inside a community without this are BIN-burst links alone.

    >>> ins = pd.DataFrame({"node": [0, 1, 2, 3], "instrument": [5, 5, 6, 6]})
    >>> shared_instrument_members(ins, np.array([0, 0, 0, 1])).tolist()   # 2 and 3 share a card across
    [True, True, False, False]
    """
    out = np.zeros(len(memb), bool)
    if instruments is None or not len(instruments):
        return out
    node = instruments["node"].to_numpy(np.int64)
    key = pd.DataFrame({"i": instruments["instrument"].to_numpy(np.int64), "c": memb[node]})
    shared = key.groupby(["i", "c"])["i"].transform("size").to_numpy() >= 2
    out[node[shared]] = True
    return out


def own_template_senders(tmpl: pd.DataFrame, users: pd.Series, memb: np.ndarray, core: np.ndarray,
                         who: np.ndarray) -> np.ndarray:
    """Accounts of ``who`` that send a template of their community core's own.

    ``tmpl``: template evidence (``node, template_id``, one row per account
    and template); ``users``: accounts sending each template (all accounts,
    indexed by template id). A template is the core's own when two or more
    ``core`` members of the community send it and they are at least half of
    its users (:func:`acctgraph.scoring.is_own_template`). A campaign's quiet
    member sending one of the campaign's templates once has a weak link to
    each sender, below ``[communities] min_weight`` where the campaign is
    large, yet sends what almost nobody but the campaign sends; a VPN user
    on the campaign's exit sends public templates, whose users are mostly
    not the campaign's.

    >>> t = pd.DataFrame({"node": [0, 1, 2, 3, 3], "template_id": [7, 7, 7, 7, 8]})
    >>> memb, core = np.zeros(4, int), np.array([True, True, True, False])
    >>> own_template_senders(t, pd.Series({7: 4, 8: 900}), memb, core, ~core).tolist()
    [False, False, False, True]
    """
    out = np.zeros(len(memb), bool)
    node = tmpl["node"].to_numpy(np.int64)
    asked = who[node]
    if not asked.any():
        return out
    tid = tmpl["template_id"].to_numpy()
    near = np.isin(tid, np.unique(tid[asked]))  # only the templates the accounts asked about send
    t = pd.DataFrame({"template_id": tid[near], "community_id": memb[node[near]], "node": node[near]})
    senders = t[core[t["node"].to_numpy()]].groupby(["template_id", "community_id"]).size().rename("senders")
    q = t[asked[near]].join(senders, on=["template_id", "community_id"])
    own = is_own_template(q["senders"].fillna(0).to_numpy(), users.reindex(q["template_id"]).fillna(0).to_numpy())
    out[q["node"].to_numpy()[own]] = True
    return out


def _tied_to_several(src: np.ndarray, dst: np.ndarray, memb: np.ndarray) -> np.ndarray:
    """Accounts linked to two or more members of their community (any account of a community of 3 or fewer)."""
    n = len(memb)
    same = memb[src] == memb[dst]
    degree = np.bincount(src[same], minlength=n) + np.bincount(dst[same], minlength=n)
    return (degree >= 2) | (np.bincount(memb)[memb] <= 3)


def loose_blocks(src: np.ndarray, dst: np.ndarray, w: np.ndarray, w_specific: np.ndarray, memb: np.ndarray,
                 who: np.ndarray, min_size: int, min_link: float, max_conductance: float) -> np.ndarray:
    """Blocks of ``who`` loosely joined to the rest of their community's ``who``: a block id per account
    (-1: in none).

    A block is a connected group of ``who`` accounts of one community tied by specific evidence:
    links whose ``w_specific`` (shared cards and templates) is at least ``min_link``. In a community
    with two or more blocks of ``min_size`` accounts, such a block is *loose* when its conductance
    among the community's ``who`` (``w``: the combined link weight) is below ``max_conductance``:
    a company on its own corporate card, glued to a campaign through a few VPN users' shared exits.
    A campaign's card pools are interlinked by everything else they share (weaker template links,
    exits, hours) and their conductance stays high (the validation world's V1: 0.27-0.74).

    >>> # accounts 0-3 share cards (a clique), 4-7 too; one combined link (0-4, an exit) joins them
    >>> a = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    >>> src, dst = (np.array(v) for v in zip(*(a + [(i + 4, j + 4) for i, j in a] + [(0, 4)])))
    >>> cards = np.r_[np.ones(12), 0.0]
    >>> blocks = loose_blocks(src, dst, np.ones(13), cards, np.zeros(8, int), np.ones(8, bool), 4, 0.01, 0.2)
    >>> blocks.tolist()   # each clique's conductance: 1 / 13
    [0, 0, 0, 0, 1, 1, 1, 1]
    >>> # four such links between them (conductance 4 / 16): interlinked, one group
    >>> more = np.r_[src, [1, 2, 3]], np.r_[dst, [5, 6, 7]]
    >>> loose_blocks(*more, np.ones(16), np.r_[cards, 0, 0, 0], np.zeros(8, int), np.ones(8, bool), 4, 0.01, 0.2).tolist()
    [-1, -1, -1, -1, -1, -1, -1, -1]
    """
    import igraph as ig

    from acctgraph.communities import conductance

    n = len(memb)
    out = np.full(n, -1, np.int64)
    inside = who[src] & who[dst] & (memb[src] == memb[dst])
    tied = inside & (w_specific >= min_link)
    if not tied.any():
        return out
    # components over the ``who`` accounts only (numbered 0..m-1), not every account of the graph
    ids = np.flatnonzero(who)
    g = ig.Graph(n=len(ids), directed=False)
    g.add_edges(np.column_stack([np.searchsorted(ids, src[tied]), np.searchsorted(ids, dst[tied])]))
    comp = np.full(n, n, np.int64)  # n: not in ``who``
    comp[ids] = g.connected_components().membership
    big = who & (np.bincount(comp[who], minlength=n + 1)[comp] >= min_size)
    # communities with two or more big blocks (a block lies in one community: its links are inside)
    community, blocks = np.unique(np.unique(np.column_stack([memb[big], comp[big]]), axis=0)[:, 0],
                                  return_counts=True)
    cand = who & np.isin(memb, community[blocks >= 2])
    if not cand.any():
        return out
    # parts: each big block, and the rest of each candidate community; measured within the community
    key = np.where(big, comp, n + memb)  # comp < n: a block; n + community: the community's rest
    keys, part = np.unique(key[cand], return_inverse=True)
    parts = np.full(n, -1, np.int64)
    parts[cand] = part
    whole = np.empty(len(keys), np.int64)
    whole[part] = memb[cand]
    e = inside & cand[src]  # a candidate's links inside its community: both ends are candidates
    cond = conductance(parts[src[e]], parts[dst[e]], w[e], np.arange(len(keys)), whole)
    sel = cand.copy()
    sel[cand] = ((keys < n) & (cond < max_conductance))[part]
    out[sel] = comp[sel]
    return out


def _score_partition(x: _Inputs, memb: np.ndarray, sc, fixed: np.ndarray | None = None,
                     fixed_core: np.ndarray | None = None,
                     with_reasons: bool = True) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Scored clusters (by score), the core mask, membership strengths and the core by ties alone
    (before :func:`circumstantial_members` is applied: what merged pools carry into the next pass,
    so that circumstance is judged against the whole operation's core, not one pool's).

    Core members (see :func:`core_members`) are linked to their community
    firmly enough, by payment instruments, or by two or more layers; a shared
    exit or sentence alone is not enough. Signals are computed on the core only, so accounts
    that a campaign's shared proxies or public templates attach to its
    community neither dilute nor inflate its score.
    """
    w_layers = x.edges[[f"w_{l}" for l in LAYERS]].to_numpy(np.float64)
    idle = x.feats["requests"].to_numpy() == 0
    core, strength = core_members(x.src, x.dst, x.w, x.edges["w_payments"].to_numpy(np.float64), memb,
                                  sc.fringe_ratio, w_layers, idle=idle, reference=sc.core_reference)
    if fixed is not None:
        # members of merged communities keep the role they had in their own pool (a busy pool's medians
        # would push a quiet pool to the fringe), and become core when the two-layer rule, which needs
        # no medians, holds in the merged community: links to members of several pools count there
        core = np.where(fixed, fixed_core | two_layer_members(x.src, x.dst, w_layers, memb), core)
    tied = core.copy()
    if sc.circumstantial_fringe:  # tied by shared addresses or hours alone, to a core tied by what it writes
        cards = {LAYERS.index("payments"): shared_instrument_members(x.instruments, memb) | idle}
        circ = circumstantial_members(x.src, x.dst, w_layers, memb, core, sc.fringe_ratio,
                                      [LAYERS.index(l) for l in SPECIFIC_LAYERS], LAYERS.index("templates"), cards)
        if circ.any():  # ... unless it sends the core's own templates, however quietly
            circ &= ~own_template_senders(x.tmpl, x.templates.set_index("template_id")["accounts"], memb,
                                          core & ~circ, circ)
        core &= ~circ
    members = x.feats.assign(community_id=memb)
    typical = typical_volume(members[core])
    # only accounts of communities with two or more members can be in a cluster: at seed scale
    # that is a tenth of the accounts, and scoring runs twice per detection
    multi = (np.bincount(memb) >= 2)[memb]
    core_m = core & multi
    core_e = x.edges[core_m[x.src] & core_m[x.dst]]
    sig = cluster_signals(members[core_m], core_e, x.tmpl[core_m[x.tmpl["node"].to_numpy(np.int64)]], x.templates,
                          typical=typical)
    sig = sig.rename(columns={"size": "core_size"})
    sig.insert(0, "size", pd.Series(np.bincount(memb)).reindex(sig.index).to_numpy())
    scored = score(sig, {s: getattr(sc, s) for s in SIGNALS})
    scored["flagged"] = flag_rule(scored, sc)
    if with_reasons:
        scored["reasons"] = scored.apply(reasons, axis=1) if len(scored) else pd.Series(dtype=str)
    scored = scored.reset_index().sort_values(["score", "size", "community_id"], ascending=[False, False, True])
    return scored.reset_index(drop=True), core, strength, tied


def operations(x: _Inputs, memb: np.ndarray, resolution: float, seed: int) -> np.ndarray:
    """Operation id per community: Leiden (modularity, low resolution) on the community graph.

    The community graph has one vertex per community and, between two
    communities, the total weight of the edges joining them (internal weight
    as self-loops), so a low resolution groups communities that are tied to
    each other far more than chance: several account pools of one actor.
    """
    k = int(memb.max()) + 1 if len(memb) else 0
    if k == 0 or not len(x.src):
        return np.arange(k)
    a, b = memb[x.src], memb[x.dst]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    agg = pd.DataFrame({"lo": lo, "hi": hi, "w": x.w}).groupby(["lo", "hi"], sort=True)["w"].sum()
    lo, hi = agg.index.get_level_values(0).to_numpy(), agg.index.get_level_values(1).to_numpy()
    # Only communities tied to another one take part (an isolated vertex is its own group anyway):
    # a few thousand vertices instead of every singleton account.
    tied = np.unique(np.concatenate([lo[lo != hi], hi[lo != hi]]))
    out = np.arange(k)
    if len(tied) == 0:
        return out
    keep = np.isin(lo, tied) & np.isin(hi, tied)
    part = detect(len(tied), np.searchsorted(tied, lo[keep]), np.searchsorted(tied, hi[keep]),
                  agg.to_numpy()[keep], resolution=resolution, seed=seed, split_min_size=len(tied) + 1,
                  split_depth=0)
    # each group is named by its smallest community, then numbered like communities
    first = np.full(int(part.membership.max()) + 1, k, np.int64)
    np.minimum.at(first, part.membership, tied)
    out[tied] = first[part.membership]
    return _renumber(out)  # ids by decreasing number of communities, ties by smallest community


def _seed_nodes(ws: Workspace, nodes: pd.DataFrame, known_bad: list[str] | None) -> np.ndarray:
    """Node ids of the known-bad accounts: explicit ids, else the workspace's known_bad table."""
    ids: list[str] = list(known_bad or [])
    if not ids and ws.table_path("known_bad").is_file():
        ids = pq.read_table(ws.table_path("known_bad"), columns=["account_id"]).column("account_id").to_pylist()
    if not ids:
        return np.zeros(0, dtype=np.int64)
    idx = pd.Index(nodes["account_id"]).get_indexer(pd.Index(sorted(set(ids))))
    return np.sort(nodes["node"].to_numpy()[idx[idx >= 0]])


def content_profiles(x: _Inputs, memb: np.ndarray, core: np.ndarray, communities: np.ndarray) -> pd.Series:
    """What each of ``communities`` sends: its core members' requests per clause, weighted by rarity.

    Returns a Series indexed by (community, clause). A clause's weight is
    ``log(accounts / accounts using it)`` (inverse document frequency over
    all accounts), so stock phrases many people type ("think step by step",
    a popular preamble) count for little and a campaign's own instructions
    for much. Clauses rather than templates: under heavy paraphrasing one
    campaign's prompts spread over many templates (two random 25-account
    pools of the evasive world's campaigns: template cosine down to 0.61)
    while its clause groups stay put (0.97 or more), and templates that
    share a preamble can chain into one (two campaigns of the default world
    sent 98% of their requests to one template, cosine 0.92). Without clause
    evidence (older workspaces) the template evidence is used the same way.
    """
    ev, key = (x.clauses, "clause") if len(x.clauses) else (x.tmpl, "template_id")
    if not len(ev):
        return pd.Series([], dtype=np.float64, index=pd.MultiIndex.from_arrays([[], []], names=["c", key]))
    node = ev["node"].to_numpy(np.int64)
    idf = x.rarity if x.rarity is not None and key == "clause" else _rarity(ev, key, len(memb))
    t = pd.DataFrame({"c": memb[node], key: ev[key].to_numpy(), "r": ev["requests"].to_numpy(np.float64)})
    t = t[core[node] & np.isin(t["c"].to_numpy(), communities)]
    v = t.groupby(["c", key], sort=True)["r"].sum()
    return v * idf.reindex(v.index.get_level_values(key)).to_numpy()


def _rarity(ev: pd.DataFrame, key: str, accounts: int) -> pd.Series:
    """``log(accounts / accounts using it)`` per ``key`` of evidence ``ev`` (node, key, ...)."""
    return np.log(accounts / ev.groupby(key)["node"].nunique().clip(lower=1))


def _cosine(a: pd.Series, b: pd.Series) -> float:
    """Cosine similarity of two sparse vectors (Series indexed by key)."""
    na, nb = float(np.sqrt((a ** 2).sum())), float(np.sqrt((b ** 2).sum()))
    if na == 0 or nb == 0:
        return 0.0
    return float(a.mul(b, fill_value=0).sum() / (na * nb))


#: :func:`_similar_pairs` multiplies profiles in blocks of at most this many keys, and of at most
#: _PAIR_CELLS values per block (and per block of similarities): its memory is bounded whatever the number
#: of communities.
_PAIR_KEY_BLOCK = 4096
_PAIR_CELLS = 1 << 23


def _similar_pairs(v: pd.Series, ops: np.ndarray, min_overlap: float) -> pd.Series:
    """Cosine similarity of every two communities of one operation whose :func:`content_profiles`
    ``v`` are at least ``min_overlap`` alike: a Series indexed by (community a, community b), a < b.

    Per operation, the normalised profiles are a dense (communities x shared keys) matrix and the
    similarities its Gram matrix, accumulated over blocks of keys (keys used by one community
    only add nothing) for a block of rows at a time. A join on keys would list every pair of
    communities per shared key: 1,103 flagged pieces of one operation sharing a campaign's
    clauses, as in a layer-off run of the calibration report on a seed-scale world with every
    evasion knob on, made 786M rows and ran out of memory; the Gram matrix of 1,103 communities
    is 10 MB.

    >>> idx = pd.MultiIndex.from_tuples([(0, "a"), (0, "b"), (1, "a"), (1, "b"), (2, "c")], names=["c", "k"])
    >>> _similar_pairs(pd.Series([1.0, 1.0, 2.0, 2.1, 1.0], index=idx), np.zeros(3, int), 0.9).round(4).to_dict()
    {(0, 1): 0.9997}
    """
    key = v.index.names[1]
    d = v.rename("u").reset_index()
    d["u"] = d["u"] / d["c"].map(np.sqrt((d["u"] ** 2).groupby(d["c"]).sum()))
    d["op"] = ops[d["c"].to_numpy()]
    d = d[d.groupby(["op", key])["c"].transform("size") >= 2]  # keys two or more communities share
    found: list[pd.Series] = []
    for _, g in d.groupby("op", sort=True):
        comms, ci = np.unique(g["c"].to_numpy(), return_inverse=True)
        if len(comms) < 2:
            continue
        keys, ki = np.unique(g[key].to_numpy(), return_inverse=True)
        u = g["u"].to_numpy(np.float64)
        n = len(comms)
        kb = max(1, min(_PAIR_KEY_BLOCK, _PAIR_CELLS // n))  # a key block: n x kb values
        rb = max(1, min(n, _PAIR_CELLS // n))  # a row block of similarities: rb x n values
        for r0 in range(0, n, rb):
            sim = np.zeros((min(rb, n - r0), n))
            for k0 in range(0, len(keys), kb):
                sel = (ki >= k0) & (ki < k0 + kb)
                block = np.zeros((n, min(kb, len(keys) - k0)))
                block[ci[sel], ki[sel] - k0] = u[sel]
                sim += block[r0:r0 + rb] @ block.T
            a, b = np.nonzero(sim >= min_overlap)
            a += r0
            upper = a < b
            if upper.any():
                found.append(pd.Series(sim[a[upper] - r0, b[upper]],
                                       index=pd.MultiIndex.from_arrays([comms[a[upper]], comms[b[upper]]])))
    if not found:
        return pd.Series([], dtype=np.float64, index=pd.MultiIndex.from_arrays([[], []]))
    return pd.concat(found).sort_index()


def _same_campaign(x: _Inputs, memb: np.ndarray, core: np.ndarray, flagged: np.ndarray, ops: np.ndarray,
                   min_overlap: float) -> np.ndarray:
    """For each flagged community, the id of the flagged community it merges into (itself if none).

    Two flagged communities merge when they are in the same operation *and*
    send the same content: the cosine similarity of their
    :func:`content_profiles` is at least ``min_overlap``. Pools of one
    campaign are samples of one content mix (random pools of a campaign,
    measured on four worlds: 0.92 or more at 10 accounts, 0.965 at 25);
    two campaigns that share proxy exits, a preamble or a template family
    still send different mixes (0.78 at most, measured on the same worlds
    and at seed scale).

    Merging is average-linkage: candidate pairs are taken from the most
    similar down, and a pair merges only if the *merged groups'* summed
    profiles are still similar enough, so a pool that mixes two campaigns
    cannot chain them together.
    """
    target = flagged.copy()
    if len(flagged) < 2:
        return target
    v = content_profiles(x, memb, core, flagged)
    if not len(v):
        return target
    cos = _similar_pairs(v, ops, min_overlap)
    if not len(cos):
        return target
    # most similar first; ties by community ids, so the result does not depend on hash order
    order = pd.DataFrame({"a": cos.index.get_level_values(0), "b": cos.index.get_level_values(1),
                          "s": cos.to_numpy()}).sort_values(["s", "a", "b"], ascending=[False, True, True])
    prof = {int(c): g.droplevel(0) for c, g in v.groupby(level=0)}
    parent = {int(c): int(c) for c in flagged}
    alone = set(parent)  # groups of one community: their pair's cosine is already known

    def find(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for a, b in zip(order["a"].to_numpy(), order["b"].to_numpy()):  # one entry per similar pair of communities
        ra, rb = find(int(a)), find(int(b))
        if ra == rb:
            continue
        if (ra in alone and rb in alone) or _cosine(prof[ra], prof[rb]) >= min_overlap:
            keep, gone = min(ra, rb), max(ra, rb)
            parent[gone] = keep
            prof[keep] = prof[keep].add(prof.pop(gone), fill_value=0)
            alone.discard(keep)
    return np.array([find(int(c)) for c in flagged], dtype=flagged.dtype)


def attach_sleepers(edges: pd.DataFrame, idle: np.ndarray, memb: np.ndarray, core: np.ndarray,
                    flagged: np.ndarray, min_share: float, min_links: int = 5) -> np.ndarray:
    """The flagged community each idle, lone account joins as a *sleeper* (-1: none).

    A campaign creates accounts it has not used yet; their only trace is a
    payment instrument, e.g. one virtual card each from a BIN burst. Links of
    a burst that barely stands out from its BIN's rate are too weak for
    detection (``min_weight``) and such accounts end up alone. (Before bursts
    were weighted by their surprise, every burst's links were: measured then
    at seed scale, 199 of agent-distill's 7,000 accounts, each with about 20
    such links, 98% of them to the campaign's flagged core.)

    An account that sent no request and is alone in its community joins the
    flagged community whose core members hold at least ``min_share`` of its
    link weight (``edges``: every edge of an idle account, however weak),
    over at least ``min_links`` links. A burst links each card to about
    ``2 * ring_k`` others; a chance day at an ordinary bank to two or three.
    Measured on the evasive world (cards from ordinary banks): 46 idle
    individuals passed with two links, 5 with three, none with five; the
    campaigns' sleepers on the default world and at seed scale have 20.

    >>> e = pd.DataFrame({"src": [0, 0, 0, 1], "dst": [2, 3, 4, 4], "weight": [1e-4, 1e-4, 1e-5, 1e-4]})
    >>> memb, core = np.array([5, 6, 0, 0, 7]), np.array([False, False, True, True, False])
    >>> idle = np.array([True, True, False, False, True])
    >>> attach_sleepers(e, idle, memb, core, np.array([0]), 0.5, min_links=2).tolist()
    [0, -1, -1, -1, -1]
    """
    n = len(memb)
    out = np.full(n, -1, np.int64)
    if edges is None or not len(edges) or not len(flagged) or min_share > 1:
        return out
    alone = idle & (np.bincount(memb, minlength=int(memb.max()) + 1)[memb] == 1)
    src, dst = edges["src"].to_numpy(np.int64), edges["dst"].to_numpy(np.int64)
    w = edges["weight"].to_numpy(np.float64)
    a, b, ww = np.concatenate([src, dst]), np.concatenate([dst, src]), np.concatenate([w, w])
    keep = alone[a]
    a, b, ww = a[keep], b[keep], ww[keep]
    total = np.bincount(a, ww, n)
    to = np.isin(memb[b], flagged) & core[b]
    if not to.any():
        return out
    g = (pd.DataFrame({"a": a[to], "c": memb[b[to]], "w": ww[to]})
         .groupby(["a", "c"], sort=True)["w"].agg(["sum", "size"]).reset_index()
         .sort_values(["a", "sum", "c"], ascending=[True, False, True]).drop_duplicates("a"))
    ok = (g["sum"].to_numpy() >= min_share * total[g["a"].to_numpy()]) & (g["size"].to_numpy() >= min_links)
    out[g["a"].to_numpy()[ok]] = g["c"].to_numpy()[ok]
    return out


def domain_owners(domains: pd.Series, active: np.ndarray, memb: np.ndarray, core: np.ndarray,
                  flagged: np.ndarray, min_accounts: int, min_share: float) -> pd.Series:
    """E-mail domains a flagged cluster owns: {domain: community id}.

    A domain is owned by a flagged community when at least ``min_accounts``
    of the domain's active accounts (``active``: sent a request) are core
    members of that community and they are at least ``min_share`` of them.
    Webmail and company domains are shared with accounts outside any flagged
    cluster; a campaign's own or throw-away domains are not.

    >>> d = pd.Series(["x.io"] * 5 + ["gmail.com"] * 4)
    >>> memb, core = np.array([0, 0, 0, 0, 1, 0, 0, 2, 3]), np.ones(9, bool)
    >>> domain_owners(d, np.ones(9, bool), memb, core, np.array([0]), 3, 0.7).to_dict()
    {'x.io': 0}
    """
    return _owners(domain_keys(domains), active, memb, core, flagged, min_accounts, min_share)


def domain_keys(domains: pd.Series) -> np.ndarray:
    """E-mail domains compared case-insensitively ("" when missing)."""
    return domains.astype("string").fillna("").str.lower().to_numpy(dtype=object)


def _owners(dom: np.ndarray, active: np.ndarray, memb: np.ndarray, core: np.ndarray, flagged: np.ndarray,
            min_accounts: int, min_share: float) -> pd.Series:
    """:func:`domain_owners` on domain keys (:func:`domain_keys`)."""
    ok = active & (dom != "")
    if not ok.any() or not len(flagged) or min_share > 1:
        return pd.Series({}, dtype=np.int64)
    d = pd.DataFrame({"d": dom[ok], "c": np.where(core[ok] & np.isin(memb[ok], flagged), memb[ok], -1)})
    total = d.groupby("d").size()
    by = d[d["c"] >= 0].groupby(["d", "c"]).size().rename("k").reset_index()
    by = by.sort_values(["d", "k", "c"], ascending=[True, False, True]).drop_duplicates("d")
    by = by[(by["k"] >= min_accounts) & (by["k"] >= min_share * total.reindex(by["d"]).to_numpy())]
    return pd.Series(by["c"].to_numpy(np.int64), index=by["d"].to_numpy(), dtype=np.int64)


def attach_domain_sleepers(domains: pd.Series, idle: np.ndarray, memb: np.ndarray, core: np.ndarray,
                           flagged: np.ndarray, min_accounts: int, min_share: float) -> np.ndarray:
    """The flagged community each idle, lone account joins by its e-mail domain (-1: none).

    A campaign's unused accounts paid with ordinary cards, one each, leave no
    link at all; when they were registered on the campaign's own domain
    (:func:`domain_owners`), that domain is the evidence. Measured on the
    generated worlds at scale 0.1 (about 30 domains owned by a flagged
    cluster on each, never shared with legitimate accounts there): 18-24 of the 67-74
    unlinked campaign accounts of the evasive worlds joined, and no
    legitimate account on any of the eight quality worlds; the validation
    world's campaigns use webmail and gain nothing.

    >>> d = pd.Series(["x.io"] * 6 + ["gmail.com"])
    >>> memb, core = np.array([0, 0, 0, 0, 0, 1, 2]), np.array([True] * 5 + [False] * 2)
    >>> idle = np.array([False] * 5 + [True, True])
    >>> attach_domain_sleepers(d, idle, memb, core, np.array([0]), 3, 0.8).tolist()
    [-1, -1, -1, -1, -1, 0, -1]
    """
    out = np.full(len(memb), -1, np.int64)
    dom = domain_keys(domains)
    owners = _owners(dom, ~idle, memb, core, flagged, min_accounts, min_share)
    if not len(owners):
        return out
    alone = idle & (np.bincount(memb, minlength=int(memb.max()) + 1)[memb] == 1)
    at = pd.Index(owners.index).get_indexer(dom)
    pick = alone & (at >= 0)
    out[pick] = owners.to_numpy()[at[pick]]
    return out


def _detect_and_score(x: _Inputs, cfg: Config, initial: np.ndarray | None = None,
                      with_reasons: bool = True, say: Callable[[str], None] = say_nothing) -> tuple:
    """Partition, score, merge flagged pools of one operation, score again, attach sleepers.

    ``initial`` warm-starts the first Leiden pass (see :func:`detect`);
    ``with_reasons`` False skips the plain-words reasons (calibration runs).
    Returns (first partition, membership, clusters, core mask, strengths, operation per community,
    number of merged communities, sleeper mask, accounts of loose blocks that left flagged clusters:
    :func:`_loose_blocks_apart`). Sleepers (:func:`attach_sleepers`) count as core
    members of their cluster and in its ``size``, but not in its signals or ``core_size``.
    """
    cc, sc = cfg.communities, cfg.scoring
    say(f"Leiden on {len(x.nodes):,} accounts, {len(x.src):,} links")
    part = detect(len(x.nodes), x.src, x.dst, x.w, resolution=cc.resolution, iterations=cc.iterations,
                  seed=cc.seed, split_min_size=cc.split_min_size, split_conductance=cc.split_conductance,
                  split_depth=cc.split_depth, initial=initial)
    memb = part.membership
    say("scoring clusters")
    clusters, core, strength, tied = _score_partition(x, memb, sc, with_reasons=with_reasons)
    say("operations")
    ops = operations(x, memb, cc.operation_resolution, cc.seed)
    flagged = clusters.loc[clusters["flagged"], "community_id"].to_numpy()
    groups = _same_campaign(x, memb, core, flagged, ops, cc.operation_min_overlap)
    merged = 0
    pooled = fixed_core = None
    if len(flagged):
        remap = np.arange(len(ops))
        remap[flagged] = groups
        merged = int((groups != flagged).sum())
        if merged:
            say(f"scoring again with {merged} pools merged into their operations")
            pooled = np.isin(memb, flagged[groups != flagged]) | np.isin(memb, groups[groups != flagged])
            fixed_core = tied
            memb = _renumber(remap[memb])
            clusters, core, strength, _ = _score_partition(x, memb, sc, fixed=pooled, fixed_core=fixed_core,
                                                           with_reasons=with_reasons)
            ops = operations(x, memb, cc.operation_resolution, cc.seed)
    apart = 0
    if sc.judge_blocks and clusters["flagged"].any():
        moved = _loose_blocks_apart(x, memb, clusters, core, cfg, pooled, fixed_core)
        if moved is not None:
            say("scoring again with loose blocks of flagged clusters apart")
            memb, apart = moved
            clusters, core, strength, _ = _score_partition(x, memb, sc, fixed=pooled, fixed_core=fixed_core,
                                                           with_reasons=with_reasons)
            ops = operations(x, memb, cc.operation_resolution, cc.seed)
    idle = x.feats["requests"].to_numpy() == 0
    flagged = clusters.loc[clusters["flagged"], "community_id"].to_numpy()
    to = attach_sleepers(x.idle_edges, idle, memb, core, flagged, sc.sleeper_share, sc.sleeper_links)
    if "email_domain" in x.feats:  # no link at all: the campaign's own e-mail domain
        by_domain = attach_domain_sleepers(x.feats["email_domain"].reset_index(drop=True), idle, memb, core,
                                           flagged, sc.sleeper_domain_accounts, sc.sleeper_domain_share)
        to = np.where(to >= 0, to, by_domain)
    sleeper = to >= 0
    if sleeper.any():
        # sleepers join outside the signals (they sent nothing): every role and score stays, only the
        # sizes change, and the ids (by decreasing size) are renumbered
        moved = memb.copy()
        moved[sleeper] = to[sleeper]
        memb = _renumber(moved)
        new_id = np.full(int(moved.max()) + 1, -1, np.int64)
        new_id[moved] = memb
        clusters = clusters.assign(community_id=new_id[clusters["community_id"].to_numpy()])
        clusters["size"] = np.bincount(memb)[clusters["community_id"].to_numpy()]
        clusters = clusters.sort_values(["score", "size", "community_id"], ascending=[False, False, True],
                                        ignore_index=True)
        ops = operations(x, memb, cc.operation_resolution, cc.seed)
        core = core | sleeper
    return part, memb, clusters, core, strength, ops, merged, sleeper, apart


def _loose_blocks_apart(x: _Inputs, memb: np.ndarray, clusters: pd.DataFrame, core: np.ndarray, cfg: Config,
                        fixed: np.ndarray | None, fixed_core: np.ndarray | None) -> tuple[np.ndarray, int] | None:
    """The membership with every loose block of a flagged cluster (:func:`loose_blocks`) that is not
    flagged when scored alone made a community of its own, and how many accounts left; None when
    there is none.

    The rest of the cluster is then scored without it: a group glued to a campaign by a few shared
    exits neither gets the campaign's flag nor dilutes its signals.
    """
    sc, cc = cfg.scoring, cfg.communities
    who = core & np.isin(memb, clusters.loc[clusters["flagged"], "community_id"].to_numpy())
    specific = x.edges[[f"w_{l}" for l in SPECIFIC_LAYERS]].to_numpy(np.float64).sum(axis=1)
    blocks = loose_blocks(x.src, x.dst, x.w, specific, memb, who, sc.flag_min_size, cc.min_weight,
                          cc.split_conductance)
    inb = blocks >= 0
    if not inb.any():
        return None
    alone = memb.copy()
    alone[inb] = int(memb.max()) + 1 + np.unique(blocks[inb], return_inverse=True)[1]
    trial, _, _, _ = _score_partition(x, alone, sc, fixed=fixed, fixed_core=fixed_core, with_reasons=False)
    leave = inb & ~np.isin(alone, trial.loc[trial["flagged"], "community_id"].to_numpy())
    return (_renumber(np.where(leave, alone, memb)), int(leave.sum())) if leave.any() else None


def flagged_nodes(memb: np.ndarray, clusters: pd.DataFrame, core: np.ndarray) -> np.ndarray:
    """Node ids of the core members of flagged clusters."""
    return np.flatnonzero(np.isin(memb, clusters.loc[clusters["flagged"], "community_id"].to_numpy()) & core)


#: a graph with at least this many edges in use gets half of its calibration runs done by a second
#: process (on a machine with 2+ cores), which reads the graph while the main run detects communities
CALIBRATION_WORKER_EDGES = 100_000

_WORKER_X: _Inputs | None = None  # the calibration worker's own copy of the inputs


def _worker_load(ws_path: str, cfg: Config) -> None:
    """Calibration worker initializer: read what scoring needs (while the parent detects communities)."""
    global _WORKER_X
    _WORKER_X = _load(Workspace(ws_path), cfg.combine, cfg.communities.min_weight)


def _worker_layers_off(cfg: Config, layers: list[str], flagged: np.ndarray,
                       initial: np.ndarray | None) -> dict[str, dict[str, int]]:
    """Calibration worker task: :func:`layer_off` for each of ``layers`` on the worker's inputs."""
    assert _WORKER_X is not None, "the calibration worker did not load its inputs"
    return {layer: layer_off(_WORKER_X, cfg, layer, flagged, initial) for layer in layers}


def calibration_worker(ws: Workspace, cfg: Config, edges: int) -> ProcessPoolExecutor | None:
    """A second process for :func:`calibration`, started now so it reads the graph while detection runs.

    None when calibration is off, the graph has fewer than
    :data:`CALIBRATION_WORKER_EDGES` edges in use (starting a process would
    cost more than it saves), the process may use only one core, or no
    process can start. The caller shuts it down.
    """
    if not cfg.communities.calibration or edges < CALIBRATION_WORKER_EDGES or usable_cores() < 2:
        return None
    return spawn_pool(1, _worker_load, (str(ws.path), cfg), wait=False)


def layer_off(x: _Inputs, cfg: Config, layer: str, flagged: np.ndarray,
              initial: np.ndarray | None = None) -> dict[str, int]:
    """Flags with ``layer`` switched off (``[combine] <layer> = 0``), compared with ``flagged``.

    Returns ``flagged_without``, ``kept`` (still flagged), ``lost`` (no
    longer), ``gained`` (newly flagged). ``initial`` warm-starts detection
    (see :func:`calibration`).
    """
    off = dataclasses.replace(cfg, combine=dataclasses.replace(cfg.combine, **{layer: 0.0}))
    # switching a layer off only lowers combined weights, so the edges in use stay a superset
    xo = _recombined(x, off.combine, cfg.communities.min_weight)
    if initial is not None:  # one Leiden iteration from the run's partition (see calibration)
        off = dataclasses.replace(off, communities=dataclasses.replace(off.communities, iterations=1))
    _, memb, clusters, core, *_ = _detect_and_score(xo, off, initial=initial, with_reasons=False)
    now = flagged_nodes(memb, clusters, core)
    return {"flagged_without": int(len(now)), "kept": int(np.isin(flagged, now).sum()),
            "lost": int((~np.isin(flagged, now)).sum()), "gained": int((~np.isin(now, flagged)).sum())}


def calibration(x: _Inputs, cfg: Config, flagged: np.ndarray, initial: np.ndarray | None = None,
                worker: ProcessPoolExecutor | None = None) -> dict[str, Any]:
    """Per layer: its edges, how much of the flagged set it supports, and the flags without it.

    ``supports`` is the share of flagged accounts with at least one edge of
    that layer to another flagged account of the same cluster. The layer is
    then switched off, communities are detected and scored again, and the
    flags are compared (:func:`layer_off`). ``initial``
    (the run's own partition) warm-starts each detection: Leiden still moves
    every account whose ties changed, and its refinement splits communities
    that lost their connections, but accounts with unchanged ties are not
    reshuffled, so one Leiden iteration is enough (measured on a generated
    0.1 world: flags within 0-6 accounts of five cold iterations per layer,
    for 60% of the time; Leiden's later iterations barely change modularity).

    ``worker`` (see :func:`calibration_worker`) does the first half of the
    layer-off runs meanwhile; if it fails, they are done here. Every run is
    deterministic, so the report is the same either way.
    """
    flagged_set = np.zeros(len(x.nodes), bool)
    flagged_set[flagged] = True
    on = [layer for layer in LAYERS if getattr(cfg.combine, layer)]
    there = on[:len(on) // 2] if worker is not None else []
    fut = None
    if there:
        try:
            fut = worker.submit(_worker_layers_off, cfg, there, flagged, initial)
        except (BrokenProcessPool, RuntimeError, OSError):
            there = []
    runs = {layer: layer_off(x, cfg, layer, flagged, initial) for layer in on if layer not in there}
    if fut is not None:
        try:
            runs.update(fut.result())
        except (BrokenProcessPool, RuntimeError, OSError, MemoryError):  # the worker died: do its share here
            runs.update({layer: layer_off(x, cfg, layer, flagged, initial) for layer in there})
    out: dict[str, Any] = {}
    for layer in LAYERS:
        col = x.edges[f"w_{layer}"].to_numpy() > 0
        inside = col & flagged_set[x.src] & flagged_set[x.dst]
        sup = np.zeros(len(x.nodes), bool)
        sup[x.src[inside]] = True
        sup[x.dst[inside]] = True
        out[layer] = {"edges": int(col.sum()), "supports": round(float(sup[flagged].mean()), 4)
                      if len(flagged) else 0.0, **runs.get(layer, {})}
    return out


def calibration_lines(cal: dict[str, Any], flagged: int) -> list[str]:
    """The calibration report as a table for the terminal."""
    out = [f"calibration: each layer's support of the {flagged:,} flagged accounts, and the flags without it",
           f"  {'layer':<11} {'edges':>10} {'supports':>9} {'flagged without':>16} {'lost':>6} {'gained':>7}"]
    for layer, r in cal.items():
        out.append(f"  {layer:<11} {r['edges']:>10,} {r['supports']:>9.1%} "
                   f"{r.get('flagged_without', '-'):>16} {r.get('lost', '-'):>6} {r.get('gained', '-'):>7}")
    return out


def communities(workspace: str | os.PathLike[str] | Workspace, *, config: Config | None = None,
                known_bad: list[str] | None = None, quiet: bool = False) -> CommunitiesResult:
    """Run community detection and scoring on a built workspace.

    After the first partition is scored, flagged communities that fall in the
    same *operation* (see :func:`operations`) are merged into one community
    and everything is scored again: a campaign run as many worker pools, each
    with its own proxies and schedule, is reported whole. Members of merged
    pools keep the core/fringe role they had in their own pool (a small pool
    merged with a busy one is not pushed to the fringe by the busy pool's
    link weights). Unflagged communities are never merged.

    Investigations that start from known-bad accounts (``known_bad`` ids, or
    the workspace's ``known_bad`` table) get a personalised PageRank from
    them: ``seed_score`` per account and ``seed_mass`` per cluster (see
    :mod:`acctgraph.seeds`); clusters holding a seed are marked ``seeded``.

    Every run ends with a calibration report (:func:`calibration`; off with
    ``[communities] calibration = false``): per layer, its edges, the share
    of flagged accounts it supports, and how the flags change without it.

    Writes ``communities.parquet`` (every account), ``clusters.csv`` (clusters
    of 2+ accounts, by score) and ``communities.json`` (parameters, counts,
    modularity, the calibration report).
    """
    t0 = time.perf_counter()
    cfg = config or Config()
    if cfg.scoring.core_reference not in CORE_REFERENCES:
        raise ConfigError(f"unknown [scoring] core_reference {cfg.scoring.core_reference!r}; "
                          f"valid: {', '.join(CORE_REFERENCES)}")
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    if not ws.path.is_dir():
        ws.read_marker("build")  # says which command to run first
    map_large_allocations()  # freed arrays go back to the system (acctgraph.memory)
    with ws.lock("acctgraph communities"), steps("communities", quiet=quiet) as say:
        return _communities(ws, cfg, known_bad, t0, say)


def _communities(ws: Workspace, cfg: Config, known_bad: list[str] | None, t0: float,
                 say: Callable[[str], None]) -> CommunitiesResult:
    cc = cfg.communities
    build_json = ws.read_marker("build")
    ws.invalidate("communities")  # communities.json (written last) means the outputs are complete
    say("reading the graph")
    x = _load(ws, cfg.combine, cc.min_weight)
    worker = calibration_worker(ws, cfg, len(x.src))
    done = False
    try:
        result = _detect_and_write(ws, cfg, known_bad, t0, build_json, x, worker, say)
        done = True
        return result
    finally:
        if worker is not None:
            # after a run the worker is idle and joins at once; a pool left running until exit makes
            # CPython <= 3.11's exit hook write to a closed pipe ("Exception ignored ... Bad file
            # descriptor", cpython#125451). On an error, do not wait for a worker still loading.
            worker.shutdown(wait=done, cancel_futures=True)


def _detect_and_write(ws: Workspace, cfg: Config, known_bad: list[str] | None, t0: float, build_json: dict,
                      x: _Inputs, worker: ProcessPoolExecutor | None,
                      say: Callable[[str], None] = say_nothing) -> CommunitiesResult:
    cc, sc = cfg.communities, cfg.scoring
    part, memb, clusters, core, strength, ops, merged, sleeper, apart = _detect_and_score(x, cfg, say=say)
    t_detect = time.perf_counter() - t0
    clusters.insert(1, "operation_id", ops[clusters["community_id"].to_numpy()])
    seeds = _seed_nodes(ws, x.nodes, known_bad)
    say("seed expansion" if len(seeds) else "writing clusters")
    ppr = personalised_pagerank(len(x.nodes), x.src, x.dst, x.w, seeds)
    mass = pd.Series(ppr).groupby(memb).sum()
    seeded = pd.Series(np.isin(np.arange(len(memb)), seeds)).groupby(memb).any()
    clusters["seed_mass"] = np.round(mass.reindex(clusters["community_id"]).fillna(0).to_numpy(), 9)
    clusters["seeded"] = seeded.reindex(clusters["community_id"]).fillna(False).to_numpy(bool)
    clusters["sleepers"] = np.bincount(memb[sleeper], minlength=len(ops))[clusters["community_id"].to_numpy()]
    cols = (["community_id", "operation_id", "size", "core_size", "sleepers", "score", "conduct", "flagged", "seeded",
             "seed_mass", "reasons"] + list(SIGNALS) + ["extraction_own"] + [f"contrib_{s}" for s in SIGNALS])
    clusters = clusters[cols]

    # Fringe accounts of flagged communities (attached by a shared exit or a public template, with a
    # negligible share of the community's typical link weight) are detached into singletons, and
    # the community they hung on is kept in ``attached_to`` for the analyst.
    flagged_ids = clusters.loc[clusters["flagged"], "community_id"].to_numpy()
    in_flagged = np.isin(memb, flagged_ids)
    fringe = in_flagged & ~core
    attached = np.where(fringe, memb, -1)
    memb = memb.copy()
    if fringe.any():
        memb[fringe] = memb.max() + 1 + np.arange(int(fringe.sum()))
    ops = np.concatenate([ops, np.full(int(fringe.sum()), -1)]) if fringe.any() else ops
    is_flagged = clusters["flagged"].to_numpy()
    clusters.loc[is_flagged, "size"] = clusters.loc[is_flagged, "core_size"] + clusters.loc[is_flagged, "sleepers"]
    m = pd.DataFrame({"node": x.nodes["node"], "account_id": x.nodes["account_id"],
                      "community_id": memb, "operation_id": ops[memb], "strength_in": np.round(strength, 9),
                      "attached_to": attached, "seed_score": np.round(ppr, 12),
                      "known_bad": np.isin(x.nodes["node"].to_numpy(), seeds)})
    m["role"] = np.where(in_flagged, np.where(fringe, "fringe", np.where(sleeper, "sleeper", "core")), "")
    m["flagged"] = in_flagged & core
    write_parquet_atomic(ws.communities_path, pa.Table.from_pandas(m, preserve_index=False))
    write_csv_safe(clusters, ws.clusters_path)
    sizes = np.bincount(memb) if len(memb) else np.zeros(0, dtype=np.int64)
    modularity = _modularity(x, memb)
    t_cal = time.perf_counter()
    if cc.calibration:
        say("calibration: the flags with each layer switched off")
    cal = (calibration(x, cfg, np.flatnonzero(m["flagged"].to_numpy()), initial=part.membership,
                       worker=worker)
           if cc.calibration else {})
    t_cal = time.perf_counter() - t_cal
    stats = {"communities": int(len(sizes)), "clusters": int((sizes >= 2).sum()),
             "largest": int(sizes.max()) if len(sizes) else 0, "modularity": round(modularity, 6),
             "modularity_first_pass": round(part.modularity, 6),
             "splits": part.splits, "leiden_runs": part.leiden_runs, "merged_into_operations": merged,
             "flagged_clusters": int(clusters["flagged"].sum()), "flagged_accounts": int(m["flagged"].sum()),
             "fringe_accounts": int(fringe.sum()), "sleeper_accounts": int(sleeper.sum()),
             "loose_block_accounts": apart,
             "known_bad_seeds": int(len(seeds)),
             "calibration": cal,
             "seconds": {"detect": round(t_detect, 3), "calibration": round(t_cal, 3),
                         "total": round(time.perf_counter() - t0, 3)}}
    write_json_atomic(ws.marker("communities"), {
        "artifact_version": ARTIFACT_VERSION, "acctgraph_version": __version__,
        UPSTREAM_KEY: ws.upstream("communities"), "inputs": build_json.get("inputs", {}),
        "config": {"communities": dataclasses.asdict(cc), "scoring": dataclasses.asdict(sc),
                   "combine": dataclasses.asdict(cfg.combine)},
        "objective": "modularity (igraph Leiden) + conductance-guided split pass + operation merge of flagged"
                     + (" + loose blocks of flagged judged alone" if sc.judge_blocks else ""),
        **{k: v for k, v in stats.items() if k != "seconds"}, "split_log": part.log[:200],
    })
    return CommunitiesResult(str(ws.path), m, clusters, part, stats)


def _modularity(x: _Inputs, memb: np.ndarray) -> float:
    import igraph as ig

    if not len(x.src):
        return 0.0
    g = ig.Graph(n=len(memb), edges=np.column_stack([x.src, x.dst]))
    return float(g.modularity(memb.tolist(), weights=x.w.tolist()))
