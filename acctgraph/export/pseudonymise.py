"""Keyed pseudonyms for sharing packets outside the company.

Account ids, e-mail domains and payment instrument ids are replaced by a
keyed HMAC-SHA256 of the value, so the same value gets the same pseudonym in
every file of a packet (and in every packet exported with the same key),
while nobody without the key can reverse or recompute it::

    pseudonym = prefix + hex(HMAC-SHA256(key, kind + "\\x00" + value))[:20]

The kind (``account``, ``email``, ``instrument``) is part of the message, so
an account and an instrument with the same id do not share a pseudonym. The
key comes from ``[export] pseudonym_key`` or, when that is empty, from the
environment variable named by ``[export] pseudonym_key_env``
(``ACCTGRAPH_PSEUDONYM_KEY``); it is never written anywhere. The manifest
records only a *key id* (an HMAC of a fixed label), so a recipient can tell
whether two packets were pseudonymised with the same key.

Example:
    >>> p = Pseudonymiser(b"secret")
    >>> p.one("account", "acct-42")
    'acct-22f38a3f8f2cd97d9cb7'
    >>> p.one("account", "acct-42") == p.one("account", "acct-42") != p.one("instrument", "acct-42")
    True
"""

from __future__ import annotations

import hashlib
import hmac
import os

import pandas as pd

from acctgraph.errors import ConfigError

#: Pseudonym prefix per kind of value.
PREFIX = {"account": "acct-", "email": "mail-", "instrument": "inst-"}
HEX_CHARS = 20  # 80 bits: collisions are negligible at a billion values


class Pseudonymiser:
    """Maps values to keyed pseudonyms; values that are null or empty stay as they are."""

    def __init__(self, key: bytes):
        if not key:
            raise ConfigError("the pseudonymisation key is empty")
        self._key = bytes(key)

    @property
    def key_id(self) -> str:
        """A short fingerprint of the key (not the key): equal for packets made with the same key."""
        return hmac.new(self._key, b"acctgraph pseudonym key id", hashlib.sha256).hexdigest()[:12]

    def one(self, kind: str, value: str) -> str:
        """The pseudonym of one value."""
        mac = hmac.new(self._key, f"{kind}\x00{value}".encode("utf-8", "surrogatepass"), hashlib.sha256)
        return PREFIX[kind] + mac.hexdigest()[:HEX_CHARS]

    def series(self, kind: str, values: pd.Series) -> pd.Series:
        """Pseudonyms of a column: each distinct value is hashed once."""
        keep = values.isna() | (values.astype("string") == "")
        mapping = {v: self.one(kind, str(v)) for v in pd.unique(values[~keep])}
        return values.map(mapping).where(~keep, values)


def resolve_key(config_key: str, env_name: str) -> bytes:
    """The key from the configuration, else from the environment; a clear error when neither is set."""
    if config_key:
        return config_key.encode("utf-8")
    value = os.environ.get(env_name, "") if env_name else ""
    if not value:
        raise ConfigError(f"pseudonymisation needs a key: set the environment variable {env_name or '(unset)'} "
                          "(or [export] pseudonym_key in acctgraph.toml)")
    return value.encode("utf-8")
