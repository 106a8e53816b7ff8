"""``python -m acctgraph`` runs the command line."""

import sys

from acctgraph.cli import main, quick_exit

sys.exit(quick_exit(main()))
