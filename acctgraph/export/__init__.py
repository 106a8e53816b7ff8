"""Evidence exports: packets a reviewer can open in a spreadsheet and a browser, and share.

:func:`export` writes one packet per cluster (see :mod:`acctgraph.export.packet`
and docs/packets.md); :func:`verify` checks a packet against its manifest.

Modules, one job each: ``gather`` (read the workspace once; ``shared_keys``
finds the keys both accounts of each link hold), ``tables`` (the
CSV tables), ``examples`` (template examples), ``summary`` (summary.md),
``plots`` (PNG), ``sampling`` + ``html`` (graph.html, index.html), ``stix``
(STIX 2.1 bundle), ``pseudonymise`` (keyed HMACs), ``manifest`` (manifest.json,
verify), ``archive`` (deterministic zip), ``packet`` (the orchestration).
"""

from acctgraph.export.manifest import VerifyReport, verify
from acctgraph.export.packet import ExportResult, PacketInfo, export

__all__ = ["ExportResult", "PacketInfo", "VerifyReport", "export", "verify"]
