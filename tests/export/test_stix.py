"""stix.json: a valid STIX 2.1 bundle (parsed back with stix2) with the expected objects and markings."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import stix2

import acctgraph
from acctgraph.errors import ConfigError

from .export_support import H_SCRIPT, QUICK, cluster_of, config


def _bundle(packet) -> dict:
    return json.loads((Path(packet.path) / "stix.json").read_text(encoding="utf-8"))


def test_bundle_parses_and_has_the_expected_objects(sample_export):
    for p in sample_export.packets:
        raw = _bundle(p)
        parsed = stix2.parse(raw, allow_custom=False)
        assert isinstance(parsed, stix2.v21.Bundle)
        kinds = Counter(o["type"] for o in raw["objects"])
        assert kinds["grouping"] == 1 and kinds["identity"] == 1 and kinds["marking-definition"] == 1
        assert kinds["indicator"] >= 1 and kinds["observed-data"] >= 1 and kinds["note"] >= 2
        assert kinds["ipv4-addr"] >= 1
        ids = {o["id"] for o in raw["objects"]}
        grouping = next(o for o in raw["objects"] if o["type"] == "grouping")
        assert grouping["context"] == "suspicious-activity" and set(grouping["object_refs"]) <= ids
        assert str(p.cluster_id) in grouping["name"]
        identity = next(o for o in raw["objects"] if o["type"] == "identity")
        tlp = next(o for o in raw["objects"] if o["type"] == "marking-definition")
        assert identity["name"] == "acctgraph analyst" and tlp["definition"] == {"tlp": "amber"}
        for o in raw["objects"]:
            if o["type"] not in ("marking-definition",):
                assert o.get("object_marking_refs") == [tlp["id"]], o["type"]
            if o["type"] in ("grouping", "indicator", "observed-data", "note"):
                assert o["created_by_ref"] == identity["id"]
        patterns = [o["pattern"] for o in raw["objects"] if o["type"] == "indicator"]
        assert any(" = '" in x for x in patterns)


def test_identity_and_tlp_from_config(hostile_ws, tmp_path):
    cfg = config(identity="Example AI Trust & Safety", tlp="red", **QUICK)
    r = acctgraph.export(hostile_ws, clusters=[cluster_of(hostile_ws, H_SCRIPT)], out=tmp_path, config=cfg,
                         quiet=True)
    raw = _bundle(r.packets[0])
    stix2.parse(raw)
    objs = {o["type"]: o for o in raw["objects"]}
    assert objs["identity"]["name"] == "Example AI Trust & Safety"
    assert objs["marking-definition"]["definition"] == {"tlp": "red"}
    notes = [o for o in raw["objects"] if o["type"] == "note"]
    assert any("card-secret-1" in n["content"] for n in notes)  # the instruments note
    assert any("onerror" in n["content"] for n in notes)  # template text is carried as data, JSON-escaped
    indicator = next(o for o in raw["objects"] if o["type"] == "indicator")
    assert indicator["pattern"] == "[ipv4-addr:value = '198.51.100.7']"


def test_unknown_tlp_is_a_config_error(hostile_ws, tmp_path):
    with pytest.raises(ConfigError, match="unknown TLP level"):
        acctgraph.export(hostile_ws, top=1, out=tmp_path, config=config(tlp="purple"))
