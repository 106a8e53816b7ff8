"""graph.html and index.html: self-contained (no CDN), attacker text escaped, a banner when sampled."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pytest

import acctgraph

from .export_support import H_CLOSE, H_IMG, H_SCRIPT, HOSTILE_UA, QUICK, config

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def _pages(export) -> list[Path]:
    return [Path(export.index)] + [Path(p.path) / "graph.html" for p in export.packets]


def _data(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="graph-data">(.*?)</script>', html, re.S)
    assert m
    return json.loads(m.group(1))


@pytest.mark.parametrize("which", ["sample_export", "hostile_export"])
def test_pages_are_self_contained(which, request):
    for page in _pages(request.getfixturevalue(which)):
        html = page.read_text(encoding="utf-8")
        assert not EXTERNAL.search(html), page
        assert not re.search(r"<link\b", html, re.I)
        assert not re.search(r"cdnjs\.cloudflare\.com|cdn\.jsdelivr\.net|unpkg\.com|bootstrap", html, re.I)
        assert "Content-Security-Policy" in html and "connect-src 'none'" in unescape(html)
        scripts = re.findall(r"<script([^>]*)>", html)
        assert all("src" not in attrs for attrs in scripts)


def test_hostile_text_is_escaped(hostile_export):
    page = Path(hostile_export.packets[0].path) / "graph.html"
    html = page.read_text(encoding="utf-8")
    for payload in (H_SCRIPT, H_IMG, H_CLOSE, HOSTILE_UA, "<b>evil</b>"):
        assert payload not in html
    # exactly the page's own three script elements: the data block, vis-network, the app
    assert len(re.findall(r"^<script", html, re.M)) == 3 and html.count("</script>") == 3
    data = _data(html)
    labels = {n["id"] for n in data["nodes"]}
    assert {H_SCRIPT, H_IMG, H_CLOSE} <= labels  # the data is intact, only its encoding is safe
    assert any(HOSTILE_UA in n["title"] for n in data["nodes"])


def test_summary_keeps_data_inside_code_spans(hostile_export):
    text = (Path(hostile_export.packets[0].path) / "summary.md").read_text(encoding="utf-8")
    outside = re.sub(r"`[^`\n]*`", "", text)
    assert "<" not in outside and "onerror" not in outside
    assert "`cmd <q> <n> img src x onerror <q>" in text


def test_large_cluster_is_sampled_with_a_banner(sample_ws, sample_export, tmp_path):
    full = (Path(sample_export.packets[0].path) / "graph.html").read_text(encoding="utf-8")
    assert 'id="sample-banner"' in full  # 300 accounts, but more than 4,000 links
    size = sample_export.packets[0].graph["total_nodes"]
    cfg = config(graph_max_nodes=50, graph_max_edges=300, **QUICK)
    r = acctgraph.export(sample_ws, clusters=[sample_export.packets[0].cluster_id], out=tmp_path, config=cfg,
                         quiet=True)
    html = (Path(r.packets[0].path) / "graph.html").read_text(encoding="utf-8")
    data = _data(html)
    assert len(data["nodes"]) == 50 and len(data["edges"]) <= 300
    assert f"Showing 50 of {size:,} accounts" in html
    assert r.packets[0].graph == {"nodes": 50, "edges": len(data["edges"]), "sampled": True,
                                  "total_nodes": size, "total_edges": r.packets[0].graph["total_edges"]}


def test_small_cluster_has_no_banner(hostile_export):
    html = (Path(hostile_export.packets[0].path) / "graph.html").read_text(encoding="utf-8")
    assert 'id="sample-banner"' not in html
    data = _data(html)
    assert len(data["nodes"]) == 5 and len(data["edges"]) == 10
