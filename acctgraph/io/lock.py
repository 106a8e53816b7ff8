"""One writer per workspace: an advisory lock on ``WORK/.acctgraph.lock``.

Every stage that writes into a workspace (``build``, ``communities``,
``evaluate``; ``load`` when called on its own) holds an exclusive
``fcntl.flock`` on the lock file for as long as it runs. A second run in the
same workspace fails at once with :class:`~acctgraph.errors.WorkspaceBusyError`
(exit code 7) naming the process that holds it, instead of interleaving its
writes with the first run's. ``export`` holds the same lock, so it never reads
the half-written outputs of a running stage. The lock has no shared mode, so
two exports of one workspace run one at a time too (by default both would
write into ``WORK/packets``).

The operating system releases a ``flock`` when its holder exits, however it
exits (including ``SIGKILL`` or a crash), so a lock is never stale: the file
left behind by a killed run does not block the next one. The lock is
re-entrant within one process (``build`` calls ``load``). On platforms without
``fcntl`` (Windows) locking is skipped: runs are not protected from each other
there.

Example:
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with workspace_lock(d, "demo"):
    ...     with workspace_lock(d, "demo, nested"):  # re-entrant in one process
    ...         holder(d)
    'demo'
    >>> holder(d) is None
    True
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from acctgraph.errors import WorkspaceBusyError, WorkspaceError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locking
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".acctgraph.lock"

_held: dict[str, list] = {}  # real path of a lock file -> [fd, depth, what]
_guard = threading.Lock()


def lock_path(workspace: str | os.PathLike[str]) -> Path:
    """The lock file of a workspace folder."""
    return Path(workspace) / LOCK_FILE


def holder(workspace: str | os.PathLike[str]) -> str | None:
    """What this process holds the workspace's lock for, or None when it does not hold it."""
    entry = _held.get(os.path.realpath(lock_path(workspace)))
    return entry[2] if entry else None


def _describe(fd: int) -> str:
    """The holder's note (pid, command) read from the lock file; empty if none was written."""
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", errors="replace")
    except OSError:
        return ""
    return " ".join(text.split())[:120]


@contextlib.contextmanager
def workspace_lock(workspace: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Hold the workspace's lock for the block; raise WorkspaceBusyError if another process has it.

    ``what`` (e.g. ``"acctgraph build"``) is written into the lock file with
    the process id so that a second run can say who is busy; the file is
    emptied again on release.
    """
    root = Path(workspace)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WorkspaceError(f"{root}: cannot create the workspace folder ({e.strerror or e}); "
                             "choose a writable output folder") from e
    path = lock_path(root)
    key = os.path.realpath(path)
    with _guard:
        entry = _held.get(key)
        if entry is not None:
            entry[1] += 1
    if entry is not None:
        try:
            yield
        finally:
            with _guard:
                entry[1] -= 1
        return
    if fcntl is None:  # pragma: no cover - no advisory locks on this platform
        yield
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise WorkspaceError(f"{root}: cannot write in the workspace ({e.strerror or e}); "
                             "choose a writable output folder") from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise WorkspaceError(f"{root}: cannot lock the workspace ({e.strerror or e})") from e
            who = _describe(fd)
            raise WorkspaceBusyError(f"{root}: the workspace is in use by another acctgraph run"
                                     f"{' (' + who + ')' if who else ''}; wait for it to finish, or "
                                     "write to another workspace (--out)") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}: {what}\n".encode(), 0)
        except OSError:  # the note is only informative (e.g. a full disk): the lock itself is held
            pass
        with _guard:
            _held[key] = [fd, 1, what]
        try:
            yield
        finally:
            with _guard:
                del _held[key]
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the flock
