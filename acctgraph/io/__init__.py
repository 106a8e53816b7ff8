"""Input contract, readers, validation and the workspace (see docs/data-contract.md)."""

from acctgraph.io.load import LoadReport, load, read_table
from acctgraph.io.schema import TABLES
from acctgraph.io.validate import TableReport
from acctgraph.io.workspace import Workspace

__all__ = ["TABLES", "LoadReport", "TableReport", "Workspace", "load", "read_table"]
