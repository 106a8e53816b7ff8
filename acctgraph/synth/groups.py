"""Account groups: the shared machinery every population and campaign is built on.

A :class:`Group` holds one population's accounts as column arrays (creation
time, country, e-mail domain, payment instruments, behaviour parameters) and
generates the requests of any subset of its accounts on demand, vectorised, so
the world can stream requests chunk by chunk. :class:`HumanGroup` models
session-based human use; subclasses change addresses, timing or prompts.

Example:
    >>> reg = Registry()
    >>> reg.idx("gmail.com"), reg.idx("outlook.com"), reg.idx("gmail.com")
    (0, 1, 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from acctgraph.synth import net, timing, vocab
from acctgraph.synth.text import Style, bank

S_PER_H = 3600.0


class Registry:
    """An append-only table of distinct strings addressed by index."""

    def __init__(self, items: tuple[str, ...] | list[str] = ()) -> None:
        self.items: list[str] = []
        self._index: dict[str, int] = {}
        for s in items:
            self.idx(s)

    def idx(self, s: str) -> int:
        i = self._index.get(s)
        if i is None:
            i = self._index[s] = len(self.items)
            self.items.append(s)
        return i

    def idxs(self, items: list[str] | tuple[str, ...]) -> np.ndarray:
        return np.array([self.idx(s) for s in items], dtype=np.int64)

    def array(self) -> pa.Array:
        return pa.array(self.items, pa.string())


class Bins:
    """Card issuer prefixes: ordinary banks per country, plus virtual, prepaid and corporate issuers."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.reg = Registry()
        self.country: list[np.ndarray] = []
        for _ in vocab.COUNTRIES:
            self.country.append(self.reg.idxs(self._make(rng, 12)))
        self.virtual = self.reg.idxs(self._make(rng, 4))
        self.prepaid = self.reg.idxs(self._make(rng, 6))
        self.corporate = self.reg.idxs(self._make(rng, 8))
        # big banks issue most cards
        self._bank_p = 1.0 / np.arange(1, 13) ** 1.1
        self._bank_p /= self._bank_p.sum()

    @staticmethod
    def _make(rng: np.random.Generator, k: int) -> list[str]:
        out = []
        for _ in range(k):
            r = rng.random()
            if r < 0.55:
                out.append(f"4{rng.integers(0, 100_000):05d}")
            elif r < 0.85:
                out.append(f"5{rng.integers(1, 6)}{rng.integers(0, 10_000):04d}")
            elif r < 0.95:
                out.append(f"2{rng.integers(221, 721):03d}{rng.integers(0, 100):02d}")
            else:
                out.append(f"3{rng.choice([4, 7])}{rng.integers(0, 10_000):04d}")
        return out

    def for_country(self, country: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        table = np.stack(self.country)
        return table[np.asarray(country, dtype=np.int64), rng.choice(12, size=len(country), p=self._bank_p)]


@dataclass
class World:
    """What every group needs from the world being built."""

    cal: timing.Calendar
    net: net.NetPlan
    bins: Bins
    domains: Registry
    uas: Registry
    models: tuple[str, str, str]
    ipv6_share: float
    custom_domains: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    alias_domains: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    webmail: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    webmail_p: np.ndarray = field(default_factory=lambda: np.zeros(0))
    local_mail: list[np.ndarray] = field(default_factory=list)
    home_pool_lo: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))  # individuals' home IPs
    samplers: dict[str, timing.HourSampler] = field(default_factory=dict)
    browser_uas: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    mobile_uas: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    sdk_uas: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        self.custom_domains = self.domains.idxs(vocab.domain_pool(3_000))
        self.alias_domains = self.domains.idxs(vocab.ALIAS_MAIL)
        self.webmail = self.domains.idxs([d for d, _ in vocab.WEBMAIL])
        p = np.array([w for _, w in vocab.WEBMAIL])
        self.webmail_p = p / p.sum()
        self.local_mail = [self.domains.idxs(c.local_mail) for c in vocab.COUNTRIES]
        self.browser_uas = self.uas.idxs(vocab.BROWSER_UAS)
        self.mobile_uas = self.uas.idxs(vocab.MOBILE_UAS)
        self.sdk_uas = self.uas.idxs(vocab.SDK_UAS)

    def sampler(self, profile: str) -> timing.HourSampler:
        s = self.samplers.get(profile)
        if s is None:
            s = self.samplers[profile] = timing.HourSampler(self.cal.weights(profile))
        return s


# ---------------------------------------------------------------- helpers for account attributes
_COUNTRY_P = np.array([c.weight for c in vocab.COUNTRIES])
_COUNTRY_P = _COUNTRY_P / _COUNTRY_P.sum()


def pick_countries(k: int, rng: np.random.Generator, codes: tuple[str, ...] | None = None,
                   p: np.ndarray | None = None) -> np.ndarray:
    if codes is None:
        return rng.choice(len(vocab.COUNTRIES), size=k, p=_COUNTRY_P).astype(np.int64)
    idx = np.array([vocab.COUNTRY_INDEX[c] for c in codes], dtype=np.int64)
    if p is None:
        p = _COUNTRY_P[idx] / _COUNTRY_P[idx].sum()
    return idx[rng.choice(len(idx), size=k, p=p)]


def tz_hours(country: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each account's UTC offset (hours), drawn from its country's time zones."""
    out = np.zeros(len(country))
    u = rng.random(len(country))
    for c in np.unique(country):
        m = country == c
        opts = np.array(vocab.COUNTRIES[int(c)].tz_minutes) / 60.0
        out[m] = opts[np.minimum((u[m] * len(opts)).astype(np.int64), len(opts) - 1)]
    return out


def emails(w: World, country: np.ndarray, rng: np.random.Generator, p_local: float = 0.12,
           p_custom: float = 0.08, p_alias: float = 0.01) -> np.ndarray:
    """E-mail domain index per account: big webmail, the country's local providers, own domains, aliases."""
    k = len(country)
    out = w.webmail[rng.choice(len(w.webmail), size=k, p=w.webmail_p)]
    r = rng.random(k)
    custom = r < p_custom
    out[custom] = w.custom_domains[np.minimum((rng.random(int(custom.sum())) ** 2 * len(w.custom_domains))
                                              .astype(np.int64), len(w.custom_domains) - 1)]
    alias = (r >= p_custom) & (r < p_custom + p_alias)
    out[alias] = w.alias_domains[rng.integers(0, len(w.alias_domains), size=int(alias.sum()))]
    local = (r >= p_custom + p_alias) & (r < p_custom + p_alias + p_local)
    for c in np.unique(country[local]):
        opts = w.local_mail[int(c)]
        if len(opts):
            m = local & (country == c)
            out[m] = opts[rng.integers(0, len(opts), size=int(m.sum()))]
    return out


def created_before(cal: timing.Calendar, k: int, rng: np.random.Generator, tz: np.ndarray,
                   p_during: float = 0.12, mean_age_days: float = 260.0, max_age_days: float = 1100.0,
                   profile_hours: str = "personal") -> np.ndarray:
    """Account creation hours (relative to window start, UTC): mostly before the window."""
    during = rng.random(k) < p_during
    day = np.where(during, rng.random(k) * cal.days,
                   -np.minimum(rng.exponential(mean_age_days, size=k), max_age_days) - 1)
    hp = np.asarray(timing.HOURLY[profile_hours])
    hour = rng.choice(24, size=k, p=hp / hp.sum()) + rng.random(k)
    h = np.floor(day) * 24 + hour - tz
    return np.minimum(h, cal.hours - 1.0)


def allocate(total: int, weights: np.ndarray, rng: np.random.Generator, cap: int = 50_000) -> np.ndarray:
    """Split ``total`` requests over accounts in proportion to ``weights`` (Poisson noise)."""
    if len(weights) == 0:
        return np.zeros(0, dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    lam = total * w / max(w.sum(), 1e-12)
    return np.minimum(rng.poisson(lam), cap).astype(np.int64)


def heavy_tail(k: int, rng: np.random.Generator, sigma: float = 1.4) -> np.ndarray:
    return rng.lognormal(0.0, sigma, size=k)


def instrument_ids(k: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(1, np.iinfo(np.int64).max, size=k, dtype=np.int64).astype(np.uint64)


@dataclass
class Payments:
    """Payment instruments attached to a group's accounts (local account indices)."""

    acct: np.ndarray
    instrument: np.ndarray  # uint64 fingerprints
    bin: np.ndarray         # index into Bins.reg
    ts_h: np.ndarray        # hours since window start
    billing: np.ndarray     # country index

    @classmethod
    def empty(cls) -> Payments:
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z.astype(np.uint64), z, np.zeros(0), z)

    @classmethod
    def concat(cls, parts: list[Payments]) -> Payments:
        parts = [p for p in parts if len(p.acct)]
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("acct", "instrument", "bin", "ts_h", "billing")))


def personal_cards(w: World, acct: np.ndarray, country: np.ndarray, created_h: np.ndarray,
                   rng: np.random.Generator, p_card: float, p_second: float = 0.06,
                   p_virtual: float = 0.02) -> Payments:
    """Ordinary cards: a share of accounts pay, a few with two cards; own bank BINs, own country."""
    has = rng.random(len(acct)) < p_card
    a = acct[has]
    two = rng.random(len(a)) < p_second
    a = np.concatenate([a, a[two]])
    c = country[a]
    b = w.bins.for_country(c, rng)
    virt = rng.random(len(a)) < p_virtual
    b[virt] = w.bins.virtual[rng.integers(0, len(w.bins.virtual), size=int(virt.sum()))]
    billing = c.copy()
    travel = rng.random(len(a)) < 0.03
    billing[travel] = pick_countries(int(travel.sum()), rng)
    ts = np.minimum(created_h[a] + rng.exponential(24 * 20, size=len(a)), w.cal.hours - 0.01)
    return Payments(a, instrument_ids(len(a), rng), b, ts, billing)


# ---------------------------------------------------------------- groups
@dataclass
class Group:
    """Accounts of one population and the model of their requests."""

    w: World
    key: str
    n: int
    campaign: str | None = None
    label_names: list[str] = field(default_factory=list)
    label: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    created_h: np.ndarray = field(default_factory=lambda: np.zeros(0))
    country: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    email: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    n_req: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    payments: Payments = field(default_factory=Payments.empty)
    offset: int = 0  # position of the first account in the world's account list
    # behaviour
    p_small: np.ndarray = field(default_factory=lambda: np.zeros(0))
    adopt_h: np.ndarray = field(default_factory=lambda: np.zeros(0))
    p_new: np.ndarray = field(default_factory=lambda: np.zeros(0))
    out_median: float = 350.0
    out_sigma: float = 0.8
    context_tokens: float = 120.0  # extra input tokens per earlier turn in a session

    def models(self, acct: np.ndarray, ts_h: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """0 = small, 1 = flagship, 2 = new release (only after release and adoption)."""
        u = rng.random(len(acct))
        new = (ts_h >= self.adopt_h[acct]) & (ts_h >= self.w.cal.release_h) & (u < self.p_new[acct])
        small = rng.random(len(acct)) < self.p_small[acct]
        return np.where(new, 2, np.where(small, 0, 1)).astype(np.int8)

    def tokens(self, prompt: pa.Array, model: np.ndarray, pos: np.ndarray, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
        chars = pc.utf8_length(prompt).to_numpy(zero_copy_only=False).astype(np.float64)
        inp = np.ceil(chars / 4.0 * rng.uniform(0.85, 1.15, size=len(chars)) + 8 + pos * self.context_tokens)
        out = rng.lognormal(np.log(self.out_median), self.out_sigma, size=len(chars)) * np.where(model == 2, 1.15, 1.0)
        return inp.astype(np.int64), np.clip(np.round(out), 1, 32_000).astype(np.int64)

    def requests(self, idx: np.ndarray, rng: np.random.Generator) -> dict[str, object]:
        raise NotImplementedError

    @property
    def summary_names(self) -> list[str]:
        return self.label_names


def empty_requests() -> dict[str, object]:
    z = np.zeros(0, dtype=np.int64)
    return {"acct": z, "ts": z, "hi": z.astype(np.uint64), "lo": z.astype(np.uint64), "model": z.astype(np.int8),
            "prompt": pa.array([], pa.string()), "ua": z, "in_tok": z, "out_tok": z}


@dataclass
class HumanGroup(Group):
    """Session-based human use in local time.

    Per-account arrays: ``tz`` (UTC offset, hours), ``profile`` (index into
    ``profiles``), ``home_hi``/``home_lo`` (``home_lo == 0`` with ``home_hi``
    set means IPv6 privacy addresses under that /64), optional ``alt_*`` and
    ``switch_h`` (the ISP reassigned the address), ``p_mobile``, and a shared
    address pool (``pool``; account ``i`` uses ``pool[pool_start[i] :
    pool_start[i] + pool_len[i]]`` with probability ``p_pool[i]`` per session).
    """

    profiles: list[str] = field(default_factory=lambda: ["personal"])
    profile: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    tz: np.ndarray = field(default_factory=lambda: np.zeros(0))
    home_hi: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    home_lo: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    alt_hi: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    alt_lo: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    switch_h: np.ndarray = field(default_factory=lambda: np.zeros(0))
    p_mobile: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pool: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    pool_start: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    pool_len: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    p_pool: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ua1: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ua2: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    p_ua2: np.ndarray = field(default_factory=lambda: np.zeros(0))
    families: list[str] = field(default_factory=list)
    family_p: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fav: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    p_fav: float = 0.35
    style: Style = field(default_factory=Style)
    session_len: float = 2.5
    gap_median_s: float = 45.0
    active_start_h: np.ndarray | None = None
    forced_h: np.ndarray | None = None  # per account: start of its first session (NaN: none)
    active_end_h: np.ndarray | None = None

    # ------------------------------------------------------------ defaults filled by builders
    def init_arrays(self) -> None:
        n = self.n
        z64 = np.zeros(n, dtype=np.uint64)
        for name, val in (("alt_hi", z64), ("alt_lo", z64), ("switch_h", np.full(n, np.inf)),
                          ("p_mobile", np.zeros(n)), ("pool_start", np.zeros(n, np.int64)),
                          ("pool_len", np.zeros(n, np.int64)), ("p_pool", np.zeros(n)),
                          ("p_ua2", np.zeros(n)), ("profile", np.zeros(n, np.int64))):
            if len(getattr(self, name)) != n:
                setattr(self, name, val.copy())
        if len(self.ua2) != n:
            self.ua2 = self.ua1.copy()
        if len(self.fav) != n:
            self.fav = np.zeros(n, np.int64)
        if len(self.label) != n:
            self.label = np.zeros(n, np.int64)

    def active_range(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo = np.maximum(self.created_h[a] if self.active_start_h is None else self.active_start_h[a], 0.0)
        hi = np.full(len(a), float(self.w.cal.hours)) if self.active_end_h is None else self.active_end_h[a]
        return lo, np.maximum(hi, lo + 1e-3)

    def session_starts(self, a: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(UTC hours since window start, local hours) of sessions of accounts ``a``."""
        lo, hi = self.active_range(a)
        tz = self.tz[a]
        loc = np.zeros(len(a))
        prof = self.profile[a]
        for p in np.unique(prof):
            m = prof == p
            loc[m] = self.w.sampler(self.profiles[int(p)]).sample(lo[m] + tz[m], hi[m] + tz[m], rng)
        return loc - tz, loc

    def session_ips(self, a: np.ndarray, t_h: np.ndarray, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray]:
        k = len(a)
        hi = np.where(t_h >= self.switch_h[a], self.alt_hi[a], self.home_hi[a])
        lo = np.where(t_h >= self.switch_h[a], self.alt_lo[a], self.home_lo[a])
        v6priv = (hi != 0) & (lo == 0)
        if v6priv.any():
            lo = lo.copy()
            lo[v6priv] = net.iid(int(v6priv.sum()), rng)
        r = rng.random(k)
        use_pool = (r < self.p_pool[a]) & (self.pool_len[a] > 0)
        if use_pool.any():
            ap = a[use_pool]
            j = self.pool_start[ap] + (rng.random(len(ap)) * self.pool_len[ap]).astype(np.int64)
            hi = np.where(use_pool, np.uint64(0), hi)
            lo = lo.copy()
            lo[use_pool] = self.pool[j]
        mob = ~use_pool & (rng.random(k) < self.p_mobile[a])
        if mob.any():
            c = self.country[a[mob]]
            v6 = rng.random(len(c)) < self.w.ipv6_share * 1.5
            mhi = np.zeros(len(c), dtype=np.uint64)
            mlo = self.w.net.mobile_v4(c, rng)
            if v6.any():
                mhi[v6] = self.w.net.home_v6_prefix(c[v6], rng, mobile=True)
                mlo[v6] = net.iid(int(v6.sum()), rng)
            hi = hi.copy()
            hi[mob] = mhi
            lo[mob] = mlo
        return hi, lo

    def choose_families(self, acct: np.ndarray, sess_local_h: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        fam = rng.choice(len(self.families), size=len(acct), p=self.family_p)
        fav = rng.random(len(acct)) < self.p_fav
        fam[fav] = self.fav[acct[fav]]
        return fam

    def requests(self, idx: np.ndarray, rng: np.random.Generator) -> dict[str, object]:
        n = self.n_req[idx]
        if n.sum() == 0:
            return empty_requests()
        sess_acct, req_acct, req_sess, req_pos = timing.sessions(n, self.session_len, rng)
        a = idx[sess_acct]
        t_utc, t_loc = self.session_starts(a, rng)
        if self.forced_h is not None:
            # the session holding an account's first request starts at its forced time (e.g. release day)
            first = req_sess[np.r_[True, req_acct[1:] != req_acct[:-1]]]
            f = self.forced_h[a[first]]
            ok = np.isfinite(f)
            t_utc[first[ok]] = f[ok]
            t_loc[first[ok]] = f[ok] + self.tz[a[first[ok]]]
        gaps = rng.lognormal(np.log(self.gap_median_s), 0.9, size=len(req_sess))
        offs = timing.group_cumsum(req_sess, gaps) / S_PER_H
        acct = idx[req_acct]
        ts_h = np.minimum(t_utc[req_sess] + offs, self.w.cal.hours - 1e-4)
        hi_s, lo_s = self.session_ips(a, t_utc, rng)
        ua_s = np.where(rng.random(len(a)) < self.p_ua2[a], self.ua2[a], self.ua1[a])
        return self.finish(acct, ts_h, hi_s[req_sess], lo_s[req_sess], ua_s[req_sess],
                           self.choose_families(acct, t_loc[req_sess], rng), req_pos, rng)

    def finish(self, acct: np.ndarray, ts_h: np.ndarray, hi: np.ndarray, lo: np.ndarray, ua: np.ndarray,
               fam: np.ndarray, pos: np.ndarray, rng: np.random.Generator) -> dict[str, object]:
        model = self.models(acct, ts_h, rng)
        prompt = bank().render(self.families, fam, rng, self.style)
        inp, out = self.tokens(prompt, model, pos, rng)
        ts_us = self.w.cal.h_to_us(ts_h)
        ts_us -= ts_us % 1000  # millisecond log precision
        return {"acct": acct + self.offset, "ts": ts_us, "hi": hi, "lo": lo, "model": model,
                "prompt": prompt, "ua": ua, "in_tok": inp, "out_tok": out}
