"""Exceptions raised by acctgraph.

Every error a user can cause is an :class:`AcctgraphError` whose message is one
line naming what is wrong and how to fix it. The CLI prints that line (no
traceback) and exits with the error's ``exit_code``.

Exit codes (also documented in docs/cli.md):

====  =====================================================
0     success
1     unexpected internal error (a bug: please report it)
2     usage error, or a subcommand that is not built yet
3     input error: missing/unreadable file, missing column
4     configuration error: bad ``acctgraph.toml`` or option
5     workspace error: a stage's inputs are missing or stale,
      or the output folder is not writable (read-only, disk full)
6     integrity error: a packet does not match its manifest
7     workspace busy: another acctgraph run holds its lock
130   interrupted (Ctrl-C)
====  =====================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_CONFIG = 4
EXIT_WORKSPACE = 5
EXIT_INTEGRITY = 6
EXIT_BUSY = 7
EXIT_INTERRUPTED = 130

#: exit code -> meaning (rendered into ``acctgraph --help`` and docs/cli.md)
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_INTERNAL: "unexpected internal error (a bug: please report it with the --debug traceback)",
    EXIT_USAGE: "usage error: a bad option, an unknown cluster or account id",
    EXIT_INPUT: "input error: a missing or unreadable file, a missing column",
    EXIT_CONFIG: "configuration error: a bad acctgraph.toml or option value",
    EXIT_WORKSPACE: "workspace error: a stage's inputs are missing or stale (the message names the command to run), "
                    "or the output folder is not writable (read-only, disk full)",
    EXIT_INTEGRITY: "integrity error: a packet does not match its manifest",
    EXIT_BUSY: "workspace busy: another acctgraph run holds the workspace's lock",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}


class AcctgraphError(Exception):
    """Base class: a problem the user can fix, reported as one line."""

    exit_code: int = EXIT_INTERNAL


class InputError(AcctgraphError):
    """An input file is missing, unreadable, or lacks a required column."""

    exit_code = EXIT_INPUT


class ConfigError(AcctgraphError):
    """A configuration value or file is invalid."""

    exit_code = EXIT_CONFIG


class WorkspaceError(AcctgraphError):
    """A workspace is missing a stage's output, is locked, or is stale."""

    exit_code = EXIT_WORKSPACE




class WorkspaceBusyError(WorkspaceError):
    """Another acctgraph run holds the workspace's lock; try again when it has finished."""

    exit_code = EXIT_BUSY


class NotBuiltYetError(AcctgraphError):
    """A pipeline stage that this version of acctgraph does not provide yet."""

    exit_code = EXIT_USAGE


class UsageError(AcctgraphError):
    """A command-line or API argument that cannot be used (e.g. an unknown cluster id)."""

    exit_code = EXIT_USAGE


class IntegrityError(AcctgraphError):
    """An evidence packet whose files do not match its manifest (modified, missing or added)."""

    exit_code = EXIT_INTEGRITY
