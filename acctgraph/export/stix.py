"""A STIX 2.1 bundle per packet (``stix.json``), for sharing with other providers.

Mapping (built with the ``stix2`` library, which validates every object):

==========================  ===============================================
STIX object                 from
==========================  ===============================================
``identity``                ``[export] identity`` / ``identity_class``: who
                            made the bundle (``created_by_ref`` of all SDOs)
``marking-definition``      ``[export] tlp`` (TLP 1.0: white, green, amber,
                            red), on every object
``grouping``                the cluster (context ``suspicious-activity``):
                            score, reasons, size, dates; refers to all below
``note`` (assessment)       why the cluster is flagged: every signal
``ipv4-addr``/``ipv6-addr`` each shared IP (and each shared subnet, as CIDR)
``indicator``               one per shared IP (``[ipv4-addr:value = '…']``)
                            and per shared subnet (``ISSUBSET``), valid from
                            its first use by the cluster
``observed-data``           per shared IP: first/last seen, requests
``note`` (templates)        one per top prompt template: canonical text,
                            examples, accounts, requests
``note`` (instruments)      shared payment instruments and same-BIN bursts
==========================  ===============================================

At most ``[export] stix_max_objects`` IPs and as many subnets are included
(most shared first). Identifiers are UUIDs derived from the input hashes, the
cluster and the object's content, and timestamps are the cluster's last
observed activity, so the same workspace gives the same bundle byte for byte.
With pseudonymisation the bundle carries the pseudonyms like every other file.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import uuid

import pandas as pd

from acctgraph.config import ExportConfig
from acctgraph.export.tables import ClusterTables

TLP_LEVELS = ("white", "green", "amber", "red")
SUBNET_MIN_IPS = 2
NOTE_TEMPLATES = 10


def tlp_marking(level: str):
    """The stix2 TLP marking definition for ``level``; a clear error for unknown levels."""
    import stix2

    from acctgraph.errors import ConfigError

    level = level.strip().lower()
    if level not in TLP_LEVELS:
        raise ConfigError(f"unknown TLP level {level!r} in [export] tlp; valid: {', '.join(TLP_LEVELS)}")
    return getattr(stix2, f"TLP_{level.upper()}")


def _id(kind: str, *parts: object) -> str:
    digest = hashlib.sha256("\x00".join(str(p) for p in parts).encode("utf-8", "surrogatepass")).digest()
    return f"{kind}--{uuid.UUID(bytes=digest[:16], version=4)}"


def _stamp(ts) -> str:
    t = pd.Timestamp(ts)
    t = t.tz_convert("UTC") if t.tzinfo else t.tz_localize("UTC")
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _addr(value: str):
    """ipaddress object of an IP or a CIDR, or None if it is neither."""
    try:
        return ipaddress.ip_network(value, strict=False) if "/" in value else ipaddress.ip_address(value)
    except ValueError:
        return None


def cluster_bundle(t: ClusterTables, cfg: ExportConfig, *, salt: str, summary_lines: list[str]) -> str:
    """The STIX 2.1 bundle of one packet as pretty JSON text.

    ``salt`` (the workspace's input hashes) makes identifiers differ between
    workspaces; ``summary_lines`` are the sentences of the assessment note.
    """
    import stix2

    cid = t.cid
    marking = tlp_marking(cfg.tlp)
    last = pd.to_datetime(t.raw_members["last_ts"], utc=True).max()
    if pd.isna(last):
        last = pd.to_datetime(t.raw_members["created_at"], utc=True).max()
    now = _stamp(last if not pd.isna(last) else pd.Timestamp(0, tz="UTC"))
    key = (salt, cid)
    identity = stix2.Identity(id=_id("identity", "identity", cfg.identity, cfg.identity_class), name=cfg.identity,
                              identity_class=cfg.identity_class, created=now, modified=now,
                              object_marking_refs=[marking])
    common = {"created": now, "modified": now, "created_by_ref": identity.id, "object_marking_refs": [marking]}
    grouping_id = _id("grouping", *key, "grouping")
    objects: list = []

    ips = t.shared_ips.head(cfg.stix_max_objects)
    for _, r in ips.iterrows():
        addr = _addr(str(r["ip"]))
        if addr is None:
            continue
        kind = "ipv4-addr" if addr.version == 4 else "ipv6-addr"
        sco = (stix2.IPv4Address if addr.version == 4 else stix2.IPv6Address)(value=str(addr),
                                                                                object_marking_refs=[marking])
        where = ", ".join(str(x) for x in (r["org"], r["ip_kind"]) if isinstance(x, str) and x)
        desc = (f"Used by {r['accounts']} accounts of acctgraph cluster {cid} ({r['requests']} requests, "
                f"{r['windows']} {t.window_minutes}-minute windows, {r['first_seen']} to {r['last_seen']}); "
                f"{r['accounts_outside']} other accounts used it" + (f"; {where}" if where else "") + ".")
        objects += [
            sco,
            stix2.Indicator(id=_id("indicator", *key, "ip", addr), name=f"IP shared by cluster {cid}: {addr}",
                            description=desc, indicator_types=["anomalous-activity"],
                            pattern=f"[{kind}:value = '{addr}']", pattern_type="stix",
                            valid_from=_stamp(r["first_seen"]), **common),
            stix2.ObservedData(id=_id("observed-data", *key, "ip", addr), first_observed=_stamp(r["first_seen"]),
                               last_observed=_stamp(r["last_seen"]), number_observed=max(int(r["requests"]), 1),
                               object_refs=[sco.id], **common),
        ]
    if len(t.shared_ips):
        sub = t.shared_ips.groupby("subnet").agg(ips=("ip", "nunique"), accounts=("accounts", "sum"),
                                                 first=("first_seen", "min"), last=("last_seen", "max"))
        sub = sub[sub["ips"] >= SUBNET_MIN_IPS].sort_values(["ips", "accounts"], ascending=False, kind="stable")
        for subnet, r in sub.head(cfg.stix_max_objects).iterrows():
            net = _addr(str(subnet))
            if net is None:
                continue
            kind = "ipv4-addr" if net.version == 4 else "ipv6-addr"
            sco = (stix2.IPv4Address if net.version == 4 else stix2.IPv6Address)(value=str(net),
                                                                                   object_marking_refs=[marking])
            objects += [sco, stix2.Indicator(
                id=_id("indicator", *key, "subnet", net), name=f"Range used by cluster {cid}: {net}",
                description=f"{r['ips']} shared IPs of this range were used by accounts of acctgraph cluster "
                            f"{cid} between {r['first']} and {r['last']} (proxy services rotate addresses "
                            "inside ranges).",
                indicator_types=["anomalous-activity"], pattern=f"[{kind}:value ISSUBSET '{net}']",
                pattern_type="stix", valid_from=_stamp(r["first"]), **common)]

    notes = [stix2.Note(id=_id("note", *key, "assessment"), abstract=f"Why acctgraph flagged cluster {cid}",
                        content="\n".join(summary_lines), object_refs=[grouping_id], **common)]
    for _, r in t.templates.head(NOTE_TEMPLATES).iterrows():
        examples = [r[c] for c in t.templates.columns if c.startswith("example_") and r[c]]
        content = "\n".join([f"Canonical (masked) template: {r['canonical']}",
                             f"Used by {r['accounts']} accounts of the cluster ({r['requests']} requests, "
                             f"{r['share_of_requests']:.1%} of the cluster's requests); "
                             f"{r['accounts_outside']} other accounts used it."]
                            + [f"Example: {e}" for e in examples])
        notes.append(stix2.Note(id=_id("note", *key, "template", r["template_id"]),
                                abstract=f"Prompt template {r['template_id']} of cluster {cid}", content=content,
                                object_refs=[grouping_id], **common))
    if len(t.shared_instruments):
        lines = []
        for _, r in t.shared_instruments.iterrows():
            if r["kind"] == "instrument":
                lines.append(f"Instrument {r['instrument_id']} (BIN {r['bin']}) shared by {r['accounts']} "
                             f"accounts of the cluster, {r['accounts_outside']} outside; first used {r['first_seen']}.")
            else:
                lines.append(f"{r['instruments']} distinct cards of BIN {r['bin']} first used within one burst "
                             f"starting {r['first_seen']} by {r['accounts']} accounts.")
        notes.append(stix2.Note(id=_id("note", *key, "instruments"),
                                abstract=f"Payment instruments shared in cluster {cid}", content="\n".join(lines),
                                object_refs=[grouping_id], **common))

    c = t.cluster
    refs = [o.id for o in objects + notes]
    grouping = stix2.Grouping(
        id=grouping_id, name=f"acctgraph cluster {cid}: {len(t.members):,} coordinated accounts",
        description=f"Cluster of accounts linked by shared payment instruments, IPs, prompt templates and "
                    f"synchronised activity; score {float(c['score']):.3f} "
                    f"({'flagged' if str(c['flagged']).lower() in ('true', '1') else 'not flagged'}). "
                    f"Reasons: {c.get('reasons', '')}.",
        context="suspicious-activity", object_refs=refs, **common)
    bundle = stix2.Bundle(id=_id("bundle", *key, "bundle"),
                          objects=[identity, marking, grouping] + notes + objects)
    # stix2's own pretty printer sorts properties in quadratic time; its compact output keeps the
    # spec's property order, which json re-indents in linear time
    return json.dumps(json.loads(bundle.serialize()), indent=2, ensure_ascii=False) + "\n"
