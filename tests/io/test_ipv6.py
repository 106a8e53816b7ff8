"""Bulk IPv6: inet_pton + vectorised RFC 5952 text give exactly what ipaddress gives, one address at a time."""

from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from acctgraph.io.ipv6 import groups_of, v6_text
from acctgraph.io.normalise import IpCache, canonical_ip, normalise_ip


def _renderings(rng: np.random.Generator, n: int) -> list[str]:
    """IPv6 addresses with zero groups in runs of every length and place, written in the many ways
    ipaddress reads: upper/lower case, leading zeros, any run of zeros as "::" or spelled out."""
    out = []
    for _ in range(n):
        groups = rng.integers(0, 1 << 16, 8) * (rng.random(8) < 0.5)
        parts = [format(int(g), rng.choice(["x", "X", "04x", "04X"])) for g in groups]
        zeros = [j for j in range(8) if groups[j] == 0]
        if zeros and rng.random() < 0.7:  # squeeze some run of zeros (not always the longest)
            a = int(rng.choice(zeros))
            b = a
            while b + 1 < 8 and groups[b + 1] == 0 and rng.random() < 0.8:
                b += 1
            parts = parts[:a] + [""] + parts[b + 1:]
            text = ":".join(parts)
            text = ("::" + text[1:] if a == 0 else text)
            text = (text[:-1] + "::" if b == 7 and a > 0 else text)
            if a == 0 and b == 7:
                text = "::"
        else:
            text = ":".join(parts)
        out.append(text)
    return out


def test_bulk_text_is_ipaddress_text():
    rng = np.random.default_rng(5)
    texts = _renderings(rng, 3000) + ["::", "::1", "1::", "1:0:0:1::", "0:0:1::", "::ffff:0:1", "1:2:3:4:5:6:7::"]
    groups, ok = groups_of(texts)
    ref = []
    for t in texts:
        try:
            ref.append(str(ipaddress.IPv6Address(t)))
        except ValueError:
            ref.append(None)
    assert ok.tolist() == [r is not None for r in ref]
    assert v6_text(groups[ok]).to_pylist() == [r for r in ref if r is not None]


_hexcolon = st.text(alphabet="0123456789abcdefABCDEF:", max_size=45)
_ip_like = st.text(alphabet="0123456789abcdefABCDEF:.%[] fx-", max_size=45)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_hexcolon, _ip_like, st.ip_addresses().map(str),
                          st.ip_addresses(v=6).map(lambda a: str(a).upper())), max_size=30))
def test_normalise_ip_is_canonical_ip_of_every_value(values):
    got = normalise_ip(pa.array(values, pa.string()), IpCache())
    want = [canonical_ip(v) if v.strip() else None for v in values]
    assert got.values.to_pylist() == want
    assert got.bad.tolist() == [w is None and bool(v.strip()) for v, w in zip(values, want)]  # blank: null, not bad


def test_ipv4_mapped_and_bracketed_addresses_still_go_the_general_way():
    values = ["::ffff:192.0.2.1", "::FFFF:c000:201", "[2001:db8::1]", "fe80::1%eth0", "2001:DB8:0::1", "0::0"]
    assert normalise_ip(pa.array(values), IpCache()).values.to_pylist() == [
        "192.0.2.1", "192.0.2.1", "2001:db8::1", "fe80::1", "2001:db8::1", "::"]
