"""Deterministic zip files of packet folders.

Entries are sorted, stored under the packet's folder name, dated 1980-01-01
(the zip epoch), with fixed permissions and compression, so the same folder
always gives the same zip bytes. The zip is written atomically.

Example:
    >>> import tempfile, pathlib, zipfile
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "cluster-1"
    >>> d.mkdir(); _ = (d / "a.txt").write_text("hi")
    >>> z = zip_folder(d, d.with_suffix(".zip"))
    >>> zipfile.ZipFile(z).namelist()
    ['cluster-1/a.txt']
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from acctgraph.io.atomic import atomic_path

ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def zip_folder(folder: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Zip ``folder`` (recursively) into ``dest``; returns ``dest``."""
    folder, dest = Path(folder), Path(dest)
    files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.relative_to(folder).as_posix())
    with atomic_path(dest) as tmp:
        with zipfile.ZipFile(tmp, "w") as z:
            for f in files:
                info = zipfile.ZipInfo(f"{folder.name}/{f.relative_to(folder).as_posix()}", date_time=ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # unix, whatever the platform
                info.external_attr = 0o644 << 16
                z.writestr(info, f.read_bytes(), compresslevel=6)
    return dest
