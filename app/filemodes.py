"""Who may read what Cargohold writes: its owner alone.

The data folder holds password hashes (`cargohold.db`), signing keys and private blobs, so it
is created 0700 and every file in it 0600, whatever umask the process was started with.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

# New files 0600 and folders 0700, including those libraries create (SQLite's -wal and -shm
# files, temporary upload files).
PRIVATE_UMASK = 0o077


def restrict_new_files() -> None:
    """Called where the process starts (wsgi.py, which `flask` commands load too)."""
    os.umask(PRIVATE_UMASK)


def private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)


def private_file(path: Path) -> None:
    """Create an empty 0600 file unless one exists, for a library to fill (SQLite keeps the
    mode of the database file for its journal and WAL files)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def write_private(path: Path, text: str) -> None:
    """Write a secret to a new 0600 file: never readable by others, not even for a moment."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)


def private_once(path: Path, make: Callable[[], str]) -> str:
    """The text of `path`, written with `make()` by the first of several processes starting at
    once (replicas, gunicorn workers): each writes a temporary file of its own, whole and
    synced, and the first link into place wins; the others read the winner's text."""
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(make())
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    return path.read_text()
