"""Files readable by their owner only: how the store, keys, journal and lake are written.

Everything that holds events or keys is created ``0600`` in folders created ``0700``,
whatever the process's umask (a mode given at creation can only lose bits to the umask,
never gain them). A file replaced as a whole (the keys) is written to a temporary file with
a unique name, created exclusively (``O_EXCL``: a file left there by a crash or by someone
else is never reused, so its mode never carries over), synced, then renamed over the old
one. Files and folders that exist already with wider modes (made by an earlier version)
are narrowed when microjourney next opens them.

DuckDB creates its own files (the store and its write-ahead log), so the store is opened
under a narrower umask (:func:`narrow_umask`); the log, which DuckDB deletes at each
checkpoint and creates again at the next write, is kept private by its folder.
"""

from __future__ import annotations

import os
import stat
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = ["DIR_MODE", "FILE_MODE", "create", "make_dir", "narrow", "narrow_umask", "write_atomic"]

FILE_MODE = 0o600
DIR_MODE = 0o700
_UMASK = 0o077
# The umask is one per process: two threads narrowing it at once must not restore each
# other's value out of order.
_umask_lock = threading.Lock()


def make_dir(path: Path) -> Path:
    """Create the folder ``path`` (and missing parents) ``0700``; an existing one is narrowed.

    Parents that did not exist are created ``0700`` too; existing parents are left as they
    are (a workspace's own folder is the user's)."""
    missing = []
    for p in (path, *path.parents):
        if p.is_dir():
            break
        missing.append(p)
    for p in reversed(missing):
        with suppress(FileExistsError):  # another process may make it meanwhile
            p.mkdir(mode=DIR_MODE)
    narrow(path, DIR_MODE)
    return path


def narrow(path: Path, mode: int) -> None:
    """Take away the bits of ``path``'s mode beyond ``mode`` if it has any; a file of another
    owner, or one gone meanwhile, is left alone."""
    with suppress(FileNotFoundError, PermissionError):
        now = stat.S_IMODE(os.stat(path).st_mode)
        if now & ~mode:
            os.chmod(path, now & mode)


def create(path: Path) -> int:
    """A descriptor of the new file ``path``, created ``0600`` and exclusively (an existing file
    is an error, never reused)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: written ``0600`` to a new temporary file beside it (a
    unique name, created exclusively), synced, renamed over ``path``; the folder is synced."""
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = create(temp)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


@contextmanager
def narrow_umask() -> Iterator[None]:
    """Run the block with the umask also taking group and other bits away (for files a
    library creates with its own mode, such as DuckDB's)."""
    with _umask_lock:
        old = os.umask(_UMASK)
        os.umask(old | _UMASK)
        try:
            yield
        finally:
            os.umask(old)
