"""Paths built from data stay inside their folder.

Account ids, cluster ids, layer or table names can end up in file names.
Whatever their text (``../../etc/passwd``, ``/abs``, ``C:\\x``, ``a\\x00b``,
``..``), a path made from them must not leave the folder it is meant for:

- :func:`safe_name` turns any value into one harmless file-name component
  (letters, digits, ``.``, ``_`` and ``-`` kept, anything else percent-encoded,
  no leading dot, bounded length with a hash suffix so distinct values stay
  distinct);
- :func:`confined` joins components under a root and raises
  :class:`~acctgraph.errors.WorkspaceError` when a component is empty, ``.``
  or ``..``, absolute, or holds a path separator or a control character.

Example:
    >>> safe_name("../../etc/passwd")
    '%2E.%2F..%2Fetc%2Fpasswd'
    >>> safe_name(".hidden"), safe_name(42)
    ('%2Ehidden', '42')
    >>> confined("/work/ws", "layers", "network.parquet").as_posix()
    '/work/ws/layers/network.parquet'
    >>> confined("/work/ws", "..", "x")
    Traceback (most recent call last):
    ...
    acctgraph.errors.WorkspaceError: refusing path component '..' under /work/ws: it would leave the folder
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from acctgraph.errors import WorkspaceError

_SAFE = re.compile(r"[A-Za-z0-9_.-]")
_BAD_COMPONENT = re.compile(r"[/\\\x00-\x1f\x7f:]")
MAX_NAME = 120


def safe_name(value: object, max_len: int = MAX_NAME) -> str:
    """A file-name component for ``value`` that cannot name another folder; injective on text."""
    text = str(value)
    out = "".join(ch if _SAFE.fullmatch(ch) else "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
                  for ch in text)
    if out.startswith("."):
        out = "%2E" + out[1:]
    if not out:
        out = "%00empty"
    if len(out) > max_len:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        out = f"{out[:max_len - 17]}~{digest}"
    return out


def confined(root: str | os.PathLike[str], *parts: str) -> Path:
    """``root / parts``, refusing any component that could leave ``root``."""
    for part in parts:
        text = str(part)
        if (text in ("", ".", "..") or _BAD_COMPONENT.search(text) or PurePosixPath(text).is_absolute()
                or PureWindowsPath(text).drive):
            raise WorkspaceError(f"refusing path component {text[:80]!r} under {root}: it would leave the folder")
    return Path(root).joinpath(*parts)
