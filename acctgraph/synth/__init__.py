"""Synthetic worlds with ground truth: legitimate users, hard negatives and distillation campaigns.

A world is a folder of tables in the input data contract (``accounts``,
``requests``, ``payments``, ``ip_info``) plus ground truth (``labels``) and
``world.json`` (config, seed, counts, version). Same seed and config, same
bytes. See ``docs/generator.md`` for the world model.

Example:
    >>> import tempfile
    >>> from acctgraph.synth import WorldConfig, CampaignConfig, Evasion, generate_world, preset
    >>> cfg = preset("evasive", scale=0.002)
    >>> summary = generate_world(tempfile.mkdtemp(), config=cfg, seed=7, quiet=True)
    >>> sorted(summary.campaigns)
    ['agent-distill', 'cot-harvest', 'policy-probe']
    >>> summary.counts["labels"] == summary.counts["accounts"]
    True
"""

from __future__ import annotations

from acctgraph.synth.config import (
    CAMPAIGN_TEMPLATES, PRESETS, CampaignConfig, Evasion, WorldConfig, default_campaigns, preset,
)
from acctgraph.synth.world import SCHEMAS, TABLES, WorldSummary, generate_world

__all__ = [
    "CAMPAIGN_TEMPLATES", "PRESETS", "SCHEMAS", "TABLES", "CampaignConfig", "Evasion", "WorldConfig",
    "WorldSummary", "default_campaigns", "generate_world", "preset",
]
