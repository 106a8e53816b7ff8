"""Distillation campaigns: many accounts run by one operator to harvest model outputs.

Modelled on public reports of distillation attacks: systematic
capability-extraction prompts (reasoning traces, agentic tool use, coding,
rewritten sensitive questions), traffic through commercial VPN exits and
residential-proxy pools, shared or mass-produced cards, batch sign-ups with
claimed countries that do not match the working hours, synchronised,
load-balanced bursts from worker pools, and a switch to the newly released
model within a day. Every property has an :class:`~acctgraph.synth.config.Evasion`
knob that hides it.

Example:
    >>> from acctgraph.synth.config import CampaignConfig
    >>> CampaignConfig(name="x", accounts=10, requests=100).evasion.proxy_rotation
    False
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from acctgraph.synth import net, timing, vocab
from acctgraph.synth.config import CampaignConfig
from acctgraph.synth.groups import (
    HumanGroup, Payments, World, allocate, empty_requests, instrument_ids, pick_countries, tz_hours,
)
from acctgraph.synth.text import Style


@dataclass
class CampaignGroup(HumanGroup):
    """A campaign's accounts. Default timing: bursts of worker pools in shared minutes."""

    cfg: CampaignConfig | None = None
    rotate: bool = False
    worker: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    slot_h: np.ndarray = field(default_factory=lambda: np.zeros(0))          # all workers' slots, grouped
    slot_lo: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # per account: first usable slot
    slot_n: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))   # per account: usable slots
    bursts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))   # per account: bursts sent
    phase: np.ndarray = field(default_factory=lambda: np.zeros(0))
    stagger_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    interval: np.ndarray = field(default_factory=lambda: np.zeros(0))
    blitz: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))    # per account: 0/1
    blitz_h: np.ndarray = field(default_factory=lambda: np.zeros(0))            # per worker

    def session_ips(self, a: np.ndarray, t_h: np.ndarray, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray]:
        if not self.rotate:
            return super().session_ips(a, t_h, rng)
        k = len(a)
        lo = self.w.net.home_v4(pick_countries(k, rng), rng)
        reuse = rng.random(k) < 0.03  # exits that are also ordinary people's home connections
        if reuse.any() and len(self.w.home_pool_lo):
            lo[reuse] = self.w.home_pool_lo[rng.integers(0, len(self.w.home_pool_lo), size=int(reuse.sum()))]
        return np.zeros(k, dtype=np.uint64), lo

    def requests(self, idx: np.ndarray, rng: np.random.Generator) -> dict[str, object]:
        assert self.cfg is not None
        if self.cfg.evasion.human_timing:
            return super().requests(idx, rng)
        if self.n_req[idx].sum() == 0:
            return empty_requests()
        # regular bursts, evenly spread over each account's usable slots of its worker pool, plus one
        # "release blitz" burst right after the new model appears (accounts active at that moment)
        b = self.bursts[idx]
        tot = b + self.blitz[idx]
        burst_acct = np.repeat(idx, tot)
        k = timing.position_in_group(burst_acct)
        bb = self.bursts[burst_acct]
        has = self.blitz[burst_acct]
        is_blitz = (k == 0) & (has == 1)
        r = k - has  # index among the regular bursts
        pos = self.slot_lo[burst_acct] + np.floor((r + self.phase[burst_acct]) * self.slot_n[burst_acct]
                                                  / np.maximum(bb, 1)).astype(np.int64)
        pos = np.clip(pos, 0, len(self.slot_h) - 1)
        t_burst = np.where(is_blitz, self.blitz_h[self.worker[burst_acct]], self.slot_h[pos]) \
            + self.stagger_s[burst_acct] / 3600.0
        n = self.n_req[burst_acct]
        tb = tot[np.repeat(np.arange(len(idx)), tot)]
        per_burst = n // tb + (k < n % tb)
        req_burst = np.repeat(np.arange(len(burst_acct)), per_burst)
        j = timing.position_in_group(req_burst)
        acct = burst_acct[req_burst]
        step = self.interval[acct] * (1.0 + 0.04 * rng.standard_normal(len(acct)))
        ts_h = np.minimum(t_burst[req_burst] + (j * step + np.abs(rng.normal(0, 0.4, len(acct)))) / 3600.0,
                          self.w.cal.hours - 1e-4)
        hi_b, lo_b = self.session_ips(burst_acct, t_burst, rng)
        ua_b = np.where(rng.random(len(burst_acct)) < self.p_ua2[burst_acct], self.ua2[burst_acct],
                        self.ua1[burst_acct])
        fam = self.choose_families(acct, ts_h, rng)
        return self.finish(acct, ts_h, hi_b[req_burst], lo_b[req_burst], ua_b[req_burst], fam,
                           np.zeros(len(acct)), rng)


def build_campaign(w: World, c: CampaignConfig, index: int, rng: np.random.Generator) -> CampaignGroup:
    """All accounts, payments and behaviour of one campaign."""
    ev = c.evasion
    cal = w.cal
    n = c.accounts
    g = CampaignGroup(w=w, key=c.name, n=n, campaign=c.name, label_names=[c.name], cfg=c,
                      rotate=ev.proxy_rotation)
    g.country = pick_countries(n, rng, c.claimed_countries,
                               p=rng.dirichlet(np.full(len(c.claimed_countries), 2.0)))
    g.tz = tz_hours(g.country, rng)
    start_h = c.start_day * 24.0
    end_h = float(cal.hours)
    # ---------------------------------------------------------- creation
    if ev.spread_creation:
        hp = np.asarray(timing.HOURLY["personal"])
        day = rng.uniform(-150.0, (start_h + 0.6 * (end_h - start_h)) / 24.0, n)
        g.created_h = np.floor(day) * 24 + rng.choice(24, size=n, p=hp / hp.sum()) + rng.random(n) - g.tz
    else:
        nb = min(c.creation_batches, n)
        first = start_h - rng.uniform(6.0, 24.0 * 12)
        later = np.sort(rng.uniform(start_h - 24.0 * 20, start_h + 0.6 * (end_h - start_h), nb - 1))
        t_batch = np.r_[first, later]
        size = rng.multinomial(n - nb, rng.dirichlet(np.full(nb, 1.5))) + 1
        size[0] += max(0, n // 3 - size[0])  # the opening batch is the big one
        size = _trim(size, n)
        batch = np.repeat(np.arange(nb), size)
        # operators script the sign-ups in their own working hours
        t_batch = _to_operator_hours(t_batch, c.operator_utc_offset)
        within = rng.random(n) * c.batch_hours
        g.created_h = t_batch[batch] + within
    g.created_h = np.minimum(g.created_h, end_h - 2.0)
    lo = np.maximum(g.created_h + rng.uniform(0.5, 30.0, n), start_h)
    hi = np.full(n, end_h)
    retire = rng.random(n) < 0.12  # banned or abandoned accounts
    hi[retire] = lo[retire] + rng.uniform(0.15, 0.9, int(retire.sum())) * (end_h - lo[retire])
    lo = np.minimum(lo, end_h - 1.0)
    hi = np.maximum(hi, lo + 0.5)
    g.active_end_h = np.minimum(hi, end_h)
    # ---------------------------------------------------------- identity
    g.email = _emails(w, c, index, n, rng)
    g.worker = rng.integers(0, c.workers, size=n)
    if ev.mimic_ua:
        r = rng.random(n)
        g.ua1 = np.where(r < 0.75, w.browser_uas[rng.integers(0, len(w.browser_uas), n)],
                         np.where(r < 0.95, w.mobile_uas[rng.integers(0, len(w.mobile_uas), n)],
                                  w.sdk_uas[rng.integers(0, len(w.sdk_uas), n)]))
        g.ua2 = w.browser_uas[rng.integers(0, len(w.browser_uas), n)]
        g.p_ua2 = np.where(rng.random(n) < 0.3, 0.3, 0.0)
    else:
        uas = w.uas.idxs(c.user_agents)
        g.ua1 = uas[g.worker % len(uas)]
        g.ua2 = uas[rng.integers(0, len(uas), n)]
        g.p_ua2 = np.full(n, 0.05)
    # ---------------------------------------------------------- network
    _addresses(g, c, rng)
    # ---------------------------------------------------------- models
    rel = cal.release_h
    g.p_small = np.full(n, 0.04)
    g.blitz_h = np.zeros(c.workers)
    if ev.slow_switch:
        g.adopt_h = rel + rng.uniform(0.0, 24.0 * 7, n)
        g.p_new = rng.uniform(0.6, 0.9, n)
    else:
        # each worker pool is re-pointed at the new model a few hours after release
        g.blitz_h = np.floor((rel + rng.uniform(1.0, 18.0, c.workers)) * 60.0) / 60.0
        g.adopt_h = g.blitz_h[g.worker] - rng.uniform(0.0, 1.0, n)
        g.p_new = np.full(n, 0.97)
    # ---------------------------------------------------------- prompts
    g.families = list(c.templates)
    wts = rng.uniform(0.5, 1.5, len(g.families))
    g.family_p = wts / wts.sum()
    g.fav, g.p_fav = np.zeros(n, np.int64), 0.0
    if ev.paraphrase:
        g.style = Style(synonyms=True, preamble=vocab.PREAMBLES, pre=vocab.PRE_FORMAL + vocab.PRE_CASUAL,
                        post=vocab.POST_FORMAL + vocab.POST_CASUAL, lower_share=0.08, skew=1.0)
    else:
        from acctgraph.synth.text import bank
        variants = {}
        for f in g.families:
            nv = len(bank().families[f])
            variants[f] = tuple(int(v) for v in rng.choice(nv, size=min(nv, int(rng.integers(1, 3))),
                                                           replace=False))
        g.style = Style(synonyms=False, variants=variants,
                        preamble=(vocab.PREAMBLES[int(rng.integers(0, len(vocab.PREAMBLES)))],), skew=1.0)
    g.out_median, g.out_sigma, g.context_tokens = float(c.output_tokens), 0.45, 0.0
    # ---------------------------------------------------------- volume and timing
    weight = (hi - lo) * rng.lognormal(0.0, 0.3, n) * (rng.random(n) > 0.03)
    g.n_req = allocate(c.requests, weight, rng)
    if ev.human_timing:
        g.profiles, g.profile = ["personal", "night"], (rng.random(n) < 0.2).astype(np.int64)
        g.session_len, g.gap_median_s = max(2.0, c.burst_requests / 3.0), c.interval_seconds * 6
        g.active_start_h = lo
        if not ev.slow_switch:
            at = g.adopt_h + rng.uniform(0.0, 2.0, n)
            g.forced_h = np.where((lo <= at) & (at < g.active_end_h), at, np.nan)
    else:
        _schedule(g, c, lo, hi, rng)
    g.payments = _payments(w, g, c, rng)
    g.init_arrays()
    return g


def _trim(size: np.ndarray, n: int) -> np.ndarray:
    size = size.copy()
    while size.sum() > n:
        i = int(np.argmax(size))
        size[i] -= min(size[i] - 1, size.sum() - n)
    return size


def _to_operator_hours(t: np.ndarray, tz: float) -> np.ndarray:
    """Move batch start times into the operators' working day (10:00-22:00 local)."""
    loc = t + tz
    hod = loc % 24
    shift = np.where(hod < 10, 10 - hod, np.where(hod > 22, 34 - hod, 0.0))
    return t + shift


def _emails(w: World, c: CampaignConfig, index: int, n: int, rng: np.random.Generator) -> np.ndarray:
    pool = vocab.domain_pool(6_000)[3_000 + 300 * (index % 10):][:300]
    own = w.domains.idxs([pool[int(i)] for i in rng.choice(len(pool), size=c.own_domains, replace=False)])
    top = w.webmail[:4]
    out = own[rng.integers(0, len(own), n)]
    r = rng.random(n)
    web = r < c.webmail_share
    out[web] = top[rng.choice(4, size=int(web.sum()), p=[0.7, 0.15, 0.1, 0.05])]
    alias = (r >= c.webmail_share) & (r < c.webmail_share + 0.05)
    out[alias] = w.alias_domains[rng.integers(0, len(w.alias_domains), int(alias.sum()))]
    return out


def _addresses(g: CampaignGroup, c: CampaignConfig, rng: np.random.Generator) -> None:
    w, n = g.w, g.n
    workers = c.workers
    pools, start, size = [], np.zeros(workers, np.int64), np.zeros(workers, np.int64)
    providers = rng.choice(len(net.VPN_PROVIDERS), size=2, replace=False)
    vpn_pool = np.concatenate([w.net.vpn_exits[net.VPN_PROVIDERS[int(p)]] for p in providers])
    if c.proxy == "vpn":
        use_vpn = np.ones(workers, bool)
    elif c.proxy == "residential":
        use_vpn = np.zeros(workers, bool)
    else:
        use_vpn = rng.random(workers) < 0.5
    accounts_per_worker = np.bincount(g.worker, minlength=workers)
    off = 0
    for k in range(workers):  # one address pool per worker (a loop over workers, not accounts)
        if use_vpn[k]:
            p = vpn_pool[rng.choice(len(vpn_pool), size=min(len(vpn_pool), max(4, len(vpn_pool) // 3)),
                                    replace=False)]
        else:
            m = max(3, int(round(accounts_per_worker[k] * c.ips_per_account)))
            p = _residential_pool(w, m, rng)
        pools.append(p)
        start[k], size[k] = off, len(p)
        off += len(p)
    g.pool = np.concatenate(pools)
    g.pool_start, g.pool_len = start[g.worker], size[g.worker]
    g.p_pool = np.ones(n)
    g.home_hi = np.zeros(n, np.uint64)
    g.home_lo = g.pool[g.pool_start]
    g.p_mobile = np.zeros(n)


def _residential_pool(w: World, m: int, rng: np.random.Generator) -> np.ndarray:
    """A proxy provider's slice: residential addresses packed into relatively few /24s."""
    n24 = max(1, m // 6)
    prefixes = w.net.home_v4(pick_countries(n24, rng), rng) & np.uint64(0xFFFFFF00)
    out = prefixes[rng.integers(0, n24, m)] | rng.integers(1, 255, m).astype(np.uint64)
    reuse = rng.random(m) < 0.03
    if reuse.any() and len(w.home_pool_lo):
        out[reuse] = w.home_pool_lo[rng.integers(0, len(w.home_pool_lo), int(reuse.sum()))]
    return out


def _schedule(g: CampaignGroup, c: CampaignConfig, lo: np.ndarray, hi: np.ndarray,
              rng: np.random.Generator) -> None:
    """Worker-pool slots (cron-like, operator hours) and each account's share of them."""
    w, n = g.w, g.n
    m = np.maximum(1, np.round(c.burst_requests * rng.uniform(0.75, 1.25, n))).astype(np.int64)
    need = np.ceil(g.n_req / m).astype(np.int64)
    span_h = float(w.cal.hours) - c.start_day * 24.0
    max_need = np.zeros(c.workers, np.int64)
    np.maximum.at(max_need, g.worker, need)
    n_slots = np.ceil(max_need * 1.5).astype(np.int64) + 2
    slot_worker = np.repeat(np.arange(c.workers), n_slots)
    tz = c.operator_utc_offset
    lo_w = np.full(len(slot_worker), c.start_day * 24.0)
    t = w.sampler("operator").sample(lo_w + tz, lo_w + span_h + tz, rng) - tz
    t = np.floor(t * 60.0) / 60.0  # cron jobs start on the minute
    order = np.lexsort((t, slot_worker))
    g.slot_h = t[order]
    first = np.cumsum(n_slots) - n_slots
    # usable slots of each account: those of its worker inside its active range
    key = slot_worker[order] * 1e6 + g.slot_h
    a_lo = np.searchsorted(key, g.worker * 1e6 + lo, side="left")
    a_hi = np.searchsorted(key, g.worker * 1e6 + hi, side="left")
    a_lo = np.maximum(a_lo, first[g.worker])
    a_hi = np.minimum(a_hi, first[g.worker] + n_slots[g.worker])
    g.slot_lo = a_lo
    g.slot_n = np.maximum(a_hi - a_lo, 0)
    g.bursts = np.minimum(need, g.slot_n)
    if not c.evasion.slow_switch:
        tb = g.blitz_h[g.worker]
        g.blitz = ((lo <= tb) & (tb < hi) & (g.n_req > 0)).astype(np.int64)
    else:
        g.blitz = np.zeros(n, np.int64)
    g.n_req = np.where(g.bursts + g.blitz > 0, g.n_req, 0)
    g.phase = rng.random(n)
    g.stagger_s = rng.uniform(0.0, 30.0, n)  # the dispatcher starts every thread of a pool within seconds
    g.interval = c.interval_seconds * rng.uniform(0.8, 1.2, c.workers)[g.worker]


def _payments(w: World, g: CampaignGroup, c: CampaignConfig, rng: np.random.Generator) -> Payments:
    n = g.n
    cal_h = float(w.cal.hours)
    paid = np.flatnonzero(rng.random(n) >= c.free_share)
    k = len(paid)
    if k == 0:
        return Payments.empty()
    claimed = g.country[paid]
    if c.evasion.unique_cards:
        bins = w.bins.for_country(claimed, rng)
        ts = g.created_h[paid] + rng.exponential(24.0 * 6, k) + rng.uniform(0.5, 48.0, k)
        two = rng.random(k) < 0.05
        acct = np.r_[paid, paid[two]]
        ts = np.r_[ts, ts[two] + rng.exponential(24.0 * 10, int(two.sum()))]
        return Payments(acct, instrument_ids(len(acct), rng), np.r_[bins, w.bins.for_country(claimed[two], rng)],
                        np.minimum(ts, cal_h - 0.01), g.country[acct])
    if c.payment == "virtual":
        vb = w.bins.virtual[rng.choice(len(w.bins.virtual), size=2, replace=False)]
        bins = vb[(rng.random(k) < 0.8).astype(np.int64)]
        ts = g.created_h[paid] + rng.uniform(0.02, 0.5, k)  # added by the sign-up script
        issuer = pick_countries(1, rng, ("US", "SG", "HK", "GB"))[0]
        return Payments(paid, instrument_ids(k, rng), bins, np.minimum(ts, cal_h - 0.01), np.full(k, issuer))
    # shared or mixed: cards re-used across accounts
    per = max(1.0, c.accounts_per_card)
    n_cards = max(1, int(round(k / per)))
    cards = instrument_ids(n_cards, rng)
    if c.payment == "shared":
        which = rng.choice(n_cards, size=k, p=_pareto_p(n_cards, rng))
        card_bin = w.bins.prepaid[rng.integers(0, len(w.bins.prepaid), n_cards)]
        foreign = rng.random(n_cards) < 0.5
        card_bin[foreign] = w.bins.for_country(pick_countries(int(foreign.sum()), rng), rng)
        card_country = pick_countries(n_cards, rng, ("US", "GB", "HK", "SG", "MY", "TH"))
        ts = g.created_h[paid] + rng.uniform(0.05, 3.0, k)
    else:
        which = rng.integers(0, n_cards, size=k)
        card_country = pick_countries(n_cards, rng, c.claimed_countries)
        card_bin = w.bins.for_country(card_country, rng)
        ts = g.created_h[paid] + rng.uniform(1.0, 72.0, k)
    acct = paid
    # a fifth of the accounts later swap to a second card of the pool (declines, rotations)
    extra = rng.random(k) < 0.2
    if extra.any():
        acct = np.r_[acct, paid[extra]]
        which = np.r_[which, rng.integers(0, n_cards, int(extra.sum()))]
        ts = np.r_[ts, ts[extra] + rng.uniform(24.0, 24.0 * 14, int(extra.sum()))]
    return Payments(acct, cards[which], card_bin[which], np.minimum(ts, cal_h - 0.01), card_country[which])


def _pareto_p(k: int, rng: np.random.Generator) -> np.ndarray:
    p = rng.pareto(1.5, k) + 1.0
    return p / p.sum()
