"""Legitimate populations, including the hard negatives a naive detector would flag.

Each builder returns a :class:`~acctgraph.synth.groups.Group` whose accounts
share behaviour: ordinary individuals, eager early adopters, companies behind
NAT with shared corporate cards and an internal template, universities with
deadline bursts and batch sign-ups, carrier-grade NAT users, ordinary VPN
users, solo automated scripts and families sharing a card and a home IP.

Example:
    >>> from acctgraph.synth.populations import REQUEST_WEIGHT
    >>> REQUEST_WEIGHT["solo-bot"] > REQUEST_WEIGHT["individual"]
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from acctgraph.synth import net, timing, vocab
from acctgraph.synth.groups import (
    Group, HumanGroup, Payments, World, allocate, created_before, emails, empty_requests, heavy_tail,
    instrument_ids, personal_cards, pick_countries, tz_hours,
)
from acctgraph.synth.text import Style, bank

#: Relative request volume per account of each population (legit_requests is split by these).
REQUEST_WEIGHT: dict[str, float] = {
    "individual": 1.0, "early-adopter": 12.0, "company": 10.0, "university": 6.0, "cgnat-user": 1.0,
    "vpn-user": 1.5, "family": 1.0, "solo-bot": 80.0,
}

CASUAL = Style(synonyms=True, pre=vocab.PRE_CASUAL, post=vocab.POST_CASUAL, lower_share=0.12, skew=1.3,
               preamble=("",) * 60 + vocab.PREAMBLES)

_LEGIT_W = {"recipe": 6, "travel-plan": 5, "write-doc": 8, "email-reply": 6, "explain": 9, "homework": 6,
            "math-help": 5, "code-help": 10, "career": 4, "health": 4, "creative": 5, "recommend": 5,
            "translate": 5, "summarise": 5, "data-help": 4, "pet": 2, "reasoning-casual": 2,
            "public-linux": 1.2, "public-travel": 1.0, "public-english": 1.0, "public-interviewer": 0.8,
            "public-actas": 1.2, "public-prompt-gen": 0.6}


def _families(weights: dict[str, float]) -> tuple[list[str], np.ndarray]:
    names = list(weights)
    p = np.array([weights[k] for k in names], dtype=np.float64)
    return names, p / p.sum()


def _span_factor(g: Group) -> np.ndarray:
    lo = np.maximum(g.created_h, 0.0)
    return np.clip((g.w.cal.hours - lo) / g.w.cal.hours, 0.02, 1.0) ** 0.8


def _uas(w: World, n: int, rng: np.random.Generator, p_browser: float, p_mobile: float
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Primary and secondary user agent per account: browsers, mobile browsers or SDK clients."""
    def pick(k: int) -> np.ndarray:
        r = rng.random(k)
        out = w.sdk_uas[(rng.random(k) ** 1.5 * len(w.sdk_uas)).astype(np.int64)]
        b = r < p_browser
        out[b] = w.browser_uas[rng.integers(0, len(w.browser_uas), size=int(b.sum()))]
        m = (r >= p_browser) & (r < p_browser + p_mobile)
        out[m] = w.mobile_uas[rng.integers(0, len(w.mobile_uas), size=int(m.sum()))]
        return out
    return pick(n), pick(n), np.where(rng.random(n) < 0.25, rng.uniform(0.1, 0.5, n), 0.0)


def _homes(g: HumanGroup, rng: np.random.Generator, p_v6: float, p_change: float = 0.25) -> None:
    w, n = g.w, g.n
    v6 = rng.random(n) < p_v6
    g.home_lo = w.net.home_v4(g.country, rng)
    g.home_hi = np.zeros(n, dtype=np.uint64)
    if v6.any():
        g.home_hi[v6] = w.net.home_v6_prefix(g.country[v6], rng)
        g.home_lo[v6] = 0
    g.alt_hi, g.alt_lo = g.home_hi.copy(), g.home_lo.copy()
    ch = ~v6 & (rng.random(n) < p_change)
    g.alt_lo[ch] = w.net.home_v4(g.country[ch], rng)
    g.switch_h = np.where(ch, rng.random(n) * w.cal.hours, np.inf)


def _adoption(g: Group, rng: np.random.Generator, p_adopt: float = 0.55, mean_days: float = 9.0) -> None:
    n = g.n
    rel = g.w.cal.release_h
    g.p_small = rng.beta(1.2, 4.0, n)
    adopt = rng.random(n) < p_adopt
    # nobody (apart from early adopters) moves on the first day: a few hours of waiting for news/SDK updates
    g.adopt_h = np.where(adopt, rel + 6.0 + rng.exponential(24 * mean_days, n), np.inf)
    g.p_new = rng.uniform(0.55, 0.95, n)


def _human(w: World, key: str, label: str, n: int, rng: np.random.Generator, *,
           countries: tuple[str, ...] | None = None, profile_mix: dict[str, float] | None = None,
           p_browser: float = 0.45, p_mobile_ua: float = 0.15, family_w: dict[str, float] | None = None,
           p_v6: float | None = None) -> HumanGroup:
    g = HumanGroup(w=w, key=key, n=n, label_names=[label])
    g.country = pick_countries(n, rng, countries)
    g.tz = tz_hours(g.country, rng)
    g.created_h = created_before(w.cal, n, rng, g.tz)
    g.email = emails(w, g.country, rng)
    _homes(g, rng, w.ipv6_share if p_v6 is None else p_v6)
    g.p_mobile = rng.beta(1.0, 5.0, n)
    mix = profile_mix or {"personal": 0.65, "work": 0.2, "night": 0.1, "mobile": 0.05}
    g.profiles = list(mix)
    pm = np.array(list(mix.values()))
    g.profile = rng.choice(len(pm), size=n, p=pm / pm.sum())
    g.ua1, g.ua2, g.p_ua2 = _uas(w, n, rng, p_browser, p_mobile_ua)
    _adoption(g, rng)
    g.families, g.family_p = _families(family_w or _LEGIT_W)
    g.fav = rng.choice(len(g.families), size=n, p=g.family_p)
    g.style = CASUAL
    g.init_arrays()
    return g


# ---------------------------------------------------------------- simple populations
def individuals(w: World, n: int, requests: int, rng: np.random.Generator) -> HumanGroup:
    g = _human(w, "individual", "individual", n, rng)
    g.n_req = allocate(requests, heavy_tail(n, rng, 1.5) * _span_factor(g), rng)
    g.payments = personal_cards(w, np.arange(n), g.country, g.created_h, rng, p_card=0.3)
    # remember some home addresses: residential-proxy exits are real home devices
    v4 = g.home_lo[(g.home_hi == 0)]
    w.home_pool_lo = v4[rng.permutation(len(v4))[: max(10, len(v4) // 50)]]
    return g


def early_adopters(w: World, n: int, requests: int, rng: np.random.Generator) -> HumanGroup:
    fam = dict(_LEGIT_W, **{"code-help": 30, "reasoning-casual": 10, "explain": 15, "data-help": 8})
    g = _human(w, "early-adopter", "early-adopter", n, rng, p_browser=0.3, p_mobile_ua=0.05, family_w=fam,
               profile_mix={"personal": 0.4, "work": 0.35, "night": 0.25})
    g.created_h = np.minimum(g.created_h, -24.0 * rng.uniform(30, 700, n))
    g.p_small = rng.beta(1.0, 8.0, n)
    # switch within the first day of release: the campaign-like hard negative on the model layer
    g.adopt_h = w.cal.release_h + rng.uniform(0.05, 20.0, n)
    g.p_new = rng.uniform(0.8, 0.98, n)
    g.forced_h = g.adopt_h + rng.uniform(0.0, 2.0, n)  # they try it as soon as they hear of it
    g.n_req = allocate(requests, heavy_tail(n, rng, 1.0), rng)
    g.payments = personal_cards(w, np.arange(n), g.country, g.created_h, rng, p_card=0.9, p_second=0.1)
    g.out_median = 600.0
    return g


def vpn_users(w: World, n: int, requests: int, rng: np.random.Generator) -> HumanGroup:
    g = _human(w, "vpn-user", "vpn-user", n, rng,
               countries=("US", "GB", "DE", "CA", "AU", "NL", "FR", "SE", "CH", "SG", "HK", "TW", "TR", "AE",
                          "JP", "KR", "BR", "IN"))
    pool, start, size = _provider_pool(w)
    prov = rng.choice(len(start), size=n, p=_vpn_market_share(len(start)))
    g.pool, g.pool_start, g.pool_len = pool, start[prov], size[prov]
    g.p_pool = rng.uniform(0.5, 0.98, n)
    g.n_req = allocate(requests, heavy_tail(n, rng, 1.4) * _span_factor(g), rng)
    g.payments = personal_cards(w, np.arange(n), g.country, g.created_h, rng, p_card=0.45)
    return g


def _provider_pool(w: World) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    exits = [w.net.vpn_exits[p] for p in net.VPN_PROVIDERS]
    size = np.array([len(e) for e in exits], dtype=np.int64)
    return np.concatenate(exits), np.cumsum(size) - size, size


def _vpn_market_share(k: int) -> np.ndarray:
    p = 1.0 / np.arange(1, k + 1) ** 0.8
    return p / p.sum()


def cgnat_users(w: World, n: int, requests: int, rng: np.random.Generator) -> HumanGroup:
    """Mobile users of a few carriers whose traffic leaves through small public-IP pools."""
    codes = ("ID", "PH", "IN", "NG", "BR", "MX", "VN", "EG")
    g = _human(w, "cgnat-user", "cgnat-user", n, rng, countries=codes, p_browser=0.05, p_mobile_ua=0.75,
               profile_mix={"mobile": 0.8, "personal": 0.2}, p_v6=0.0)
    starts, lens, pools = np.zeros(n, np.int64), np.zeros(n, np.int64), []
    off = 0
    for c in np.unique(g.country):
        m = g.country == c
        k = max(4, int(m.sum()) // 70)
        pools.append(w.net.mobile_v4(np.full(k, c), rng))
        starts[m], lens[m] = off, k
        off += k
    g.pool, g.pool_start, g.pool_len = np.concatenate(pools), starts, lens
    g.p_pool = np.full(n, 0.93)
    g.p_mobile = np.zeros(n)
    g.n_req = allocate(requests, heavy_tail(n, rng, 1.3) * _span_factor(g), rng)
    g.payments = personal_cards(w, np.arange(n), g.country, g.created_h, rng, p_card=0.15)
    return g


def families(w: World, n: int, requests: int, rng: np.random.Generator) -> HumanGroup:
    """Households of 2-5 accounts sharing a home IP and (usually) one card."""
    g = _human(w, "family", "family", n, rng, profile_mix={"personal": 0.7, "student": 0.3})
    sizes = rng.choice([2, 3, 4, 5], size=n // 2 + 1, p=[0.35, 0.3, 0.25, 0.1])
    fam = np.repeat(np.arange(len(sizes)), sizes)[:n]
    if n >= 2 and (fam == fam[-1]).sum() == 1:  # no single-member family at the end
        fam[-1] = fam[-2]
    head = np.r_[0, np.flatnonzero(np.diff(fam)) + 1]
    head_of = head[fam]
    g.country, g.tz = g.country[head_of], g.tz[head_of]
    for name in ("home_hi", "home_lo", "alt_hi", "alt_lo", "switch_h"):
        setattr(g, name, getattr(g, name)[head_of])
    dom = rng.random(len(head)) < 0.25
    g.email = np.where(dom[fam], g.email[head_of], g.email)
    g.p_mobile = rng.uniform(0.05, 0.35, n)
    g.n_req = allocate(requests, heavy_tail(n, rng, 1.3) * _span_factor(g), rng)
    # one card per paying family, attached to every member
    paying = rng.random(len(head)) < 0.85
    card = instrument_ids(len(head), rng)
    bins = w.bins.for_country(g.country[head], rng)
    card_h = g.created_h[head] + rng.exponential(24 * 30, len(head))
    a = np.flatnonzero(paying[fam])
    ts = np.minimum(np.maximum(g.created_h[a], card_h[fam[a]]) + rng.exponential(24 * 3, len(a)), w.cal.hours - 0.01)
    g.payments = Payments(a, card[fam[a]], bins[fam[a]], ts, g.country[a])
    return g


# ---------------------------------------------------------------- companies
_WORK_W = {"code-help": 14, "write-doc": 10, "email-reply": 12, "data-help": 10, "summarise": 8,
           "explain": 6, "career": 1, "translate": 3, "public-prompt-gen": 1}


@dataclass
class CompanyGroup(HumanGroup):
    """Employees: business hours, NAT egress IPs, shared corporate cards, an internal template."""

    p_template: float = 0.4
    template_family: int = 0

    def choose_families(self, acct: np.ndarray, sess_local_h: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        fam = super().choose_families(acct, sess_local_h, rng)
        fam[rng.random(len(acct)) < self.p_template] = self.template_family
        return fam


def company(w: World, index: int, n: int, requests: int, rng: np.random.Generator, offices: int,
            cards: int) -> CompanyGroup:
    label = f"company-{index}"
    bank().add_family(label, vocab.company_template(index))
    fam_names, fam_p = _families(dict(_WORK_W, **{label: 0.0}))
    g = CompanyGroup(w=w, key=label, n=n, label_names=[label], families=fam_names, family_p=fam_p,
                     template_family=fam_names.index(label), style=CASUAL, session_len=3.0, gap_median_s=90.0)
    org = vocab.company_name(index)
    hq = pick_countries(1, rng, ("US", "GB", "DE", "FR", "JP", "IN", "CA", "NL", "SG", "AU", "BR", "KR"))[0]
    office_country = np.r_[hq, pick_countries(offices - 1, rng)]
    office_p = np.r_[0.7, np.full(offices - 1, 0.3 / max(offices - 1, 1))] if offices > 1 else np.ones(1)
    office = rng.choice(offices, size=n, p=office_p)
    g.country = office_country[office]
    office_tz = tz_hours(office_country, rng)
    g.tz = office_tz[office]
    # NAT egress: a couple of addresses per office
    pools, starts, lens = [], np.zeros(offices, np.int64), np.zeros(offices, np.int64)
    off = 0
    for o in range(offices):
        base = w.net.business_block(org, vocab.COUNTRIES[int(office_country[o])].code)
        k = int(rng.integers(1, 4)) if n > 50 else 1
        pools.append(base + rng.choice(np.arange(2, 250), size=k, replace=False).astype(np.uint64))
        starts[o], lens[o] = off, k
        off += k
    g.pool, g.pool_start, g.pool_len = np.concatenate(pools), starts[office], lens[office]
    g.p_pool = rng.uniform(0.8, 0.98, n)
    g.profiles, g.profile = ["work", "personal"], (rng.random(n) < 0.1).astype(np.int64)
    # onboarding: most accounts created in a company-wide rollout over two days, the rest are new hires
    rollout = -24.0 * rng.uniform(40, 400)
    batch = rng.random(n) < 0.6
    g.created_h = np.where(batch, rollout + rng.exponential(10.0, n),
                           created_before(w.cal, n, rng, g.tz, p_during=0.1, mean_age_days=200, profile_hours="work"))
    g.created_h = np.minimum(g.created_h, w.cal.hours - 1.0)
    dom = w.domains.idx(vocab.company_domain(index))
    g.email = np.where(rng.random(n) < 0.92, dom, emails(w, g.country, rng))
    _homes(g, rng, w.ipv6_share)
    g.p_mobile = rng.uniform(0.0, 0.1, n)
    browser = w.browser_uas[int(rng.integers(0, len(w.browser_uas)))]
    sdk = w.sdk_uas[int(rng.integers(0, 5))]
    tool = rng.random(n) < 0.4
    g.ua1 = np.where(tool, sdk, browser)
    g.ua2 = np.where(tool, browser, sdk)
    g.p_ua2 = np.full(n, 0.15)
    # model policy: IT switches the company over on one date after release
    _adoption(g, rng)
    policy = w.cal.release_h + 24.0 * rng.uniform(3, 12)
    g.adopt_h = np.where(rng.random(n) < 0.85, policy + rng.uniform(0, 48, n), np.inf)
    g.p_small = rng.beta(1.0, 6.0, n)
    g.fav = rng.choice(len(fam_names), size=n, p=fam_p)
    g.p_template = float(rng.uniform(0.25, 0.5))
    g.n_req = allocate(requests, heavy_tail(n, rng, 1.0) * _span_factor(g), rng)
    # a few corporate cards shared by many employees
    card_ids = instrument_ids(cards, rng)
    card_bins = w.bins.corporate[rng.integers(0, len(w.bins.corporate), size=cards)]
    paid = np.flatnonzero(rng.random(n) < 0.75)
    which = rng.choice(cards, size=len(paid), p=_zipf(cards))
    ts = np.minimum(np.maximum(g.created_h[paid], -24.0 * 420) + rng.exponential(12.0, len(paid)),
                    w.cal.hours - 0.01)
    g.payments = Payments(paid, card_ids[which], card_bins[which], ts, np.full(len(paid), hq))
    g.out_median = 450.0
    g.init_arrays()
    return g


def _zipf(k: int, a: float = 1.0) -> np.ndarray:
    p = 1.0 / np.arange(1, k + 1) ** a
    return p / p.sum()


# ---------------------------------------------------------------- universities
@dataclass
class UniversityGroup(HumanGroup):
    """Students: campus NAT, the same (paraphrased) assignment in bursts the evening before deadlines."""

    template_family: int = 0
    burst: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # per padded local hour

    def choose_families(self, acct: np.ndarray, sess_local_h: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        fam = super().choose_families(acct, sess_local_h, rng)
        x = np.clip(np.floor(sess_local_h).astype(np.int64) + timing.Calendar.PAD, 0, len(self.burst) - 1)
        p = np.where(self.burst[x], 0.75, 0.15)
        fam[rng.random(len(acct)) < p] = self.template_family
        return fam


def university(w: World, index: int, n: int, requests: int, rng: np.random.Generator) -> UniversityGroup:
    label = f"university-{index}"
    bank().add_family(label, vocab.university_template(index))
    fam_w = {"homework": 12, "explain": 10, "summarise": 6, "code-help": 8, "write-doc": 4, "creative": 3,
             "math-help": 5, "public-english": 1.5, "translate": 2, label: 0.0}
    fam_names, fam_p = _families(fam_w)
    cal = w.cal
    country = vocab.COUNTRY_INDEX[("US", "GB", "AU", "DE", "SG", "JP", "CA", "NL")[index % 8]]
    # deadline bursts: the evening before each deadline (deadlines every two weeks)
    first = 3 + (index * 4) % 11
    deadlines = np.arange(first, cal.days + 1, 14)
    x = np.arange(cal.hours + 2 * cal.PAD) - cal.PAD
    burst = np.zeros(len(x), bool)
    for d in deadlines:
        burst |= (x >= d * 24 - 7) & (x < d * 24 + 3)
    weights = cal.weights("student") * np.where(burst, 7.0, 1.0)
    prof = f"{label}-student"
    w.samplers[prof] = timing.HourSampler(weights)
    g = UniversityGroup(w=w, key=label, n=n, label_names=[label], families=fam_names, family_p=fam_p,
                        template_family=fam_names.index(label), burst=burst, style=CASUAL, session_len=3.0,
                        gap_median_s=70.0)
    g.country = np.full(n, country, dtype=np.int64)
    g.tz = np.full(n, vocab.COUNTRIES[country].tz_minutes[0] / 60.0)
    g.profiles, g.profile = [prof], np.zeros(n, np.int64)
    org = vocab.university_name(index)
    base = w.net.campus_block(org, vocab.COUNTRIES[country].code)
    k = max(2, n // 20)
    g.pool = base + np.sort(rng.choice(np.arange(256, 65_280), size=k, replace=False)).astype(np.uint64)
    g.pool_start, g.pool_len = np.zeros(n, np.int64), np.full(n, k)
    g.p_pool = rng.uniform(0.35, 0.85, n)
    # semester start: batch sign-ups over a few days
    sem = 24.0 * (rng.uniform(-25, -8) if index % 3 else rng.uniform(2, 6))
    batch = rng.random(n) < 0.65
    hp = np.asarray(timing.HOURLY["student"])
    hour = rng.choice(24, size=n, p=hp / hp.sum()) + rng.random(n)
    g.created_h = np.where(batch, sem + 24.0 * np.floor(np.minimum(rng.exponential(0.8, n), 4)) + hour - g.tz,
                           created_before(cal, n, rng, g.tz, p_during=0.05, mean_age_days=300))
    dom = w.domains.idx(vocab.university_domain(index))
    g.email = np.where(rng.random(n) < 0.85, dom, emails(w, g.country, rng))
    _homes(g, rng, w.ipv6_share)
    g.p_mobile = rng.uniform(0.05, 0.3, n)
    g.ua1, g.ua2, g.p_ua2 = _uas(w, n, rng, 0.7, 0.2)
    _adoption(g, rng, p_adopt=0.4, mean_days=12)
    g.fav = rng.choice(len(fam_names), size=n, p=fam_p)
    g.n_req = allocate(requests, heavy_tail(n, rng, 1.1) * _span_factor(g), rng)
    g.payments = personal_cards(w, np.arange(n), g.country, g.created_h, rng, p_card=0.12)
    g.init_arrays()
    return g


# ---------------------------------------------------------------- solo bots
@dataclass
class BotGroup(HumanGroup):
    """Single automated accounts: one job each, fixed interval around the clock, one address."""

    start_h: np.ndarray = field(default_factory=lambda: np.zeros(0))
    period_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    model_fixed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))

    def requests(self, idx: np.ndarray, rng: np.random.Generator) -> dict[str, object]:
        n = self.n_req[idx]
        if n.sum() == 0:
            return empty_requests()
        acct = np.repeat(idx, n)
        k = timing.position_in_group(acct)
        per = self.period_s[acct]
        jitter = rng.normal(0, 1, len(acct)) * np.minimum(2.0, per * 0.01)
        ts_h = np.clip(self.start_h[acct] + (k * per + jitter) / 3600.0, np.maximum(self.created_h[acct], 0),
                       self.w.cal.hours - 1e-4)
        fam = self.fav[acct]
        out = self.finish(acct, ts_h, self.home_hi[acct], self.home_lo[acct], self.ua1[acct], fam,
                          np.zeros(len(acct)), rng)
        late = (ts_h >= self.adopt_h[acct])
        out["model"] = np.where(late, 2, self.model_fixed[acct]).astype(np.int8)
        return out


def solo_bots(w: World, n: int, requests: int, rng: np.random.Generator) -> BotGroup:
    fam_names = list(vocab.BOT_FAMILIES)
    g = BotGroup(w=w, key="solo-bot", n=n, label_names=["solo-bot"], families=fam_names,
                 family_p=np.full(len(fam_names), 1.0 / len(fam_names)),
                 style=Style(synonyms=False, skew=1.0))
    cal = w.cal
    g.country = pick_countries(n, rng)
    g.tz = tz_hours(g.country, rng)
    g.created_h = created_before(cal, n, rng, g.tz, p_during=0.1)
    g.email = emails(w, g.country, rng, p_custom=0.3)
    g.fav = rng.integers(0, len(fam_names), size=n)
    g.n_req = np.maximum(allocate(requests, heavy_tail(n, rng, 1.2), rng), 1)
    lo = np.maximum(g.created_h, 0.0)
    full = rng.random(n) < 0.4
    span = np.where(full, cal.hours - lo, np.minimum(cal.hours - lo, 24.0 * rng.uniform(1, 20, n)))
    g.start_h = lo + rng.random(n) * (cal.hours - lo - span)
    g.period_s = np.maximum(span * 3600.0 / g.n_req, 2.0)
    cron = rng.random(n) < 0.5
    g.period_s = np.where(cron, np.maximum(np.round(g.period_s / 60.0), 1) * 60.0, g.period_s)
    g.start_h = np.where(cron, np.ceil(g.start_h * 60) / 60, g.start_h)
    g.n_req = np.maximum(np.minimum(g.n_req, ((cal.hours - g.start_h) * 3600 / g.period_s).astype(np.int64)), 1)
    # cloud servers mostly; some scripts run on a home machine
    cloud = rng.random(n) < 0.75
    g.home_hi = np.zeros(n, np.uint64)
    g.home_lo = np.where(cloud, w.net.cloud_ips[rng.integers(0, len(w.net.cloud_ips), size=n)],
                         w.net.home_v4(g.country, rng))
    g.ua1 = w.sdk_uas[rng.integers(0, len(w.sdk_uas), size=n)]
    g.model_fixed = np.where(rng.random(n) < 0.6, 0, 1).astype(np.int8)
    g.p_small, g.p_new = np.zeros(n), np.ones(n)
    g.adopt_h = np.where(rng.random(n) < 0.2, cal.release_h + 24.0 * rng.uniform(2, 15, n), np.inf)
    g.payments = personal_cards(w, np.arange(n), g.country, g.created_h, rng, p_card=0.9)
    g.out_median, g.out_sigma, g.context_tokens = 60.0, 0.5, 0.0
    g.init_arrays()
    return g
