"""Stage prerequisites: a stage whose inputs are missing names the command to run first.

Stages run in the order of :data:`acctgraph.io.workspace.STAGES` (load and
build by ``acctgraph build``, then ``acctgraph communities``); export,
evaluate, show and explain read the communities. :func:`require` checks the
whole chain, so a workspace that was never built says "run `acctgraph
build` first" rather than naming a later stage.

Example:
    >>> import tempfile
    >>> from acctgraph.errors import WorkspaceError
    >>> from acctgraph.io.workspace import Workspace
    >>> try:
    ...     require(Workspace(tempfile.gettempdir() + "/no-such-workspace"), "communities")
    ... except WorkspaceError as e:
    ...     print(str(e).split("; ")[-1])
    run `acctgraph build` first
"""

from __future__ import annotations

from typing import Any

from acctgraph.io.workspace import STAGES, Workspace


def require(ws: Workspace, stage: str) -> dict[str, Any]:
    """The JSON record of ``stage`` after checking it and every earlier stage completed.

    Raises :class:`acctgraph.errors.WorkspaceError` for the first stage that
    is missing, stale or unreadable, naming the command that produces it.
    """
    if stage not in STAGES:
        raise KeyError(f"unknown stage {stage!r}; valid stages: {', '.join(STAGES)}")
    for earlier in list(STAGES)[: list(STAGES).index(stage)]:
        ws.read_marker(earlier)
    return ws.read_marker(stage)
