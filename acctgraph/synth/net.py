"""The address plan of a synthetic world, IP formatting, and the ``ip_info`` table.

Addresses are handled as two uint64 arrays per request: ``hi`` (0 for IPv4) and
``lo`` (the IPv4 value, or the low 64 bits of an IPv6 address). Every network
(ISP, mobile carrier, cloud, VPN provider, datacenter proxy, business,
university) is a block with an ASN, organisation and kind; only part of them
is published in ``ip_info``, as with real IP intelligence.

Example:
    >>> import numpy as np
    >>> format_ips(np.array([0, 0x2a021234abcd0100], dtype=np.uint64),
    ...            np.array([0xC0A80001, 0x1111222233334444], dtype=np.uint64)).to_pylist()
    ['192.168.0.1', '2a02:1234:abcd:100:1111:2222:3333:4444']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from acctgraph.synth import vocab

_HALF = pa.array([f"{i >> 8}.{i & 255}" for i in range(65536)], pa.string())
_HEX = pa.array([format(i, "x") for i in range(65536)], pa.string())

KINDS = ("residential", "mobile", "datacenter", "vpn", "proxy", "business", "education")

_CLOUDS = ("Nimbus Cloud", "Stratus Compute", "Hostwerk GmbH", "OceanDrop Hosting", "Cirrus Networks",
           "Vaultline Datacenters", "Kumo Cloud KK", "Polar Servers AB")
VPN_PROVIDERS = ("ShieldVPN", "NordLight VPN", "Surfy VPN", "PrivaTunnel", "ExpressHop", "MullWall VPN")
_DC_PROXIES = ("RotaProxy Ltd", "DCProxies Hosting", "ProxyFarm LLC")


def format_v4(v: np.ndarray) -> pa.Array:
    """IPv4 integers -> dotted-quad text."""
    v = np.asarray(v, dtype=np.uint64)
    return pc.binary_join_element_wise(_HALF.take((v >> np.uint64(16)).astype(np.int64)),
                                       _HALF.take((v & np.uint64(0xFFFF)).astype(np.int64)), ".")


def format_v6(hi: np.ndarray, lo: np.ndarray) -> pa.Array:
    """IPv6 (hi, lo) with every 16-bit group non-zero -> canonical RFC 5952 text."""
    groups = []
    for word in (np.asarray(hi, dtype=np.uint64), np.asarray(lo, dtype=np.uint64)):
        for shift in (48, 32, 16, 0):
            groups.append(_HEX.take(((word >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.int64)))
    return pc.binary_join_element_wise(*groups, ":")


def format_ips(hi: np.ndarray, lo: np.ndarray) -> pa.Array:
    """Mixed IPv4 (hi == 0) / IPv6 addresses -> text, in input order."""
    hi = np.asarray(hi, dtype=np.uint64)
    lo = np.asarray(lo, dtype=np.uint64)
    v6 = hi != 0
    if not v6.any():
        return format_v4(lo)
    if v6.all():
        return format_v6(hi, lo)
    i4, i6 = np.flatnonzero(~v6), np.flatnonzero(v6)
    both = pa.concat_arrays([format_v4(lo[i4]), format_v6(hi[i6], lo[i6])])
    inv = np.empty(len(hi), dtype=np.int64)
    inv[np.concatenate([i4, i6])] = np.arange(len(hi))
    return both.take(inv)


def nonzero_groups(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Replace zero 16-bit groups of uint64 values by random non-zero ones (keeps v6 text canonical)."""
    x = np.asarray(x, dtype=np.uint64).copy()
    for shift in (0, 16, 32, 48):
        s = np.uint64(shift)
        g = (x >> s) & np.uint64(0xFFFF)
        z = g == 0
        if z.any():
            fill = rng.integers(1, 0x10000, size=int(z.sum())).astype(np.uint64)
            x[z] |= fill << s
    return x


@dataclass
class Block:
    """One network: an IPv4 prefix (``bits`` = 16 or 24) or an IPv6 /32 (``v6``)."""

    base: int
    bits: int
    asn: int
    org: str
    kind: str
    country: str
    listed_kind: str | None  # kind published in ip_info; None = not published
    v6: bool = False


@dataclass
class NetPlan:
    """Every network of the world and the pools populations draw addresses from."""

    rng: np.random.Generator
    blocks: list[Block] = field(default_factory=list)
    isp16: dict[int, np.ndarray] = field(default_factory=dict)      # country -> ISP /16 bases
    mobile16: dict[int, np.ndarray] = field(default_factory=dict)   # country -> carrier /16 bases
    isp6: dict[int, np.ndarray] = field(default_factory=dict)       # country -> ISP /32 prefixes (hi 32 bits)
    mobile6: dict[int, np.ndarray] = field(default_factory=dict)
    cloud_ips: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    vpn_exits: dict[str, np.ndarray] = field(default_factory=dict)  # provider -> exit addresses
    dcproxy_exits: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))

    # ------------------------------------------------------------ construction
    @classmethod
    def build(cls, rng: np.random.Generator, scale_accounts: int) -> NetPlan:
        """Allocate networks for a world of about ``scale_accounts`` accounts."""
        plan = cls(rng)
        plan._free16 = plan._candidate_16s()
        plan._asns = iter(rng.permutation(np.arange(2_000, 64_000))[:5_000].tolist())
        weights = np.array([c.weight for c in vocab.COUNTRIES])
        n16 = int(np.clip(scale_accounts / 4_000, 60, 360))
        per_country = np.maximum(1, np.round(weights / weights.sum() * n16)).astype(int)
        for ci, c in enumerate(vocab.COUNTRIES):
            isps = 1 + min(3, per_country[ci] // 2)
            bases, v6s = [], []
            for k in range(isps):
                asn, org = next(plan._asns), f"{c.code} {('Telecom', 'Broadband', 'Fiber', 'Cable')[k]}"
                nblk = max(1, per_country[ci] // isps)
                for _ in range(nblk):
                    listed = "residential" if rng.random() < 0.5 else None
                    bases.append(plan._add16(asn, org, "residential", c.code, listed))
                v6s.append(plan._add6(asn, org, "residential", c.code, 0.4))
            plan.isp16[ci] = np.array(bases, dtype=np.uint64)
            plan.isp6[ci] = np.array(v6s, dtype=np.uint64)
            mb, m6 = [], []
            for k in range(1 + (per_country[ci] > 6)):
                asn, org = next(plan._asns), f"{c.code} {('Mobile', 'Cellular')[k]}"
                mb.append(plan._add16(asn, org, "mobile", c.code, "mobile" if rng.random() < 0.6 else None))
                m6.append(plan._add6(asn, org, "mobile", c.code, 0.3))
            plan.mobile16[ci] = np.array(mb, dtype=np.uint64)
            plan.mobile6[ci] = np.array(m6, dtype=np.uint64)
        # clouds: whole /16s, mostly published
        cloud = []
        for org in _CLOUDS:
            asn = next(plan._asns)
            for _ in range(int(rng.integers(2, 6))):
                listed = "datacenter" if rng.random() < 0.95 else None
                base = plan._add16(asn, org, "datacenter", "US", listed)
                cloud.append(base + rng.integers(256, 65_280, size=400).astype(np.uint64))
        plan.cloud_ips = np.unique(np.concatenate(cloud))
        # VPN providers: /24s rented inside hosting space; mostly published, some as plain datacenter
        n24 = int(np.clip(scale_accounts / 40_000, 3, 30))
        for org in VPN_PROVIDERS:
            asn = next(plan._asns)
            exits = []
            host16 = plan._take16()
            for j in rng.choice(256, size=n24, replace=False):
                r = rng.random()
                listed = "vpn" if r < 0.8 else ("datacenter" if r < 0.9 else None)
                base = plan._add24(host16 + (int(j) << 8), asn, org, "vpn", "NL", listed)
                exits.append(base + rng.choice(np.arange(2, 254), size=24, replace=False).astype(np.uint64))
            plan.vpn_exits[org] = np.concatenate(exits)
        dcp = []
        for org in _DC_PROXIES:
            asn = next(plan._asns)
            host16 = plan._take16()
            for j in rng.choice(256, size=max(2, n24 // 2), replace=False):
                base = plan._add24(host16 + (int(j) << 8), asn, org, "proxy", "US",
                                   "proxy" if rng.random() < 0.7 else None)
                dcp.append(base + rng.choice(np.arange(2, 254), size=32, replace=False).astype(np.uint64))
        plan.dcproxy_exits = np.concatenate(dcp)
        return plan

    @staticmethod
    def _candidate_16s() -> list[int]:
        reserved_a = {0, 10, 100, 127, 169, 172, 192, 198, 203} | set(range(224, 256))
        return [(a << 8) | b for a in range(1, 224) if a not in reserved_a for b in range(256)]

    def _take16(self) -> int:
        i = int(self.rng.integers(0, len(self._free16)))
        v = self._free16[i]
        self._free16[i] = self._free16[-1]
        self._free16.pop()
        return v << 16

    def _add16(self, asn: int, org: str, kind: str, country: str, listed: str | None) -> int:
        base = self._take16()
        self.blocks.append(Block(base, 16, asn, org, kind, country, listed))
        return base

    def _add24(self, base: int, asn: int, org: str, kind: str, country: str, listed: str | None) -> int:
        self.blocks.append(Block(base, 24, asn, org, kind, country, listed))
        return base

    def _add6(self, asn: int, org: str, kind: str, country: str, p_listed: float) -> int:
        first = int(self.rng.choice([0x2001, 0x2003, 0x2400, 0x2600, 0x2601, 0x2607, 0x2804, 0x2a00,
                                     0x2a01, 0x2a02, 0x2a05, 0x2c0f]))
        prefix = (first << 16) | int(self.rng.integers(0x100, 0x10000))
        self.blocks.append(Block(prefix, 32, asn, org, kind, country,
                                 kind if self.rng.random() < p_listed else None, v6=True))
        return prefix

    def business_block(self, org: str, country: str, kind: str = "business", p_listed: float = 0.4) -> int:
        """A fresh /24 for a company (kind ``business``) inside its own /16."""
        asn = next(self._asns)
        base = self._take16() + (int(self.rng.integers(0, 256)) << 8)
        return self._add24(base, asn, org, kind, country, kind if self.rng.random() < p_listed else None)

    def campus_block(self, org: str, country: str) -> int:
        asn = next(self._asns)
        return self._add16(asn, org, "education", country, "education" if self.rng.random() < 0.8 else None)

    # ------------------------------------------------------------ address draws
    def home_v4(self, country: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A residential IPv4 address in the account's country."""
        return self._in16(self.isp16, country, rng)

    def mobile_v4(self, country: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self._in16(self.mobile16, country, rng)

    def _in16(self, table: dict[int, np.ndarray], country: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        def draw(bases: np.ndarray, k: int) -> np.ndarray:
            return bases[rng.integers(0, len(bases), size=k)] + host16(k, rng)

        return per_country(table, country, draw)

    def home_v6_prefix(self, country: np.ndarray, rng: np.random.Generator, mobile: bool = False) -> np.ndarray:
        """A /64 prefix (the ``hi`` word) under the country's ISP (or carrier) /32."""
        def draw(prefixes: np.ndarray, k: int) -> np.ndarray:
            return (prefixes[rng.integers(0, len(prefixes), size=k)] << np.uint64(32)) | \
                rng.integers(0x10001, 0xFFFFFFFF, size=k).astype(np.uint64)

        return nonzero_groups(per_country(self.mobile6 if mobile else self.isp6, country, draw), rng)

    def ip_info(self) -> pa.Table:
        """The published part of the address plan."""
        rows = [b for b in self.blocks if b.listed_kind]
        nets = []
        for b in rows:
            if b.v6:
                nets.append(f"{b.base >> 16:x}:{b.base & 0xFFFF:x}::/32")
            else:
                nets.append(f"{b.base >> 24}.{(b.base >> 16) & 255}.{(b.base >> 8) & 255}.0/{b.bits}")
        order = self.rng.permutation(len(rows))
        return pa.table({
            "network": pa.array([nets[i] for i in order], pa.string()),
            "asn": pa.array([rows[i].asn for i in order], pa.int64()),
            "org": pa.array([rows[i].org for i in order], pa.string()),
            "kind": pa.array([rows[i].listed_kind for i in order], pa.string()),
        })


def per_country(table: dict[int, np.ndarray], country: np.ndarray,
                draw: Callable[[np.ndarray, int], np.ndarray]) -> np.ndarray:
    """One address per account: ``draw(table[c], k)`` for the k accounts of each country c.

    Countries are drawn in ascending order, so the random draws (and the world) depend only on the seed.
    """
    country = np.asarray(country, dtype=np.int64)
    out = np.zeros(len(country), dtype=np.uint64)
    for c in np.unique(country):
        m = country == c
        out[m] = draw(table[int(c)], int(m.sum()))
    return out


def host16(k: int, rng: np.random.Generator) -> np.ndarray:
    """Host parts inside a /16, avoiding .0 and .255 last octets."""
    return ((rng.integers(0, 256, size=k) << 8) | rng.integers(1, 255, size=k)).astype(np.uint64)


def iid(k: int, rng: np.random.Generator) -> np.ndarray:
    """Random IPv6 interface identifiers (privacy addresses) with non-zero groups."""
    return nonzero_groups(rng.integers(0, np.iinfo(np.int64).max, size=k, dtype=np.int64).astype(np.uint64)
                          | (rng.integers(0, 2, size=k).astype(np.uint64) << np.uint64(63)), rng)
