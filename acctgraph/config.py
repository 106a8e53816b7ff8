"""Configuration: frozen dataclasses per stage, loadable from ``acctgraph.toml``.

Every option has a default; a file only needs what it changes. Unknown keys
are errors that list the valid ones. The full, resolved configuration is
recorded in every stage's output so a run can be reproduced.

Example ``acctgraph.toml``::

    [inputs]
    dir = "data/samples"          # or per-table paths:
    # requests = "/logs/2026-02-01/requests.parquet"

    [workspace]
    dir = "acctgraph-work"

    [validation]
    min_ts = "2000-01-01"
    max_ts = "2100-01-01"

>>> cfg = Config.from_dict({"validation": {"max_text_chars": 5000}})
>>> cfg.validation.max_text_chars, cfg.workspace.dir
(5000, 'acctgraph-work')
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from acctgraph.errors import ConfigError

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_FILE = "acctgraph.toml"
T = TypeVar("T")


def _opt(default: Any, doc: str) -> Any:
    """A config field with its documentation (rendered into docs/configuration.md)."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class InputsConfig:
    """Where the input tables are: a folder, and/or explicit per-table paths."""

    dir: str | None = _opt(None, "folder holding TABLE.parquet or TABLE.csv files")
    accounts: str | None = _opt(None, "explicit path of the accounts table (overrides dir)")
    requests: str | None = _opt(None, "explicit path of the requests table")
    payments: str | None = _opt(None, "explicit path of the payments table")
    ip_info: str | None = _opt(None, "explicit path of the ip_info table")
    known_bad: str | None = _opt(None, "explicit path of the known_bad table")
    labels: str | None = _opt(None, "explicit path of the labels table (evaluation only)")

    def paths(self) -> dict[str, str]:
        """Explicit per-table paths that are set."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "dir" and v}


@dataclass(frozen=True)
class WorkspaceConfig:
    """Where stage outputs go."""

    dir: str = _opt("acctgraph-work", "workspace folder that every stage reads and writes")


@dataclass(frozen=True)
class ValidationConfig:
    """How loading validates rows.

    Timestamps outside ``[min_ts, max_ts)`` are quarantined; free text longer
    than ``max_text_chars`` is truncated (and counted) so one giant prompt
    cannot exhaust memory.
    """

    min_ts: str = _opt("1990-01-01T00:00:00+00:00", "earliest accepted timestamp (ISO-8601)")
    max_ts: str = _opt("2100-01-01T00:00:00+00:00", "timestamps at or after this are quarantined")
    max_text_chars: int = _opt(100_000, "free text (prompts, user agents) is truncated to this length")


@dataclass(frozen=True)
class BuildConfig:
    """Graph building: which layers, engine resources, and how large groups are handled."""

    layers: tuple[str, ...] = _opt(("payments", "network", "templates", "coactivity"),
                                   "evidence layers to build (any subset)")
    group_cap: int = _opt(50, "a shared key held by more accounts than this is sparsified (never all pairs)")
    ring_k: int = _opt(10, "in a sparsified group each account links to its k successors on a hashed ring")
    threads: int = _opt(0, "engine threads (0 = all cores)")
    memory_limit: str = _opt("4GB", "engine (DuckDB) memory limit before it spills to disk ('' = DuckDB's "
                                    "default, 80% of RAM)")
    engine: str = _opt("duckdb", "relational engine for the layers: 'duckdb' (embedded) or 'spark' (pip install "
                                 "'acctgraph[spark]' and Java 17+; see docs/scale-out.md)")
    spark_master: str = _opt("", "Spark master when acctgraph starts the session ('' = the active session or "
                                 "spark-submit's, else local[*])")


@dataclass(frozen=True)
class PaymentsConfig:
    """Payments layer: shared instruments, and same-BIN instruments first used in a burst."""

    bin_factor: float = _opt(0.3, "weight of the same-BIN-in-a-burst tier relative to a shared instrument")
    burst_hours: int = _opt(24, "instruments of one BIN first used within this window form a burst")
    burst_sigmas: float = _opt(3.0, "a window's cards count as a burst only beyond the count chance gives (the "
                                    "BIN's recent rate times the day's factor) plus this many Poisson standard "
                                    "deviations (see acctgraph/layers/payments.py)")
    burst_baseline_windows: int = _opt(14, "... the BIN's recent rate measured over this many windows on either side")
    burst_min_cards: int = _opt(5, "... and only windows with at least this many cards (chance pairs and triples of "
                                   "one BIN on one day are common; bulk purchases are tens to thousands)")


@dataclass(frozen=True)
class NetworkConfig:
    """Network layer: the same IP (and, weaker, the same subnet) within a time window."""

    window_minutes: int = _opt(60, "accounts using one IP within the same window of this length are linked")
    subnet_factor: float = _opt(0.25, "weight of the same-subnet tier relative to the same IP")
    subnet_v4: int = _opt(24, "IPv4 subnet prefix length for the subnet tier")
    subnet_v6: int = _opt(48, "IPv6 subnet prefix length for the subnet tier")


@dataclass(frozen=True)
class TemplatesConfig:
    """Prompt-template layer: mined templates shared by accounts."""

    min_requests: int = _opt(2, "an account counts as a template's user after this many requests with it")
    prior_requests: float = _opt(5.0, "smoothing: an account's share of a template is count / (total + prior)")
    clause_factor: float = _opt(1.0, "weight of the shared-clause tier (sentences shared across templates, robust "
                                "to paraphrase) relative to a shared template")
    clause_words: int = _opt(3, "clauses with fewer words are ignored")
    clause_min_requests: int = _opt(2, "an account counts as a clause's user after this many requests with it")
    clause_min_shared: int = _opt(3, "two accounts are linked by the clause tier only when they share at least "
                                  "this many clauses")
    clause_ring_k: int = _opt(45, "in sparsified clause groups an account on m rings links to ceil(ring_k * "
                              "clause_ring_k / m) successors on each, between ring_k and this: quiet accounts, on "
                              "few rings, look further, so that accounts sharing a stock of clauses meet on "
                              "clause_min_shared rings")
    clause_min_jaccard: float = _opt(0.3, "when clause_partners > 0, a pair that met on fewer rings is still linked "
                                     "when the Jaccard similarity of the two accounts' clause sets (MinHash "
                                     "estimate) is at least this")
    clause_alike_shared: int = _opt(10, "a pair linked by that similarity must also have at least this many "
                                    "clauses in common (estimated): a few popular sentences in common are "
                                    "chance for accounts whose sets are small")
    clause_partners: int = _opt(5, "how many such similar pairs each account keeps at most (its most similar "
                                "ones; 0 switches the rule off, see docs/communities.md); the edge count stays "
                                "linear in accounts")


@dataclass(frozen=True)
class CoactivityConfig:
    """Temporal co-activity layer: accounts repeatedly active in the same short time bins."""

    bin_minutes: int = _opt(5, "length of a time bin")
    min_bins: int = _opt(5, "accounts active in fewer bins are not considered")
    num_perm: int = _opt(32, "MinHash permutations of each account's set of active bins")
    bands: int = _opt(16, "LSH bands (num_perm must be a multiple)")
    z_min: float = _opt(3.0, "co-activity above chance must exceed this many standard deviations")


@dataclass(frozen=True)
class CombineConfig:
    """How layer weights combine into one edge weight.

    Each layer's summed weight W is saturated, s = 1 - exp(-W / scale), so no
    layer contributes more than its weight; the edge weight is the weighted
    sum of the saturated layers.
    """

    payments: float = _opt(1.0, "weight of the payments layer")
    network: float = _opt(1.0, "weight of the network layer")
    templates: float = _opt(1.0, "weight of the prompt-template layer")
    coactivity: float = _opt(1.0, "weight of the co-activity layer")
    payments_scale: float = _opt(0.5, "payments evidence at which the layer is 63% saturated")
    network_scale: float = _opt(0.5, "network evidence at which the layer is 63% saturated")
    templates_scale: float = _opt(0.5, "template evidence at which the layer is 63% saturated")
    coactivity_scale: float = _opt(3.0, "co-activity evidence (z above z_min) at which the layer is 63% saturated")


@dataclass(frozen=True)
class CommunitiesConfig:
    """Leiden community detection (modularity) and the conductance-guided split pass."""

    resolution: float = _opt(1.0, "modularity resolution (higher = smaller communities)")
    iterations: int = _opt(2, "Leiden iterations (negative = until stable); igraph's default, later ones barely "
                                 "move modularity (docs/communities.md)")
    seed: int = _opt(0, "random seed; same graph and seed, same communities")
    split_min_size: int = _opt(100, "communities at least this large are re-examined for well-separated parts")
    split_conductance: float = _opt(0.2, "a part whose conductance inside its community is below this splits off")
    split_depth: int = _opt(2, "how many levels the split pass recurses")
    operation_resolution: float = _opt(0.3, "resolution of the community-graph pass that groups communities "
                                             "into operations")
    min_weight: float = _opt(0.01, "edges with a smaller combined weight (no more than one hub key's share: "
                                   "s(N)/2k) are left out of community detection and scoring; they stay in "
                                   "edges.parquet")
    calibration: bool = _opt(True, "after each run, switch each layer off in turn and report how the flags change "
                             "(costs one more detection per layer)")
    operation_min_overlap: float = _opt(0.85, "flagged communities of one operation are merged when the cosine "
                                              "similarity of their content (rarity-weighted clause use) is at "
                                              "least this")


@dataclass(frozen=True)
class ScoringConfig:
    """Cluster scores (see acctgraph/scoring.py) and the flagging rule."""

    flag_score: float = _opt(0.36, "clusters scoring at least this are flagged ...")
    flag_conduct: float = _opt(0.2, "... and the mean of their conduct signals (what the accounts do, not how "
                                    "they are tied: every signal but shared_payment, multi_layer and proxy_ips) "
                                    "is at least this; 0 switches this condition off")
    flag_min_size: int = _opt(10, "... when at least this many of their accounts are core members")
    extraction_flag: float = _opt(0.5, "... or when at least this share of their requests are capability-extraction "
                                  "prompts ...")
    extraction_volume: float = _opt(0.5, "... and their volume signal is at least this (median member 10x the typical "
                                    "account at 0.5); set either above 1 to switch this path off")
    rotation_flag: float = _opt(0.5, "... or when their typical member uses a new IP address for at least this share "
                                "of its requests (ip_rotation: a rotating proxy pool) ...")
    rotation_volume: float = _opt(0.5, "... and their volume signal is at least this; set either above 1 to switch "
                                  "this path off (with the extraction path off too, flags rest on the score alone)")
    fringe_ratio: float = _opt(0.025, "members whose link weight inside their community is below this share of "
                                      "its core_reference are fringe: left out of its signals and never flagged")
    core_reference: str = _opt("weighted", "what fringe_ratio is a share of: 'weighted' (the strength below which "
                                           "half of the community's link weight lies: robust when weakly tied "
                                           "accounts outnumber the members) or 'median' (the community's median "
                                           "member; use with a higher fringe_ratio such as 0.05; "
                                           "docs/communities.md)")
    circumstantial_fringe: bool = _opt(True, "members tied to their community only by shared network addresses, "
                                             "co-active hours or (once they send requests) cards of one BIN burst "
                                             "(no shared card, no template link that counts) are fringe when at "
                                             "least half of its core is tied by templates, unless they send one of "
                                             "the core's own templates (clusters.circumstantial_members)")
    judge_blocks: bool = _opt(True, "a block of a flagged cluster (flag_min_size or more core members tied to each "
                                    "other by cards or templates, each such link at least [communities] "
                                    "min_weight) whose conductance inside the cluster is below [communities] "
                                    "split_conductance keeps its flag only if it is flagged when scored alone; "
                                    "otherwise it leaves as a community of its own (clusters.loose_blocks)")
    sleeper_share: float = _opt(0.5, "an account that sent no request and was left alone joins the flagged cluster "
                                     "that holds at least this share of its link weight, counting links too weak "
                                     "for detection (a card of a campaign's BIN burst); above 1 switches it off")
    sleeper_links: int = _opt(5, "... through at least this many links to the cluster's core members")
    sleeper_domain_accounts: int = _opt(5, "an account that sent no request, left alone, also joins a flagged cluster "
                                           "whose own e-mail domain it uses: at least this many of the domain's "
                                           "active accounts are core members of that cluster ...")
    sleeper_domain_share: float = _opt(0.8, "... and they are at least this share of the domain's active accounts; "
                                            "above 1 switches the domain rule off")
    shared_payment: float = _opt(1.0, "weight of the shared_payment signal")
    multi_layer: float = _opt(1.0, "weight of the multi_layer signal")
    template_focus: float = _opt(1.0, "weight of the template_focus signal")
    extraction_prompts: float = _opt(1.0, "weight of the extraction_prompts signal")
    machine_timing: float = _opt(1.0, "weight of the machine_timing signal")
    batch_creation: float = _opt(1.0, "weight of the batch_creation signal")
    off_hours: float = _opt(1.0, "weight of the off_hours signal")
    new_model_pivot: float = _opt(1.0, "weight of the new_model_pivot signal")
    volume: float = _opt(1.0, "weight of the volume signal")
    proxy_ips: float = _opt(1.0, "weight of the proxy_ips signal")
    ip_rotation: float = _opt(1.0, "weight of the ip_rotation signal")


@dataclass(frozen=True)
class ExportConfig:
    """Evidence packets (see docs/packets.md): what they contain and how they are shared."""

    dir: str = _opt("", "folder for packets (default: WORK/packets); --out overrides it")
    identity: str = _opt("acctgraph analyst", "name of the STIX Identity that creates the bundles (your team)")
    identity_class: str = _opt("organization", "STIX identity class of that Identity")
    tlp: str = _opt("amber", "TLP marking of STIX bundles: white, green, amber or red")
    stix: bool = _opt(True, "write a STIX 2.1 bundle (stix.json) in every packet")
    plots: bool = _opt(True, "draw the PNG plots (activity, heatmap, creation, model adoption)")
    graph_max_nodes: int = _opt(400, "graph.html shows at most this many accounts: above it, the hubs plus a "
                                     "stratified sample, with a banner saying so")
    graph_max_edges: int = _opt(4000, "graph.html draws at most this many links (the strongest)")
    stix_max_objects: int = _opt(100, "at most this many shared IPs and subnets become STIX indicators")
    example_templates: int = _opt(20, "templates.csv gives examples for this many of the cluster's top templates")
    examples: int = _opt(3, "examples per template")
    example_chars: int = _opt(160, "examples are cut to this many characters")
    pseudonymise: bool = _opt(False, "replace account ids, e-mail domains and instrument ids by keyed HMACs "
                                     "(also --pseudonymise)")
    pseudonym_key_env: str = _opt("ACCTGRAPH_PSEUDONYM_KEY", "environment variable holding the pseudonymisation "
                                                             "key (used when pseudonym_key is empty)")
    pseudonym_key: str = _opt("", "pseudonymisation key (prefer the environment variable; never written to "
                                  "a packet)")


@dataclass(frozen=True)
class Config:
    """The whole configuration, one section per stage."""

    inputs: InputsConfig = field(default_factory=InputsConfig)
    workspace: WorkspaceConfig = field(default_factory=WorkspaceConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    build: BuildConfig = field(default_factory=BuildConfig)
    payments: PaymentsConfig = field(default_factory=PaymentsConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    templates: TemplatesConfig = field(default_factory=TemplatesConfig)
    coactivity: CoactivityConfig = field(default_factory=CoactivityConfig)
    combine: CombineConfig = field(default_factory=CombineConfig)
    communities: CommunitiesConfig = field(default_factory=CommunitiesConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: Path | None = None) -> Config:
        """Build from a nested dict (as parsed from TOML); relative paths resolve against ``base_dir``."""
        sections = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in sections:
                raise ConfigError(f"unknown config section [{key}]; valid sections: {', '.join(sections)}")
            if not isinstance(value, dict):
                raise ConfigError(f"config section [{key}] must be a table of options")
            kwargs[key] = _build(sections[key].default_factory(), key, value)  # type: ignore[misc]
        cfg = cls(**kwargs)
        if base_dir is not None:
            cfg = cfg._resolve_paths(base_dir)
        return cfg

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Config:
        """Read a TOML file; errors name the file and the problem."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(f"{p}: cannot read config ({e.strerror or e})") from e
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{p}: invalid TOML ({e})") from e
        try:
            return cls.from_dict(data, base_dir=p.parent)
        except ConfigError as e:
            raise ConfigError(f"{p}: {e}") from e

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict, as recorded in outputs; secrets (options named ``*_key``, ``*_secret``,
        ``*_token``, ``*_password``) are never recorded, only whether they were set.

        >>> Config._without_secrets({"export": {"pseudonym_key": "s3cret", "pseudonym_key_env": "VAR"}})
        {'export': {'pseudonym_key': '(set, not recorded)', 'pseudonym_key_env': 'VAR'}}
        """
        return self._without_secrets(dataclasses.asdict(self))

    @staticmethod
    def _without_secrets(d: dict[str, Any]) -> dict[str, Any]:
        secret = ("_key", "_secret", "_token", "_password")
        return {k: Config._without_secrets(v) if isinstance(v, dict)
                else ("(set, not recorded)" if v else v) if k.endswith(secret) else v for k, v in d.items()}

    def _resolve_paths(self, base: Path) -> Config:
        """Relative paths resolved against ``base``; absolute paths and URIs (``file://``, ``hdfs://``, ...) kept.

        >>> cfg = Config.from_dict({"inputs": {"dir": "hdfs://nn/logs"}, "workspace": {"dir": "w"}}, Path("/cfg"))
        >>> cfg.inputs.dir, cfg.workspace.dir
        ('hdfs://nn/logs', '/cfg/w')
        """
        def fix(v: str | None) -> str | None:
            return v if v is None or os.path.isabs(v) or _URI.match(v) else str(base / v)

        inputs = dataclasses.replace(self.inputs, **{f.name: fix(getattr(self.inputs, f.name))
                                                     for f in dataclasses.fields(InputsConfig)})
        ws = dataclasses.replace(self.workspace, dir=fix(self.workspace.dir))
        export = dataclasses.replace(self.export, dir=fix(self.export.dir) if self.export.dir else "")
        return dataclasses.replace(self, inputs=inputs, workspace=ws, export=export)


def _build(default: T, section: str, values: dict[str, Any]) -> T:
    fields = {f.name: f for f in dataclasses.fields(default)}  # type: ignore[arg-type]
    for k, v in values.items():
        if k not in fields:
            raise ConfigError(f"unknown option {k!r} in [{section}]; valid options: {', '.join(fields)}")
        want = type(getattr(default, k))
        if want is tuple and isinstance(v, list):
            v = values[k] = tuple(v)
        if getattr(default, k) is not None and not isinstance(v, want) and not (want is float and isinstance(v, int)):
            raise ConfigError(f"option {section}.{k} must be {want.__name__}, got {type(v).__name__} {v!r}")
    return dataclasses.replace(default, **values)  # type: ignore[type-var]


def render_reference() -> str:
    """Markdown table of every option with its default (kept in docs/configuration.md)."""
    lines = ["| option | default | meaning |", "|---|---|---|"]
    for section in dataclasses.fields(Config):
        for f in dataclasses.fields(section.default_factory()):  # type: ignore[misc]
            default = "(unset)" if f.default is None else f"`{f.default!r}`".replace("'", '"')
            if isinstance(f.default, bool):  # as written in TOML
                default = f"`{str(f.default).lower()}`"
            lines.append(f"| `{section.name}.{f.name}` | {default} | {f.metadata.get('doc', '')} |")
    return "\n".join(lines) + "\n"


def find_config(start: str | os.PathLike[str] = ".") -> Path | None:
    """``acctgraph.toml`` in ``start`` if present."""
    p = Path(start) / CONFIG_FILE
    return p if p.is_file() else None

