"""summary.md: why a cluster was exported, in words a reviewer can read without acctgraph.

Every value that comes from the data (account ids, templates, user agents,
IP owners) is written as an inline code span with backticks and line breaks
removed, so it cannot turn into Markdown or HTML when the file is rendered.

Example:
    >>> code("`rm -rf`\\n<b>x</b>")
    "`'rm -rf' <b>x</b>`"
"""

from __future__ import annotations

import pandas as pd

from acctgraph.export.tables import ClusterTables
from acctgraph.scoring import REASONS, SIGNALS

CODE_CHARS = 200

#: what each scoring signal measures (see docs/communities.md)
MEANING = {
    "shared_payment": "share of accounts linked to another by a shared instrument or a same-BIN card burst",
    "multi_layer": "share of the link weight backed by two or more independent layers",
    "template_focus": "mean share of an account's requests in its single most used template",
    "extraction_prompts": "share of requests in templates that elicit reasoning, tool use or code, or (when higher) "
                          "share of accounts sending such a template of the cluster's own",
    "machine_timing": "share of active accounts with regular or sub-human gaps between requests",
    "batch_creation": "largest share of accounts created within one 24-hour window",
    "off_hours": "night-time (00-06 local) activity for the claimed countries",
    "new_model_pivot": "share of accounts that used the newest model within 24 h of its release",
    "volume": "median requests per account compared with the typical account",
    "proxy_ips": "share of requests from IPs whose accounts claim three or more countries",
    "ip_rotation": "typical member's share of requests sent from a new IP address",
}


def meaning(signal: str) -> str:
    """What a signal measures; signals added to scoring later fall back to their sentence in scoring.REASONS."""
    return MEANING.get(signal) or REASONS.get(signal, "").format(p="x%").replace("x% of ", "share of ")


def code(value: object, chars: int = CODE_CHARS) -> str:
    """Data as a Markdown inline code span (cannot escape it: no backticks, no line breaks)."""
    text = " ".join(str(value).replace("`", "'").split())
    if len(text) > chars:
        text = text[: chars - 1] + "…"
    return f"`{text}`" if text else "`-`"


def _day(ts) -> str:
    return "-" if pd.isna(ts) else pd.Timestamp(ts).strftime("%Y-%m-%d")


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _true(v) -> bool:
    return str(v).strip().lower() in ("true", "1")


def summary(t: ClusterTables, *, release: tuple[str, pd.Timestamp] | None, fringe: int, flag_rule: str,
            graph: dict, pseudonymised: bool, files: list[tuple[str, str]]) -> tuple[str, list[str]]:
    """summary.md text, and its key sentences as plain lines (for the STIX assessment note)."""
    c, m, raw = t.cluster, t.members, t.raw_members
    n = len(m)
    flagged = _true(c["flagged"])
    score = float(c["score"])
    first = pd.to_datetime(raw["first_ts"], utc=True).min() if n else pd.NaT
    last = pd.to_datetime(raw["last_ts"], utc=True).max() if n else pd.NaT
    created = pd.to_datetime(raw["created_at"], utc=True)
    requests = int(m["requests"].sum())
    models = t.activity.groupby("model")["requests"].sum().sort_values(ascending=False, kind="stable")
    model_text = ", ".join(f"{code(k)} ({v / max(requests, 1):.0%})" for k, v in models.head(6).items()) or "none"
    days = (last - first).days + 1 if not pd.isna(first) else 0

    lines = [f"Cluster {t.cid}: {n:,} accounts, score {score:.3f}, "
             f"{'flagged' if flagged else 'not flagged'} by acctgraph.",
             f"Active {_day(first)} to {_day(last)}; {requests:,} requests; accounts created "
             f"{_day(created.min())} to {_day(created.max())}.",
             f"Reasons: {c.get('reasons', '') or 'none'}."]

    out = [f"# Cluster {t.cid}: {'flagged' if flagged else 'not flagged'}, score {score:.3f}", ""]
    out += ["## In short", "",
            f"- **{n:,} accounts**" + (f" (core members; {fringe:,} loosely attached accounts were detached "
                                       "from the cluster and are not listed)" if fringe else "")
            + f", operation {c['operation_id']}.",
            (f"- **Active** {_day(first)} to {_day(last)} ({days} days)" if days else "- **No requests**")
            + f"; **created** {_day(created.min())} to {_day(created.max())}.",
            f"- **{requests:,} requests**, median {int(m['requests'].median()) if n else 0:,} per account; "
            f"models: {model_text}."]
    if release is not None:
        model, when = release
        lag = pd.to_numeric(raw["new_model_lag_h"], errors="coerce")
        out.append(f"- **New model** {code(model)} first appeared in the logs {pd.Timestamp(when):%Y-%m-%d %H:%M} "
                   f"UTC; {_pct(float((lag <= 24).mean()) if n else 0)} of the accounts used it within 24 hours "
                   f"and {_pct(float(lag.notna().mean()) if n else 0)} at all.")
    out += ["", "## Why it is flagged" if flagged else "## Score and the signals behind it", "",
            f"Score **{score:.3f}**: the weighted mean of {len(SIGNALS)} signals, each between 0 and 1"
            + (f"; conduct {float(c['conduct']):.3f}" if "conduct" in c else "") + f" ({flag_rule}). "
            f"In words: {c.get('reasons', '') or 'no signal stands out'}.", "",
            "| signal | value | contribution | what it measures |", "|---|---|---|---|"]
    sig = sorted(SIGNALS, key=lambda s: (-float(c[f"contrib_{s}"]), s))
    for s in sig:
        out.append(f"| {s} | {float(c[s]):.2f} | {float(c[f'contrib_{s}']):.3f} | {meaning(s)} |")

    out += ["", "## Strongest shared evidence", ""]
    ev = []
    inst = t.shared_instruments
    if len(inst):
        top = inst.iloc[0]
        n_inst = int((inst["kind"] == "instrument").sum())
        n_burst = int((inst["kind"] == "bin_burst").sum())
        if top["kind"] == "instrument":
            ev.append(f"- **Payments**: instrument {code(top['instrument_id'])} (BIN {code(top['bin'])}) is shared "
                      f"by {top['accounts']:,} accounts of the cluster; {n_inst:,} shared instruments and "
                      f"{n_burst:,} same-BIN card bursts in all (shared_instruments.csv).")
        else:
            ev.append(f"- **Payments**: {top['instruments']:,} distinct cards of BIN {code(top['bin'])} were first "
                      f"used within one burst by {top['accounts']:,} accounts; {n_inst:,} shared instruments and "
                      f"{n_burst:,} bursts in all (shared_instruments.csv).")
    ips = t.shared_ips
    if len(ips):
        top = ips.iloc[0]
        owner = ", ".join(str(x) for x in (top["org"], top["ip_kind"]) if isinstance(x, str) and x)
        ev.append(f"- **Network**: IP {code(top['ip'])}" + (f" ({code(owner)})" if owner else "")
                  + f" was used by {top['accounts']:,} accounts in {top['windows']:,} {t.window_minutes}-minute "
                  "windows, and by "
                  f"{top['accounts_outside']} accounts outside the cluster; {len(ips):,} IPs are shared in all "
                  "(shared_ips.csv).")
    tm = t.templates[t.templates["accounts"] >= 2] if len(t.templates) else t.templates
    if len(tm):
        top = tm.iloc[0]
        ev.append(f"- **Prompt templates**: template {top['template_id']} {code(top['canonical'], 120)} is used by "
                  f"{top['accounts']:,} accounts ({top['requests']:,} requests, {top['share_of_requests']:.0%} of "
                  f"the cluster's requests; {top['accounts_outside']:,} accounts outside); {len(tm):,} templates "
                  "are shared (templates.csv).")
    links = t.links
    if len(links):
        co = links[links["co_bins"].notna()] if "co_bins" in links else links.iloc[0:0]
        multi = float(links.loc[links["layers"] >= 2, "weight"].sum() / max(links["weight"].sum(), 1e-12))
        if len(co):
            ev.append(f"- **Timing**: {len(co):,} pairs of accounts were active in the same 5-minute bins far "
                      f"beyond chance (highest z = {co['coactivity_z'].max():.1f}).")
        ev.append(f"- **Links**: {len(links):,} links inside the cluster; {multi:.0%} of their weight is backed by "
                  "two or more independent layers (links.csv).")
    out += ev or ["- No shared evidence inside the cluster."]

    caveats = [
        "The score is a weighted mean of heuristic signals, not proof of intent: companies behind one NAT, "
        "universities and VPN users light some signals too. Read the evidence files before acting.",
        "Shared IPs with many accounts outside the cluster (`accounts_outside` in shared_ips.csv) are VPN exits, "
        "NATs or proxies: on their own they are weak evidence.",
        "Co-activity is estimated from MinHash signatures (a conservative lower bound); templates are mined from "
        "masked prompts and paraphrases are grouped approximately; examples are this cluster's own prompts "
        "closest to each template.",
        "Times are UTC. The plots and timeline count requests per hour.",
    ]
    if not flagged:
        caveats.insert(0, "This cluster is **not flagged**: it was exported for review on request.")
    if graph.get("sampled"):
        caveats.append(f"graph.html shows {graph['nodes']:,} of {graph['total_nodes']:,} accounts and "
                       f"{graph['edges']:,} of {graph['total_edges']:,} links (hubs plus a stratified sample); "
                       "the CSV files are complete.")
    if pseudonymised:
        caveats.append("Account ids, e-mail domains and payment instrument ids are **pseudonyms** (keyed "
                       "HMAC-SHA256): consistent across the files of this packet, reversible only by the holder of "
                       "the key.")
    out += ["", "## Caveats", ""] + [f"- {x}" for x in caveats]
    out += ["", "## Files", "", "| file | contents |", "|---|---|"] + [f"| {f} | {d} |" for f, d in files]
    out += ["", "Check that no file was changed: run `acctgraph verify` on this folder (see manifest.json).", ""]
    return "\n".join(out), lines
