"""Vectorised prompt rendering from template families.

A family is a tuple of paraphrase variants; a variant is text with slots (see
:mod:`acctgraph.synth.vocab`). :meth:`TemplateBank.render` fills a whole column
at once: rows are grouped by family and variant, every slot of a group is one
``take`` from an Arrow pool, and the pieces are joined with
``binary_join_element_wise``. No Python code runs per row.

Example:
    >>> import numpy as np
    >>> bank = TemplateBank({"greet": ("hello {first_name}", "hi {first_name}!")})
    >>> out = bank.render(["greet"], np.zeros(3, dtype=np.int64), np.random.default_rng(0), Style())
    >>> len(out), all(s.startswith(("hello ", "hi ")) for s in out.to_pylist())
    (3, True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from acctgraph.synth import vocab

_TOKEN = re.compile(r"\{\{|\}\}|\{([~@]?[a-z_0-9]+)\}")

Part = tuple[str, str]  # (kind, value); kind in lit, pool, syn, fam, num, code, passage


def parse_template(text: str) -> tuple[Part, ...]:
    """Split a template into literal text and slots."""
    parts: list[Part] = []
    lit: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        lit.append(text[pos:m.start()])
        pos = m.end()
        tok = m.group(0)
        if tok == "{{":
            lit.append("{")
            continue
        if tok == "}}":
            lit.append("}")
            continue
        name = m.group(1)
        if "".join(lit):
            parts.append(("lit", "".join(lit)))
        lit = []
        if name.startswith("~"):
            parts.append(("syn", name[1:]))
        elif name.startswith("@"):
            parts.append(("fam", name[1:]))
        elif name in vocab.NUMBER_SLOTS:
            parts.append(("num", name))
        elif name in ("code", "passage"):
            parts.append((name, name))
        else:
            parts.append(("pool", name))
    lit.append(text[pos:])
    if "".join(lit):
        parts.append(("lit", "".join(lit)))
    return tuple(parts)


@dataclass(frozen=True)
class Style:
    """How a population phrases its prompts.

    Attributes:
        synonyms: draw synonym groups at random (False: always the canonical wording).
        variants: allowed variant indices per family (absent family: all variants).
        pre, post: wrapper pools prepended/appended to every prompt (None: none).
        preamble: pool of preambles prepended before ``pre`` (None: none).
        lower_share: share of prompts lower-cased (casual typing).
        skew: pool-index skew; values > 1 favour the head of each pool (popular
            dishes, cities ...), 1.0 is uniform.
    """

    synonyms: bool = True
    variants: dict[str, tuple[int, ...]] = field(default_factory=dict)
    pre: tuple[str, ...] | None = None
    post: tuple[str, ...] | None = None
    preamble: tuple[str, ...] | None = None
    lower_share: float = 0.0
    skew: float = 1.0


def _const(s: str, m: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(np.zeros(m, dtype=np.int32), pa.array([s])).cast(pa.string())


class TemplateBank:
    """Parsed families plus the Arrow pools their slots draw from."""

    def __init__(self, families: dict[str, tuple[str, ...]] | None = None) -> None:
        self.families: dict[str, list[tuple[Part, ...]]] = {}
        for name, variants in (families if families is not None else vocab.FAMILIES).items():
            self.add_family(name, variants)
        self.synonyms = {k: [parse_template(v) for v in vs] for k, vs in vocab.SYNONYMS.items()}
        # ``{~lc_name}``: the same group starting lower-case, for use mid-sentence
        self.synonyms.update({f"lc_{k}": [parse_template(v[:1].lower() + v[1:]) for v in vs]
                              for k, vs in vocab.SYNONYMS.items()})
        self.pools = {k: pa.array(list(v), pa.string()) for k, v in vocab.POOLS.items()}
        self.code = pa.array(vocab.code_snippets(), pa.string())
        self.sentences = pa.array(vocab.passage_sentences(), pa.string())
        self._wrap_cache: dict[tuple[str, ...], pa.Array] = {}

    def add_family(self, name: str, variants: tuple[str, ...]) -> None:
        self.families[name] = [parse_template(v) for v in variants]

    # ------------------------------------------------------------ slots
    def _pool_idx(self, size: int, m: int, rng: np.random.Generator, skew: float) -> np.ndarray:
        u = rng.random(m)
        if skew != 1.0:
            u = u ** skew
        return np.minimum((u * size).astype(np.int64), size - 1)

    def _wrap(self, pool: tuple[str, ...]) -> pa.Array:
        arr = self._wrap_cache.get(pool)
        if arr is None:
            arr = self._wrap_cache[pool] = pa.array(list(pool), pa.string())
        return arr

    def _passage(self, m: int, rng: np.random.Generator) -> pa.Array:
        k = rng.integers(1, 5, size=m)
        offsets = np.zeros(m + 1, dtype=np.int32)
        np.cumsum(k, out=offsets[1:])
        vals = self.sentences.take(rng.integers(0, len(self.sentences), size=int(offsets[-1])))
        return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), vals), " ")

    def _fill(self, parts: tuple[Part, ...], m: int, rng: np.random.Generator, style: Style) -> pa.Array:
        cols: list[pa.Array | str] = []
        for kind, val in parts:
            if kind == "lit":
                cols.append(val)
            elif kind == "pool":
                pool = self.pools[val]
                cols.append(pool.take(self._pool_idx(len(pool), m, rng, style.skew)))
            elif kind == "syn":
                cols.append(self._choose(self.synonyms[val], m, rng, style,
                                         canonical=not style.synonyms, allowed=None))
            elif kind == "fam":
                cols.append(self._family(val, m, rng, style))
            elif kind == "num":
                lo, hi = vocab.NUMBER_SLOTS[val]
                cols.append(pc.cast(pa.array(rng.integers(lo, hi + 1, size=m)), pa.string()))
            elif kind == "code":
                cols.append(self.code.take(rng.integers(0, len(self.code), size=m)))
            elif kind == "passage":
                cols.append(self._passage(m, rng))
        arrays = [c for c in cols if not isinstance(c, str)]
        if not arrays:
            return _const("".join(c for c in cols if isinstance(c, str)), m)
        if len(cols) == 1:
            return arrays[0]
        return pc.binary_join_element_wise(*cols, "")

    def _choose(self, variants: list[tuple[Part, ...]], m: int, rng: np.random.Generator, style: Style,
                canonical: bool, allowed: tuple[int, ...] | None) -> pa.Array:
        """Render ``m`` rows from ``variants`` (order of rows is random)."""
        if canonical:
            return self._fill(variants[0], m, rng, style)
        choices = np.asarray(allowed if allowed else range(len(variants)), dtype=np.int64)
        if len(choices) == 1:
            return self._fill(variants[int(choices[0])], m, rng, style)
        v = choices[rng.integers(0, len(choices), size=m)]
        counts = np.bincount(v, minlength=len(variants))
        pieces = [self._fill(variants[j], int(c), rng, style) for j, c in enumerate(counts) if c]
        out = pa.concat_arrays(pieces)
        return out.take(rng.permutation(m))

    def _family(self, name: str, m: int, rng: np.random.Generator, style: Style) -> pa.Array:
        return self._choose(self.families[name], m, rng, style, canonical=False,
                            allowed=style.variants.get(name))

    # ------------------------------------------------------------ public
    def render(self, names: list[str], fam: np.ndarray, rng: np.random.Generator, style: Style) -> pa.Array:
        """Render one prompt per row; row ``i`` uses family ``names[fam[i]]``."""
        n = len(fam)
        if n == 0:
            return pa.array([], pa.string())
        order = np.argsort(fam, kind="stable")
        counts = np.bincount(fam, minlength=len(names))
        pieces = [self._family(names[f], int(c), rng, style) for f, c in enumerate(counts) if c]
        body = pa.concat_arrays(pieces) if len(pieces) > 1 else pieces[0]
        inv = np.empty(n, dtype=np.int64)
        inv[order] = np.arange(n)
        body = body.take(inv)
        cols: list[pa.Array] = []
        for pool in (style.preamble, style.pre):
            if pool:
                arr = self._wrap(pool)
                cols.append(arr.take(rng.integers(0, len(arr), size=n)))
        cols.append(body)
        if style.post:
            arr = self._wrap(style.post)
            cols.append(arr.take(rng.integers(0, len(arr), size=n)))
        out = pc.binary_join_element_wise(*cols, "") if len(cols) > 1 else body
        if style.lower_share > 0:
            mask = rng.random(n) < style.lower_share
            if mask.any():
                out = pc.replace_with_mask(out, pa.array(mask), pc.utf8_lower(out.filter(pa.array(mask))))
        return out


_BANK: TemplateBank | None = None


def bank() -> TemplateBank:
    """The shared bank of standard families (built once per process)."""
    global _BANK
    if _BANK is None:
        _BANK = TemplateBank()
    return _BANK
