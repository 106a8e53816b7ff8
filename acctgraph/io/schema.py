"""The input data contract: which tables exist, their columns and their types.

Columns are matched by name (never by position); names are compared after
stripping surrounding whitespace and lower-casing. The contract is written up
for humans in ``docs/data-contract.md``; this module is its single source of
truth in code.

Example:
    >>> from acctgraph.io.schema import TABLES
    >>> [c.name for c in TABLES["payments"].required]
    ['account_id', 'instrument_id']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

Kind = Literal["id", "text", "timestamp", "ip", "cidr", "int"]

#: Arrow type of each kind after validation.
ARROW_TYPES: dict[str, pa.DataType] = {
    "id": pa.string(),
    "text": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "ip": pa.string(),
    "cidr": pa.string(),
    "int": pa.int64(),
}


@dataclass(frozen=True)
class Column:
    """One column of the contract.

    ``nullable=False`` means a row whose value is missing or empty is
    quarantined; ``max_chars`` bounds id-like values (longer ones are
    quarantined).
    """

    name: str
    kind: Kind
    nullable: bool = True
    doc: str = ""
    max_chars: int | None = None

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.kind]


@dataclass(frozen=True)
class TableSpec:
    """A table of the contract: required and optional columns, and its role."""

    name: str
    required: tuple[Column, ...]
    optional: tuple[Column, ...] = ()
    mandatory: bool = True
    unique_key: str | None = None
    doc: str = ""
    columns: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", {c.name: c for c in self.required + self.optional})


_ID = 256  # longest accepted id-like value, in characters

TABLES: dict[str, TableSpec] = {
    "accounts": TableSpec(
        "accounts",
        required=(
            Column("account_id", "id", nullable=False, max_chars=_ID, doc="unique account identifier"),
            Column("created_at", "timestamp", doc="account creation time"),
        ),
        optional=(
            Column("country", "text", doc="claimed country (ISO 3166 alpha-2)"),
            Column("email_domain", "text", doc="domain of the sign-up e-mail"),
        ),
        unique_key="account_id",
        doc="one row per account",
    ),
    "requests": TableSpec(
        "requests",
        required=(
            Column("account_id", "id", nullable=False, max_chars=_ID),
            Column("ts", "timestamp", nullable=False, doc="time of the exchange"),
            Column("ip", "ip", doc="client IP address (IPv4 or IPv6 text)"),
            Column("model", "text", doc="model name requested"),
            Column("prompt", "text", doc="raw prompt text"),
        ),
        optional=(
            Column("user_agent", "text"),
            Column("input_tokens", "int"),
            Column("output_tokens", "int"),
        ),
        doc="one row per API exchange",
    ),
    "payments": TableSpec(
        "payments",
        required=(
            Column("account_id", "id", nullable=False, max_chars=_ID),
            Column("instrument_id", "id", nullable=False, max_chars=_ID,
                   doc="opaque fingerprint of a card or other payment instrument"),
        ),
        optional=(
            Column("bin", "text", doc="issuer prefix of the card"),
            Column("ts", "timestamp", doc="when the instrument was added or first used"),
            Column("billing_country", "text"),
        ),
        mandatory=False,
        doc="payment instruments attached to accounts",
    ),
    "ip_info": TableSpec(
        "ip_info",
        required=(Column("network", "cidr", nullable=False, doc="CIDR block"),),
        optional=(
            Column("asn", "int"),
            Column("org", "text"),
            Column("kind", "text", doc="residential, mobile, datacenter, vpn, proxy, ..."),
        ),
        mandatory=False,
        doc="optional IP-intelligence enrichment",
    ),
    "known_bad": TableSpec(
        "known_bad",
        required=(Column("account_id", "id", nullable=False, max_chars=_ID),),
        optional=(Column("reason", "text"),),
        mandatory=False,
        doc="accounts already banned, seeds for an investigation",
    ),
    "labels": TableSpec(
        "labels",
        required=(
            Column("account_id", "id", nullable=False, max_chars=_ID),
            Column("campaign", "text", doc="campaign name; empty or null = legitimate"),
        ),
        optional=(Column("population", "text", doc="generator's name for a legitimate group"),),
        mandatory=False,
        unique_key="account_id",
        doc="ground truth, read only by evaluation and tests",
    ),
}

#: Tables read by ``acctgraph build`` (labels are deliberately absent).
BUILD_TABLES: tuple[str, ...] = ("accounts", "requests", "payments", "ip_info", "known_bad")
