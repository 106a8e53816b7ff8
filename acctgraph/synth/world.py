"""Build a whole synthetic world and write its tables.

:func:`generate_world` plans every population and campaign (accounts, payments,
behaviour), writes the small tables, then streams the requests table in chunks:
each chunk holds a shard of the accounts of *every* population (so row order
says nothing about who is who), sorted by time. Randomness comes from one
:class:`numpy.random.SeedSequence` per population (keyed by its name) and per
chunk, so the same seed and config give byte-identical files.

Example:
    >>> import tempfile
    >>> from acctgraph.synth import generate_world, preset
    >>> s = generate_world(tempfile.mkdtemp(), config=preset("default", scale=0.002), seed=1, quiet=True)
    >>> s.counts["accounts"] == sum(s.populations.values())
    True
"""

from __future__ import annotations

import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from acctgraph._version import __version__
from acctgraph.errors import ConfigError
from acctgraph.io.atomic import atomic_parquet_writer, atomic_path, write_json_atomic
from acctgraph.progress import progress
from acctgraph.synth import campaigns as _campaigns
from acctgraph.synth import populations as P
from acctgraph.synth import vocab
from acctgraph.synth.config import WorldConfig, preset
from acctgraph.synth.groups import Bins, Group, Payments, Registry, World
from acctgraph.synth.net import NetPlan, format_ips
from acctgraph.synth.timing import US_PER_S, Calendar

FORMATS = ("parquet", "csv")
TABLES = ("accounts", "requests", "payments", "ip_info", "labels")
_TS = pa.timestamp("us", tz="UTC")

SCHEMAS: dict[str, pa.Schema] = {
    "accounts": pa.schema([("account_id", pa.string()), ("created_at", _TS), ("country", pa.string()),
                           ("email_domain", pa.string())]),
    "requests": pa.schema([("account_id", pa.string()), ("ts", _TS), ("ip", pa.string()), ("model", pa.string()),
                           ("prompt", pa.string()), ("user_agent", pa.string()), ("input_tokens", pa.int64()),
                           ("output_tokens", pa.int64())]),
    "payments": pa.schema([("account_id", pa.string()), ("instrument_id", pa.string()), ("bin", pa.string()),
                           ("ts", _TS), ("billing_country", pa.string())]),
    "ip_info": pa.schema([("network", pa.string()), ("asn", pa.int64()), ("org", pa.string()),
                          ("kind", pa.string())]),
    "labels": pa.schema([("account_id", pa.string()), ("campaign", pa.string()), ("population", pa.string())]),
}


@dataclass(frozen=True)
class WorldSummary:
    """What :func:`generate_world` wrote.

    Attributes:
        out_dir: the output folder.
        counts: rows per table.
        populations: accounts per population label (legitimate groups and campaigns).
        campaigns: campaign name -> (accounts, requests).
        seconds: wall time of the run.
        seed: the seed used.
        files: table name -> file written.
    """

    out_dir: Path
    counts: dict[str, int]
    populations: dict[str, int]
    campaigns: dict[str, tuple[int, int]]
    seconds: float
    seed: int = 0
    files: dict[str, Path] = field(default_factory=dict)


# ---------------------------------------------------------------- randomness
def _key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def _rng(seed: int, name: str, *sub: int) -> np.random.Generator:
    """An independent stream for ``name`` (and optional sub-keys such as a chunk number)."""
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(_key(name), *sub)))


# ---------------------------------------------------------------- planning
def _partition(total: int, k: int, rng: np.random.Generator, minimum: int, sigma: float = 0.8) -> np.ndarray:
    if k == 0:
        return np.zeros(0, np.int64)
    w = rng.lognormal(0, sigma, k)
    return minimum + rng.multinomial(total - k * minimum, w / w.sum())


def plan_world(cfg: WorldConfig, seed: int) -> tuple[World, list[Group]]:
    """Every population's accounts and behaviour (no requests yet)."""
    cal = Calendar(cfg.start, cfg.days, cfg.release_day)
    w = World(cal=cal, net=NetPlan.build(_rng(seed, "net"), cfg.legit_accounts), bins=Bins(_rng(seed, "bins")),
              domains=Registry(), uas=Registry(), models=cfg.models, ipv6_share=cfg.ipv6_share)
    n_ind = cfg.legit_accounts - cfg.hard_negative_accounts()
    rw = P.REQUEST_WEIGHT
    sizes = {"individual": n_ind, "early-adopter": cfg.early_adopters,
             "company": cfg.big_company + cfg.small_company_accounts, "university": cfg.university_accounts,
             "cgnat-user": cfg.cgnat_accounts, "vpn-user": cfg.vpn_accounts, "family": cfg.family_accounts,
             "solo-bot": cfg.solo_bots}
    unit = cfg.legit_requests / max(sum(sizes[k] * rw[k] for k in sizes), 1)

    def budget(kind: str, n: int) -> int:
        return int(round(n * rw[kind] * unit))

    groups: list[Group] = []
    if n_ind:
        groups.append(P.individuals(w, n_ind, budget("individual", n_ind), _rng(seed, "individual")))
    if cfg.early_adopters:
        groups.append(P.early_adopters(w, cfg.early_adopters, budget("early-adopter", cfg.early_adopters),
                                       _rng(seed, "early-adopter")))
    if cfg.vpn_accounts:
        groups.append(P.vpn_users(w, cfg.vpn_accounts, budget("vpn-user", cfg.vpn_accounts), _rng(seed, "vpn-user")))
    if cfg.cgnat_accounts:
        groups.append(P.cgnat_users(w, cfg.cgnat_accounts, budget("cgnat-user", cfg.cgnat_accounts),
                                    _rng(seed, "cgnat-user")))
    if cfg.family_accounts:
        groups.append(P.families(w, cfg.family_accounts, budget("family", cfg.family_accounts), _rng(seed, "family")))
    if cfg.big_company:
        groups.append(P.company(w, 0, cfg.big_company, budget("company", cfg.big_company), _rng(seed, "company-0"),
                                offices=3 if cfg.big_company >= 300 else 1,
                                cards=max(2, min(8, cfg.big_company // 600 + 2))))
    sizes_c = _partition(cfg.small_company_accounts, cfg.small_companies, _rng(seed, "company-sizes"), 2)
    for i, n in enumerate(sizes_c, start=1):
        groups.append(P.company(w, i, int(n), budget("company", int(n)), _rng(seed, f"company-{i}"),
                                offices=1, cards=1 if n < 200 else 2))
    sizes_u = _partition(cfg.university_accounts, cfg.universities, _rng(seed, "university-sizes"), 5, 0.6)
    for i, n in enumerate(sizes_u):
        groups.append(P.university(w, i, int(n), budget("university", int(n)), _rng(seed, f"university-{i}")))
    if cfg.solo_bots:
        groups.append(P.solo_bots(w, cfg.solo_bots, budget("solo-bot", cfg.solo_bots), _rng(seed, "solo-bot")))
    for i, c in enumerate(cfg.campaigns):
        groups.append(_campaigns.build_campaign(w, c, i, _rng(seed, f"campaign/{c.name}")))
    off = 0
    for g in groups:
        g.offset = off
        off += g.n
    return w, groups


# ---------------------------------------------------------------- ids and formatting
_HEXCHARS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex_strings(v: np.ndarray, width: int) -> pa.Array:
    """uint64 values -> fixed-width lower-case hex strings, vectorised."""
    v = np.asarray(v, dtype=np.uint64)
    shifts = (np.arange(width - 1, -1, -1, dtype=np.uint64) * np.uint64(4))
    nib = ((v[:, None] >> shifts[None, :]) & np.uint64(0xF)).astype(np.int64)
    raw = np.ascontiguousarray(_HEXCHARS[nib]).view(f"S{width}").ravel()
    return pa.array(raw, pa.binary(width)).cast(pa.string())


def unique_ids(n: int, rng: np.random.Generator, bits: int = 48) -> np.ndarray:
    """``n`` distinct random ``bits``-bit integers."""
    ids = rng.integers(0, 1 << bits, size=n, dtype=np.int64).astype(np.uint64)
    while True:
        _, first = np.unique(ids, return_index=True)
        if len(first) == n:
            return ids
        dup = np.ones(n, bool)
        dup[first] = False
        ids[dup] = rng.integers(0, 1 << bits, size=int(dup.sum()), dtype=np.int64).astype(np.uint64)


def _ts(us: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(us, dtype=np.int64), pa.int64()).cast(_TS)


def _seconds(cal: Calendar, h: np.ndarray) -> np.ndarray:
    us = cal.start_us + np.round(np.asarray(h) * 3600.0).astype(np.int64) * US_PER_S
    return us


_COUNTRY_CODES = pa.array([c.code for c in vocab.COUNTRIES], pa.string())


# ---------------------------------------------------------------- writers
class _Out:
    """One output table in parquet or CSV, written atomically, in one or more pieces."""

    def __init__(self, dest: Path, schema: pa.Schema, fmt: str) -> None:
        self.dest, self.schema, self.fmt = dest, schema, fmt

    def __enter__(self) -> _Out:
        if self.fmt == "parquet":
            self._cm = atomic_parquet_writer(self.dest, self.schema)
            self._w = self._cm.__enter__()
        else:
            self._cm = atomic_path(self.dest)
            tmp = self._cm.__enter__()
            self._fh = open(tmp, "wb")
            self._w = pacsv.CSVWriter(self._fh, _csv_schema(self.schema))
        return self

    def write(self, table: pa.Table) -> None:
        table = table.select(self.schema.names).cast(self.schema)
        if self.fmt == "csv":
            table = _csv_table(table)
        self._w.write_table(table)

    def __exit__(self, *exc: Any) -> bool | None:
        if self.fmt == "csv":
            self._w.close()
            self._fh.close()
        return self._cm.__exit__(*exc)


def _csv_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([(f.name, pa.string() if pa.types.is_timestamp(f.type) else f.type) for f in schema])


def _csv_table(t: pa.Table) -> pa.Table:
    cols = []
    for f, col in zip(t.schema, t.columns):
        if pa.types.is_timestamp(f.type):
            col = pc.strftime(col, format="%Y-%m-%dT%H:%M:%SZ")
        cols.append(col)
    return pa.table(cols, names=t.schema.names)


def _write_one(out_dir: Path, name: str, table: pa.Table, fmt: str) -> Path:
    dest = out_dir / f"{name}.{fmt}"
    with _Out(dest, SCHEMAS[name], fmt) as o:
        o.write(table)
    return dest


# ---------------------------------------------------------------- requests
def _shards(g: Group, shard_rows: int, seed: int) -> list[np.ndarray]:
    """Split a group's accounts into shards of about ``shard_rows`` requests.

    The split depends only on the group itself, so a population's requests do
    not change when another population (or a campaign) is resized.
    """
    perm = _rng(seed, f"{g.key}/shards").permutation(g.n)
    nr = g.n_req[perm].astype(np.float64)
    tot = nr.sum()
    k = max(1, int(np.ceil(tot / shard_rows)))
    if tot == 0:
        return [perm]
    before = np.cumsum(nr) - nr
    shard = np.minimum((before * k / tot).astype(np.int64), k - 1)
    bounds = np.searchsorted(shard, np.arange(k + 1))
    return [perm[bounds[i]:bounds[i + 1]] for i in range(k)]


def _request_table(parts: list[dict[str, Any]], ids: pa.Array, models: pa.Array, uas: pa.Array) -> pa.Table:
    parts = [p for p in parts if len(p["acct"])]
    if not parts:
        return SCHEMAS["requests"].empty_table()

    def cat(name: str) -> np.ndarray:
        return np.concatenate([p[name] for p in parts])

    ts = cat("ts")
    order = np.argsort(ts, kind="stable")
    acct = cat("acct")[order]
    prompt = pa.concat_arrays([p["prompt"] for p in parts]).take(pa.array(order))
    return pa.table({
        "account_id": ids.take(pa.array(acct)),
        "ts": _ts(ts[order]),
        "ip": format_ips(cat("hi")[order], cat("lo")[order]),
        "model": models.take(pa.array(cat("model")[order].astype(np.int64))),
        "prompt": prompt,
        "user_agent": uas.take(pa.array(cat("ua")[order])),
        "input_tokens": pa.array(cat("in_tok")[order], pa.int64()),
        "output_tokens": pa.array(cat("out_tok")[order], pa.int64()),
    }, schema=SCHEMAS["requests"])


def _chunks(groups: list[Group], seed: int, chunk_rows: int) -> tuple[int, Iterator[list[dict[str, Any]]]]:
    """Plan the written chunks: each holds some shards of every large population, mixed and time-sorted."""
    total = int(sum(int(g.n_req.sum()) for g in groups))
    k = max(1, -(-total // chunk_rows))
    shard_rows = max(1_000, chunk_rows // 8)
    plan: list[list[tuple[Group, int, np.ndarray]]] = [[] for _ in range(k)]
    for g in groups:
        shards = _shards(g, shard_rows, seed)
        for j, idx in enumerate(shards):
            if len(idx):
                plan[min(k - 1, int((j + 0.5) * k / len(shards)))].append((g, j, idx))

    def gen() -> Iterator[list[dict[str, Any]]]:
        for parts in plan:
            yield [g.requests(idx, _rng(seed, f"{g.key}/requests", j)) for g, j, idx in parts]
    return k, gen()


# ---------------------------------------------------------------- entry point
def generate_world(out_dir: str | os.PathLike[str], config: WorldConfig | None = None, seed: int = 0,
                   fmt: str = "parquet", quiet: bool = False) -> WorldSummary:
    """Generate a world into ``out_dir``: accounts, requests, payments, ip_info, labels and world.json.

    ``config`` defaults to ``preset("default", scale=0.01)``. Files of the same
    tables in the other format are removed so the folder stays unambiguous.
    """
    t0 = time.perf_counter()
    cfg = preset("default", scale=0.01) if config is None else config
    if not isinstance(cfg, WorldConfig):
        raise ConfigError(f"config must be a WorldConfig, got {type(cfg).__name__}")
    cfg.validate()
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    other = "csv" if fmt == "parquet" else "parquet"
    for name in TABLES:
        (out / f"{name}.{other}").unlink(missing_ok=True)

    w, groups = plan_world(cfg, seed)
    cal = w.cal
    n = sum(g.n for g in groups)
    id_vals = unique_ids(n, _rng(seed, "account-ids"))
    ids = hex_strings(id_vals, 12)
    files: dict[str, Path] = {}

    # accounts and labels, ordered by id
    order = np.argsort(id_vals)
    created = np.concatenate([g.created_h for g in groups])
    country = np.concatenate([g.country for g in groups])
    email = np.concatenate([g.email for g in groups])
    label_names: list[str] = []
    label = np.concatenate([np.asarray(g.label) + _extend(label_names, g.label_names) for g in groups])
    camp_names = [c.name for c in cfg.campaigns]
    camp = np.concatenate([np.full(g.n, camp_names.index(g.campaign) if g.campaign else -1) for g in groups])
    ids_sorted = ids.take(pa.array(order))
    accounts = pa.table({
        "account_id": ids_sorted,
        "created_at": _ts(_seconds(cal, created[order])),
        "country": _COUNTRY_CODES.take(pa.array(country[order])),
        "email_domain": w.domains.array().take(pa.array(email[order])),
    })
    camp_arr = pa.array(np.asarray(camp_names + [""], dtype=object)[camp[order]], pa.string())
    labels = pa.table({
        "account_id": ids_sorted,
        "campaign": pc.if_else(pc.equal(camp_arr, ""), pa.scalar(None, pa.string()), camp_arr),
        "population": pa.array(label_names, pa.string()).take(pa.array(label[order])),
    })
    files["accounts"] = _write_one(out, "accounts", accounts, fmt)
    files["labels"] = _write_one(out, "labels", labels, fmt)

    # payments, ordered by time
    pay = Payments.concat([Payments(p.acct + g.offset, p.instrument, p.bin, p.ts_h, p.billing)
                           for g in groups for p in [g.payments]])
    porder = np.lexsort((pay.instrument, pay.acct, pay.ts_h))
    payments = pa.table({
        "account_id": ids.take(pa.array(pay.acct[porder])),
        "instrument_id": hex_strings(pay.instrument[porder], 16),
        "bin": w.bins.reg.array().take(pa.array(pay.bin[porder])),
        "ts": _ts(_seconds(cal, pay.ts_h[porder])),
        "billing_country": _COUNTRY_CODES.take(pa.array(pay.billing[porder])),
    })
    files["payments"] = _write_one(out, "payments", payments, fmt)

    # requests, streamed
    models = pa.array(list(cfg.models), pa.string())
    k, chunks = _chunks(groups, seed, cfg.chunk_rows)
    uas = w.uas.array()
    n_requests = 0
    per_group = {g.key: 0 for g in groups}
    dest = out / f"requests.{fmt}"
    with _Out(dest, SCHEMAS["requests"], fmt) as o, \
            progress(total=k, desc="generating requests", unit="chunk", quiet=quiet) as bar:
        for parts in chunks:
            table = _request_table(parts, ids, models, uas)
            o.write(table)
            n_requests += table.num_rows
            bar.update(1)
    files["requests"] = dest
    for g in groups:
        per_group[g.key] = int(g.n_req.sum())

    ip_info = w.net.ip_info()
    files["ip_info"] = _write_one(out, "ip_info", ip_info, fmt)

    counts = {"accounts": accounts.num_rows, "requests": n_requests, "payments": payments.num_rows,
              "ip_info": ip_info.num_rows, "labels": labels.num_rows}
    pops = {name: int(c) for name, c in zip(label_names, np.bincount(label, minlength=len(label_names)))}
    camps = {g.campaign: (g.n, per_group[g.key]) for g in groups if g.campaign}
    meta = {
        "acctgraph_version": __version__,
        "seed": seed,
        "format": fmt,
        "window": {"start": cal.start.isoformat().replace("+00:00", "Z"),
                   "end": _iso(cal.end_us), "release": _iso(cal.release_us)},
        "counts": counts,
        "populations": pops,
        "campaigns": {k2: {"accounts": a, "requests": r} for k2, (a, r) in camps.items()},
        "tables": {name: p.name for name, p in sorted(files.items())},
        "config": cfg.to_dict(),
    }
    write_json_atomic(out / "world.json", meta)
    return WorldSummary(out_dir=out, counts=counts, populations=pops, campaigns=camps,
                        seconds=time.perf_counter() - t0, seed=seed, files=files)


def _extend(names: list[str], new: list[str]) -> int:
    start = len(names)
    names.extend(new)
    return start


def _iso(us: int) -> str:
    import datetime as _dt
    return _dt.datetime.fromtimestamp(us / US_PER_S, tz=_dt.timezone.utc).isoformat().replace("+00:00", "Z")

