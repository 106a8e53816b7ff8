"""Evidence layers: each turns validated tables into weighted account pairs plus evidence.

Every layer follows one contract (see :mod:`acctgraph.layers.base`): it reads
tables through the engine, writes ``layers/<name>.parquet`` (pairs ``src <
dst`` of node ids with ``weight`` and ``evidence``) and an evidence table
``evidence/<name>.parquet`` that exports join back to concrete instruments,
IPs and windows, templates or time bins.
"""
