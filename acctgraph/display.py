"""Showing results to an analyst: terminal text, JSON and HTML that attacker-controlled data cannot break.

Account ids, prompts, user agents and e-mail domains come from the people
being investigated. In a terminal they could carry escape sequences (moving
the cursor, rewriting earlier lines); in a notebook, HTML. So every value
from the data goes through :func:`clean` (terminal) or :func:`esc` (HTML),
and :func:`jsonable` turns results into plain JSON types.

Example:
    >>> clean("acct\\x1b[2J-1\\n<b>")
    'acct?[2J-1 <b>'
    >>> esc('<script>alert("x")</script>')
    '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'
    >>> jsonable({"n": np.int64(3), "x": float("nan"), "t": pd.Timestamp("2026-02-01", tz="UTC")})
    {'n': 3, 'x': None, 't': '2026-02-01T00:00:00Z'}
"""

from __future__ import annotations

import dataclasses
import html
import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: data values longer than this are cut (with an ellipsis) in terminal and HTML views
WIDTH = 80


def missing(v: Any) -> bool:
    """True for None, NaN, NA and NaT (and empty strings)."""
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and v == ""


def clean(value: Any, width: int | None = WIDTH) -> str:
    """One line of terminal-safe text: control and format characters become ``?``, whitespace one space."""
    if missing(value):
        return "-"
    text = " ".join(str(value).split())
    text = "".join("?" if unicodedata.category(ch)[0] == "C" else ch for ch in text)
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return text


def esc(value: Any, width: int | None = WIDTH) -> str:
    """HTML-escaped text of a value (cut to ``width``); missing values are '-'."""
    if missing(value):
        return "-"
    text = str(value)
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return html.escape(text, quote=True)


def jsonable(obj: Any) -> Any:
    """Plain JSON types: numpy scalars to Python, NaN/NA to None, timestamps to ISO-8601 UTC text."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, pd.DataFrame):
        return [jsonable(r) for r in obj.to_dict("records")]
    if isinstance(obj, pd.Series):
        return jsonable(obj.to_dict())
    if isinstance(obj, (list, tuple, set, np.ndarray)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (pd.Timestamp, np.datetime64)):
        ts = pd.Timestamp(obj)
        if ts is pd.NaT:
            return None
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(obj, np.generic):
        obj = obj.item()
    if missing(obj) and not isinstance(obj, str):
        return None
    if isinstance(obj, float) and math.isinf(obj):
        return None
    return obj


def pct(x: Any) -> str:
    return "-" if missing(x) else f"{float(x):.0%}"


def num(x: Any) -> str:
    """An integer with thousands separators, '-' when missing."""
    return "-" if missing(x) else f"{int(x):,}"


def count(x: Any, word: str) -> str:
    """'1 account', '2,000 accounts', '- accounts'.

    >>> count(1, "layer"), count(2000, "account")
    ('1 layer', '2,000 accounts')
    """
    return f"{num(x)} {word}" + ("" if not missing(x) and int(x) == 1 else "s")


def _n(row: Mapping[str, Any], key: str) -> int:
    v = row.get(key)
    return 0 if missing(v) else int(v)


def link_evidence(row: Mapping[str, Any], width: int | None = WIDTH) -> list[tuple[str, str]]:
    """The concrete evidence of one link (a row of a packet's links table) as (layer, text) lines.

    >>> link_evidence({"shared_instruments": "card-9", "shared_instrument_count": 1,
    ...                "co_bins": 12.0, "coactivity_z": 6.5})
    [('payments', 'shared instrument card-9'), ('timing', 'active together in about 12 five-minute bins (z 6.5)')]
    """
    out: list[tuple[str, str]] = []
    k = _n(row, "shared_instrument_count")
    if k:
        out.append(("payments", f"shared instrument{'s' if k > 1 else ''} {clean(row.get('shared_instruments'), width)}"
                                + (f" ({k} in all)" if k > 3 else "")))
    if not missing(row.get("shared_bin_burst")):
        out.append(("payments", f"cards of BIN {clean(row.get('shared_bin_burst'))} first used in the same burst"))
    k = _n(row, "shared_ip_windows")
    if k:
        ips = _n(row, "shared_ip_count")
        span = f"{clean(row.get('first_shared_window'))} .. {clean(row.get('last_shared_window'))}"
        out.append(("network", f"same IP{'s' if ips > 1 else ''} {clean(row.get('shared_ips'), width)} in {k} "
                               f"shared window{'s' if k > 1 else ''} ({span})"))
    k = _n(row, "shared_subnet_windows")
    if k:
        nets = str(row.get("shared_subnets") or "")
        out.append(("network", f"same subnet{'s' if ';' in nets else ''} {clean(nets, width)} in {k} shared "
                               f"window{'s' if k > 1 else ''}"))
    k, c = _n(row, "shared_template_count"), _n(row, "shared_clause_count")
    if k or c:
        parts = []
        if k:
            ids = ", ".join("#" + t.strip() for t in str(row.get("shared_templates") or "").split(";") if t.strip())
            parts.append(f"{k} prompt template{'s' if k > 1 else ''} ({ids}{', ...' if k > 5 else ''})")
        if c:
            parts.append(f"{c} prompt clause{'s' if c > 1 else ''}")
        out.append(("templates", "same " + " and ".join(parts)))
    if not missing(row.get("co_bins")):
        z = row.get("coactivity_z")
        # co_bins is estimated from MinHash signatures (see docs/graph.md), hence "about"
        out.append(("timing", f"active together in about {float(row['co_bins']):.0f} five-minute bins"
                              + ("" if missing(z) else f" (z {float(z):.1f})")))
    return out


def table(rows: Sequence[Sequence[Any]], header: Sequence[str], align: str = "") -> list[str]:
    """A plain-text table (cells cleaned); ``align`` holds 'l' or 'r' per column (default: left)."""
    cells = [[clean(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    al = align.ljust(len(header), "l")

    def fmt(r: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(r, widths, al)).rstrip()

    return [fmt(list(header))] + [fmt(r) for r in cells]


def html_table(rows: Iterable[Sequence[Any]], header: Sequence[str], align: str = "") -> str:
    """An HTML table; every cell is escaped (cells may come from the data)."""
    al = align.ljust(len(header), "l")
    style = {"l": "text-align:left", "r": "text-align:right"}
    head = "".join(f'<th style="{style[a]}">{esc(h)}</th>' for h, a in zip(header, al))
    body = "".join("<tr>" + "".join(f'<td style="{style[a]}">{esc(c)}</td>' for c, a in zip(r, al)) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def iframe(document: str, height: int = 600) -> str:
    """An HTML page embedded in a sandboxed iframe (scripts run, but cannot reach the notebook's page)."""
    return (f'<div><iframe sandbox="allow-scripts" style="width:100%;height:{int(height)}px;border:1px solid #ddd" '
            f'srcdoc="{html.escape(document, quote=True)}"></iframe></div>')
