"""Configuration of a synthetic world: sizes, calendar, campaigns and evasion knobs.

Every count in a :class:`WorldConfig` is absolute (already scaled); :func:`preset`
builds a config from a named design and a ``scale`` (1.0 = 1,000,000 accounts,
about 20M requests). Configs are frozen dataclasses that round-trip through
plain dicts, so they can be written to ``world.json`` or read from TOML.

Example:
    >>> from acctgraph.synth.config import preset, WorldConfig
    >>> cfg = preset("default", scale=0.01)
    >>> cfg.legit_accounts, [c.accounts for c in cfg.campaigns]
    (9760, [140, 70, 30])
    >>> WorldConfig.from_dict(cfg.to_dict()) == cfg
    True
    >>> preset("evasive", scale=0.01).campaigns[0].evasion.paraphrase
    True
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
from dataclasses import dataclass, field, fields
from typing import Any

from acctgraph.errors import ConfigError

#: Prompt template sets a campaign can draw from (see :mod:`acctgraph.synth.vocab`).
CAMPAIGN_TEMPLATES: tuple[str, ...] = (
    "cot-math", "cot-science", "cot-logic", "code-implement", "code-review",
    "agent-tools", "agent-browser", "sensitive-rewrite", "sensitive-compare",
)
PAYMENT_MODES: tuple[str, ...] = ("shared", "virtual", "mixed")
PROXY_MODES: tuple[str, ...] = ("residential", "vpn", "mixed")


@dataclass(frozen=True)
class Evasion:
    """Evasion knobs of one campaign; each makes one coordination layer harder to see.

    Attributes:
        unique_cards: one payment card per account, BINs from the claimed country's
            ordinary banks, added at scattered times (no card sharing, no BIN burst).
        proxy_rotation: a fresh residential-proxy address for almost every burst,
            spread over thousands of /24s (few repeated IPs, no per-worker pools).
        paraphrase: heavy paraphrasing of the templates: synonym swaps, reordered
            sentences, varied wrappers and casual noise.
        human_timing: jittered, session-like activity following a diurnal rhythm in
            the claimed time zone; no synchronised bursts, no regular intervals.
        spread_creation: accounts created over months before and during the window
            instead of in a few batches of hours.
        slow_switch: moves to the newly released model gradually over a week.
        mimic_ua: browser-like user agents drawn from the legitimate distribution.
    """

    unique_cards: bool = False
    proxy_rotation: bool = False
    paraphrase: bool = False
    human_timing: bool = False
    spread_creation: bool = False
    slow_switch: bool = False
    mimic_ua: bool = False

    @classmethod
    def all_on(cls) -> Evasion:
        """Every knob on."""
        return cls(**{f.name: True for f in fields(cls)})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Evasion:
        d = dict(d or {})
        _check_keys(cls, d, "evasion")
        for k, v in d.items():
            if not isinstance(v, bool):
                raise ConfigError(f"evasion.{k} must be true or false, got {v!r}")
        return cls(**d)


@dataclass(frozen=True)
class CampaignConfig:
    """One distillation campaign.

    Attributes:
        name: campaign name, written to ``labels.campaign`` and ``labels.population``.
        accounts: number of accounts the campaign controls.
        requests: total requests the campaign sends in the window (approximate).
        templates: prompt template sets used (from ``CAMPAIGN_TEMPLATES``).
        start_day: window day on which the campaign starts sending (0 = first day).
        creation_batches: number of account-creation batches (ignored with
            ``evasion.spread_creation``).
        batch_hours: how long one creation batch lasts, in hours.
        payment: ``shared`` (many accounts per card), ``virtual`` (mass-produced
            virtual cards, unique per account, same BINs, added in bursts) or
            ``mixed`` (small groups of accounts per card).
        accounts_per_card: mean accounts per card for ``shared`` and ``mixed``.
        free_share: share of accounts without any payment instrument.
        proxy: ``residential`` (residential-proxy pool), ``vpn`` (commercial VPN
            exits shared with ordinary VPN users) or ``mixed``.
        ips_per_account: size of the residential-proxy pool per account.
        operator_utc_offset: time zone (hours from UTC) the operators work in.
        claimed_countries: countries the accounts claim at sign-up (ISO-2).
        own_domains: number of e-mail domains the campaign registered itself.
        webmail_share: share of accounts signing up with big webmail providers.
        user_agents: scripted user agents of the campaign's clients.
        workers: number of worker pools; accounts in one pool fire in the same minutes.
        burst_requests: requests one account sends in one burst.
        interval_seconds: mean seconds between requests inside a burst.
        output_tokens: median output tokens per request (reasoning traces are long).
        evasion: evasion knobs (see :class:`Evasion`).
    """

    name: str
    accounts: int
    requests: int
    templates: tuple[str, ...] = ("cot-math", "cot-logic")
    start_day: float = 0.0
    creation_batches: int = 4
    batch_hours: float = 6.0
    payment: str = "shared"
    accounts_per_card: float = 40.0
    free_share: float = 0.1
    proxy: str = "mixed"
    ips_per_account: float = 2.0
    operator_utc_offset: float = 8.0
    claimed_countries: tuple[str, ...] = ("US", "GB", "SG", "CA", "AU", "DE")
    own_domains: int = 6
    webmail_share: float = 0.6
    user_agents: tuple[str, ...] = ("python-httpx/0.27.0",)
    workers: int = 40
    burst_requests: int = 20
    interval_seconds: float = 6.0
    output_tokens: int = 1200
    evasion: Evasion = field(default_factory=Evasion)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("templates", "claimed_countries", "user_agents"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CampaignConfig:
        d = dict(d)
        _check_keys(cls, d, "campaign")
        if "name" not in d:
            raise ConfigError("every campaign needs a name")
        for k in ("templates", "claimed_countries", "user_agents"):
            if k in d:
                if isinstance(d[k], str) or not isinstance(d[k], (list, tuple)):
                    raise ConfigError(f"campaign {d['name']}: {k} must be a list of strings")
                d[k] = tuple(d[k])
        if "evasion" in d:
            ev = d["evasion"]
            d["evasion"] = ev if isinstance(ev, Evasion) else Evasion.from_dict(ev)
        c = cls(**d)
        c.validate()
        return c

    def scaled(self, accounts: int, requests: int) -> CampaignConfig:
        return dataclasses.replace(self, accounts=accounts, requests=requests)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        p = f"campaign {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip() or "," in self.name:
            raise ConfigError(f"campaign name must be a non-empty string without commas, got {self.name!r}")
        _int(self.accounts, f"{p}: accounts", 1)
        _int(self.requests, f"{p}: requests", 0)
        if not self.templates:
            raise ConfigError(f"{p}: templates must name at least one of {', '.join(CAMPAIGN_TEMPLATES)}")
        bad = [t for t in self.templates if t not in CAMPAIGN_TEMPLATES]
        if bad:
            raise ConfigError(f"{p}: unknown template set {bad[0]!r}; choose from {', '.join(CAMPAIGN_TEMPLATES)}")
        _num(self.start_day, f"{p}: start_day", 0.0)
        _int(self.creation_batches, f"{p}: creation_batches", 1)
        _num(self.batch_hours, f"{p}: batch_hours", 0.1, 24 * 30)
        if self.payment not in PAYMENT_MODES:
            raise ConfigError(f"{p}: payment must be one of {', '.join(PAYMENT_MODES)}, got {self.payment!r}")
        _num(self.accounts_per_card, f"{p}: accounts_per_card", 1.0)
        _num(self.free_share, f"{p}: free_share", 0.0, 1.0)
        if self.proxy not in PROXY_MODES:
            raise ConfigError(f"{p}: proxy must be one of {', '.join(PROXY_MODES)}, got {self.proxy!r}")
        _num(self.ips_per_account, f"{p}: ips_per_account", 0.01, 1000)
        _num(self.operator_utc_offset, f"{p}: operator_utc_offset", -12.0, 14.0)
        if not self.claimed_countries:
            raise ConfigError(f"{p}: claimed_countries must not be empty")
        from acctgraph.synth.vocab import COUNTRY_INDEX
        bad = [c for c in self.claimed_countries if c not in COUNTRY_INDEX]
        if bad:
            raise ConfigError(f"{p}: unknown country {bad[0]!r}; use ISO-2 codes such as US, GB, SG")
        _int(self.own_domains, f"{p}: own_domains", 1)
        _num(self.webmail_share, f"{p}: webmail_share", 0.0, 1.0)
        if not self.user_agents or not all(isinstance(u, str) and u for u in self.user_agents):
            raise ConfigError(f"{p}: user_agents must be a non-empty list of strings")
        _int(self.workers, f"{p}: workers", 1)
        _int(self.burst_requests, f"{p}: burst_requests", 1, 10_000)
        _num(self.interval_seconds, f"{p}: interval_seconds", 0.05, 3600.0)
        _int(self.output_tokens, f"{p}: output_tokens", 1, 100_000)
        if not isinstance(self.evasion, Evasion):
            raise ConfigError(f"{p}: evasion must be an Evasion")


@dataclass(frozen=True)
class WorldConfig:
    """A whole world. Counts are absolute; see :func:`preset` for scaled designs.

    Attributes:
        legit_accounts: legitimate accounts in total (individuals are what remains
            after the named hard-negative populations below).
        legit_requests: requests sent by all legitimate accounts together (approximate).
        big_company: employees of the large company (``company-0``) behind a few NAT IPs.
        small_companies: number of smaller companies (``company-1`` ...).
        small_company_accounts: accounts across all smaller companies.
        universities: number of universities (``university-0`` ...).
        university_accounts: students across all universities.
        cgnat_accounts: mobile users behind carrier-grade NAT (``cgnat-user``).
        vpn_accounts: ordinary users of commercial VPNs the campaigns also use (``vpn-user``).
        solo_bots: single automated accounts (``solo-bot``).
        family_accounts: accounts in families sharing a card and a home IP (``family``).
        early_adopters: users switching to the new model on release day (``early-adopter``).
        days: length of the window in days.
        release_day: window day on which the new model is released.
        start: first day of the window (ISO date, UTC midnight).
        models: (older small model, current flagship, new release).
        ipv6_share: share of residential users on IPv6.
        chunk_rows: target rows per written requests chunk (also the memory bound).
        campaigns: the distillation campaigns.
    """

    legit_accounts: int = 976_000
    legit_requests: int = 3_700_000
    big_company: int = 5_000
    small_companies: int = 12
    small_company_accounts: int = 4_000
    universities: int = 6
    university_accounts: int = 8_000
    cgnat_accounts: int = 30_000
    vpn_accounts: int = 20_000
    solo_bots: int = 1_500
    family_accounts: int = 6_000
    early_adopters: int = 2_000
    days: int = 56
    release_day: int = 35
    start: str = "2026-01-05"
    models: tuple[str, str, str] = ("lumen-mini-1", "lumen-2", "lumen-3")
    ipv6_share: float = 0.12
    chunk_rows: int = 1_000_000
    campaigns: tuple[CampaignConfig, ...] = ()

    # ------------------------------------------------------------ dict round trip
    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["models"] = list(self.models)
        d["campaigns"] = [c.to_dict() for c in self.campaigns]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorldConfig:
        """Build and validate a config from a plain dict (e.g. a TOML table)."""
        d = dict(d)
        _check_keys(cls, d, "world")
        if "models" in d:
            if isinstance(d["models"], str) or len(d["models"]) != 3:
                raise ConfigError("models must list exactly three names: small, flagship, new release")
            d["models"] = tuple(d["models"])
        if "campaigns" in d:
            d["campaigns"] = tuple(c if isinstance(c, CampaignConfig) else CampaignConfig.from_dict(c)
                                   for c in d["campaigns"])
        cfg = cls(**d)
        cfg.validate()
        return cfg

    # ------------------------------------------------------------ validation
    @property
    def start_date(self) -> _dt.datetime:
        return _dt.datetime.combine(_dt.date.fromisoformat(self.start), _dt.time(), tzinfo=_dt.timezone.utc)

    def hard_negative_accounts(self) -> int:
        return (self.big_company + self.small_company_accounts + self.university_accounts
                + self.cgnat_accounts + self.vpn_accounts + self.solo_bots + self.family_accounts
                + self.early_adopters)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        _int(self.legit_accounts, "legit_accounts", 1)
        _int(self.legit_requests, "legit_requests", 0)
        _int(self.big_company, "big_company", 0)
        _int(self.small_companies, "small_companies", 0)
        _int(self.small_company_accounts, "small_company_accounts", 0)
        if self.small_company_accounts and self.small_company_accounts < 2 * self.small_companies:
            raise ConfigError("small_company_accounts must be at least 2 per small company "
                              f"({self.small_companies} companies, {self.small_company_accounts} accounts)")
        if self.small_company_accounts and not self.small_companies:
            raise ConfigError("small_company_accounts > 0 needs small_companies >= 1")
        _int(self.universities, "universities", 0)
        _int(self.university_accounts, "university_accounts", 0)
        if self.university_accounts and self.university_accounts < 5 * self.universities:
            raise ConfigError("university_accounts must be at least 5 per university "
                              f"({self.universities} universities, {self.university_accounts} accounts)")
        if self.university_accounts and not self.universities:
            raise ConfigError("university_accounts > 0 needs universities >= 1")
        for name in ("cgnat_accounts", "vpn_accounts", "solo_bots", "family_accounts", "early_adopters"):
            _int(getattr(self, name), name, 0)
        if self.hard_negative_accounts() > self.legit_accounts:
            raise ConfigError(f"the hard-negative populations ({self.hard_negative_accounts():,} accounts) "
                              f"exceed legit_accounts ({self.legit_accounts:,}); raise legit_accounts or shrink them "
                              "(preset(name, scale=...) gives consistent sizes)")
        _int(self.days, "days", 2, 3650)
        _int(self.release_day, "release_day", 1)
        if self.release_day >= self.days:
            raise ConfigError(f"release_day ({self.release_day}) must fall inside the window of {self.days} days")
        try:
            self.start_date
        except (TypeError, ValueError):
            raise ConfigError(f"start must be an ISO date such as 2026-01-05, got {self.start!r}") from None
        if len(self.models) != 3 or len(set(self.models)) != 3 or not all(
                isinstance(m, str) and m for m in self.models):
            raise ConfigError("models must be three distinct names: small, flagship, new release")
        _num(self.ipv6_share, "ipv6_share", 0.0, 1.0)
        _int(self.chunk_rows, "chunk_rows", 10_000)
        names = [c.name for c in self.campaigns]
        if len(set(names)) != len(names):
            raise ConfigError("campaign names must be unique")
        for c in self.campaigns:
            if not isinstance(c, CampaignConfig):
                raise ConfigError("campaigns must be CampaignConfig objects or tables")
            c.validate()
            if c.start_day >= self.days:
                raise ConfigError(f"campaign {c.name!r}: start_day ({c.start_day}) must fall inside the window "
                                  f"of {self.days} days")


# ---------------------------------------------------------------- helpers
def _check_keys(cls: type, d: dict[str, Any], what: str) -> None:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"unknown {what} setting {unknown[0]!r}; valid settings are {', '.join(sorted(known))}")


def _int(v: Any, name: str, lo: int, hi: int | None = None) -> None:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{name} must be an integer, got {v!r}")
    if v < lo or (hi is not None and v > hi):
        rng = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise ConfigError(f"{name} must be {rng}, got {v}")


def _num(v: Any, name: str, lo: float, hi: float | None = None) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{name} must be a number, got {v!r}")
    if v < lo or (hi is not None and v > hi):
        rng = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise ConfigError(f"{name} must be {rng}, got {v}")


# ---------------------------------------------------------------- presets
def default_campaigns() -> tuple[CampaignConfig, ...]:
    """The three campaigns of the default design, at scale 1.0. They differ on purpose."""
    return (
        CampaignConfig(
            name="cot-harvest", accounts=14_000, requests=13_000_000,
            templates=("cot-math", "cot-science", "cot-logic", "code-implement"),
            start_day=2.0, creation_batches=6, batch_hours=5.0, payment="shared",
            accounts_per_card=60.0, free_share=0.05, proxy="mixed", ips_per_account=1.5,
            operator_utc_offset=8.0, claimed_countries=("US", "GB", "SG", "CA", "AU", "DE", "JP"),
            own_domains=8, webmail_share=0.7,
            user_agents=("python-httpx/0.27.0", "python-requests/2.31.0", "aiohttp/3.9.5"),
            workers=60, burst_requests=24, interval_seconds=5.0, output_tokens=1800),
        CampaignConfig(
            name="agent-distill", accounts=7_000, requests=3_400_000,
            templates=("agent-tools", "agent-browser", "code-review", "code-implement"),
            start_day=9.0, creation_batches=3, batch_hours=8.0, payment="virtual",
            accounts_per_card=1.0, free_share=0.0, proxy="residential", ips_per_account=3.0,
            operator_utc_offset=3.0, claimed_countries=("US", "NL", "FR", "JP", "KR", "BR"),
            own_domains=20, webmail_share=0.35,
            user_agents=("node-fetch/1.0", "axios/1.6.8", "undici"),
            workers=25, burst_requests=12, interval_seconds=9.0, output_tokens=900),
        CampaignConfig(
            name="policy-probe", accounts=3_000, requests=150_000,
            templates=("sensitive-rewrite", "sensitive-compare", "cot-logic"),
            start_day=14.0, creation_batches=10, batch_hours=30.0, payment="mixed",
            accounts_per_card=5.0, free_share=0.3, proxy="vpn", ips_per_account=1.0,
            operator_utc_offset=8.0, claimed_countries=("US", "TW", "HK", "GB", "CA", "MY"),
            own_domains=3, webmail_share=0.85,
            user_agents=("python-requests/2.31.0", "curl/8.4.0"),
            workers=8, burst_requests=4, interval_seconds=40.0, output_tokens=700,
            evasion=Evasion(mimic_ua=True)),
    )


def _scaled(v: float, scale: float, lo: int = 0) -> int:
    return max(lo, int(round(v * scale)))


PRESETS: tuple[str, ...] = ("default", "evasive", "sample")


def preset(name: str = "default", scale: float = 1.0) -> WorldConfig:
    """A named world design at ``scale`` (1.0 = 1,000,000 accounts, ~20M requests).

    ``default``: three campaigns with their own styles; ``evasive``: the same with
    every evasion knob on for every campaign; ``sample``: a small fixed world
    (~4,000 legitimate accounts and 300/200/120 campaign accounts with fewer
    requests each) for the committed sample folder; ``scale`` is ignored.
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    if name == "sample":
        return _sample()
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) \
            or not 0.0005 <= scale <= 20:
        raise ConfigError(f"scale must be a number between 0.0005 and 20, got {scale!r}")
    base = WorldConfig()
    s = float(scale)
    univ_acc = _scaled(base.university_accounts, s)
    unis = max(1, min(base.universities, univ_acc // 30))
    small_acc = _scaled(base.small_company_accounts, s)
    smalls = max(1, min(base.small_companies, small_acc // 8))
    campaigns = tuple(c.scaled(_scaled(c.accounts, s, 5), _scaled(c.requests, s, 20))
                      for c in default_campaigns())
    campaigns = tuple(dataclasses.replace(c, workers=max(2, min(c.workers, c.accounts // 10)))
                      for c in campaigns)
    if name == "evasive":
        campaigns = tuple(dataclasses.replace(c, evasion=Evasion.all_on()) for c in campaigns)
    cfg = WorldConfig(
        legit_accounts=_scaled(base.legit_accounts, s, 200),
        legit_requests=_scaled(base.legit_requests, s, 500),
        big_company=_scaled(base.big_company, s, 10),
        small_companies=smalls, small_company_accounts=max(small_acc, 2 * smalls),
        universities=unis, university_accounts=max(univ_acc, 5 * unis),
        cgnat_accounts=_scaled(base.cgnat_accounts, s, 10),
        vpn_accounts=_scaled(base.vpn_accounts, s, 10),
        solo_bots=_scaled(base.solo_bots, s, 3),
        family_accounts=_scaled(base.family_accounts, s, 6),
        early_adopters=_scaled(base.early_adopters, s, 5),
        chunk_rows=max(10_000, min(1_000_000, _scaled(20_000_000, s) // 8)),
        campaigns=campaigns)
    cfg.validate()
    return cfg


def _sample() -> WorldConfig:
    base = default_campaigns()
    sizes = ((300, 45_000), (200, 14_000), (120, 1_500))
    campaigns = tuple(dataclasses.replace(c, accounts=a, requests=r, workers=max(2, a // 25))
                      for c, (a, r) in zip(base, sizes))
    cfg = WorldConfig(
        legit_accounts=4_000, legit_requests=18_000, big_company=150, small_companies=3,
        small_company_accounts=60, universities=2, university_accounts=160, cgnat_accounts=150,
        vpn_accounts=120, solo_bots=8, family_accounts=40, early_adopters=30,
        chunk_rows=100_000, campaigns=campaigns)
    cfg.validate()
    return cfg
