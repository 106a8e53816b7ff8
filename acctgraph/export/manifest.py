"""manifest.json of a packet, and ``verify``: does a packet still match its manifest?

The manifest lists every other file of the packet with its size and SHA-256,
plus the acctgraph version, the SHA-256 of every input table (from the
workspace's load.json), the export parameters and the creation time. The
creation time is the only value that changes between two exports of the same
workspace; set ``SOURCE_DATE_EPOCH`` (seconds since 1970, UTC) to fix it and
get byte-identical packets.

``verify`` accepts a packet folder or its ``.zip`` and reports the first
problem first: a listed file that is missing, a file whose size or SHA-256
differs, a file that is not listed (added later), or a manifest path that
would leave the packet.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.csv").write_text("x\\n")
    >>> _ = write_manifest(d, {"note": "demo"}, created="2026-01-01T00:00:00Z")
    >>> verify(d).ok
    True
    >>> _ = (d / "a.csv").write_text("y\\n")
    >>> verify(d).problems[0]
    'a.csv: modified (SHA-256 differs from manifest.json)'
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from acctgraph._version import __version__
from acctgraph.errors import ConfigError, InputError
from acctgraph.io.atomic import sha256_file, write_json_atomic

MANIFEST = "manifest.json"
FORMAT = "acctgraph-packet"
FORMAT_VERSION = 1


def creation_time() -> str:
    """Now (UTC, ISO-8601), or ``SOURCE_DATE_EPOCH`` when that is set (reproducible builds)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        try:
            when = datetime.fromtimestamp(int(epoch), tz=timezone.utc)
        except (ValueError, OverflowError, OSError) as e:
            raise ConfigError(f"SOURCE_DATE_EPOCH={epoch!r} is not a number of seconds since 1970") from e
    else:
        when = datetime.now(tz=timezone.utc).replace(microsecond=0)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
                  and p.relative_to(folder).as_posix() != MANIFEST)


def write_manifest(folder: str | os.PathLike[str], fields: dict[str, Any], *, created: str | None = None) -> dict:
    """Write ``folder/manifest.json`` listing every other file of ``folder``; returns the manifest."""
    folder = Path(folder)
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "acctgraph_version": __version__,
                "created": created or creation_time(), **fields,
                "files": [{"path": f, "bytes": (folder / f).stat().st_size, "sha256": sha256_file(folder / f)}
                          for f in _files(folder)]}
    write_json_atomic(folder / MANIFEST, manifest)
    return manifest


@dataclass
class VerifyReport:
    """Result of checking a packet against its manifest."""

    packet: str
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        if self.ok:
            return [f"{self.packet}: OK, {self.checked} files match manifest.json "
                    f"(created {self.manifest.get('created', '?')} by acctgraph "
                    f"{self.manifest.get('acctgraph_version', '?')})"]
        return [f"{self.packet}: {p}" for p in self.problems]


def _safe(path: str) -> bool:
    p = PurePosixPath(path)
    return bool(path) and not p.is_absolute() and ".." not in p.parts and "\\" not in path and ":" not in path


def _check(report: VerifyReport, listed: list[dict], read) -> None:
    """Compare each listed file with ``read(path) -> bytes | None``."""
    for entry in listed:
        path = str(entry.get("path", ""))
        if not _safe(path):
            report.problems.append(f"{path or '(empty path)'}: unsafe path in manifest.json")
            continue
        data = read(path)
        if data is None:
            report.problems.append(f"{path}: missing")
        elif len(data) != entry.get("bytes") or hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            report.problems.append(f"{path}: modified (SHA-256 differs from manifest.json)")
        report.checked += 1


def verify(packet: str | os.PathLike[str]) -> VerifyReport:
    """Check a packet folder (or its .zip) against its manifest; see :class:`VerifyReport`."""
    p = Path(packet)
    report = VerifyReport(str(p))
    if p.is_file() and zipfile.is_zipfile(p):
        return _verify_zip(p, report)
    if not p.is_dir():
        raise InputError(f"{p}: no such packet folder or zip file (packets are written by `acctgraph export WORK`, "
                         "into WORK/packets/cluster-<id>)")
    mpath = p / MANIFEST
    if not mpath.is_file():
        report.problems.append(f"{MANIFEST}: missing (is {p} an acctgraph packet?)")
        return report
    try:
        report.manifest = json.loads(mpath.read_text(encoding="utf-8"))
        listed = list(report.manifest["files"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        report.problems.append(f"{MANIFEST}: unreadable ({e})")
        return report

    def read(path: str) -> bytes | None:
        f = p / path
        return f.read_bytes() if f.is_file() else None

    _check(report, listed, read)
    extra = sorted(set(_files(p)) - {str(e.get("path")) for e in listed})
    report.problems += [f"{f}: not listed in manifest.json (added after export)" for f in extra]
    return report


def _verify_zip(p: Path, report: VerifyReport) -> VerifyReport:
    with zipfile.ZipFile(p) as z:
        names = [n for n in z.namelist() if not n.endswith("/")]
        tops = {n.split("/", 1)[0] for n in names if "/" in n}
        prefix = f"{tops.pop()}/" if len(tops) == 1 and all("/" in n for n in names) else ""
        if prefix + MANIFEST not in names:
            report.problems.append(f"{MANIFEST}: missing (is {p} an acctgraph packet?)")
            return report
        try:
            report.manifest = json.loads(z.read(prefix + MANIFEST).decode("utf-8"))
            listed = list(report.manifest["files"])
        except (ValueError, KeyError, TypeError) as e:
            report.problems.append(f"{MANIFEST}: unreadable ({e})")
            return report
        inside = {n[len(prefix):] for n in names}

        def read(path: str) -> bytes | None:
            return z.read(prefix + path) if path in inside else None

        _check(report, listed, read)
        extra = sorted(inside - {str(e.get("path")) for e in listed} - {MANIFEST})
        report.problems += [f"{f}: not listed in manifest.json (added after export)" for f in extra]
    return report
