"""``python -m acctgraph`` runs the command line."""

import sys

from acctgraph.cli import main

sys.exit(main())
