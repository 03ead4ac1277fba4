"""The file every SQLite writer on a host queues on (app/models/sqlite_writes.py): an exclusive
`flock` on a file beside the database, one open descriptor per process, taken with a bounded
wait. The kernel frees a dead process's lock, so a crashed worker leaves nothing held."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import threading

try:
    import fcntl
except ImportError:  # not POSIX: no file lock, the process lock alone
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# Failures that may pass (too many open files): the next writer tries again.
_PASSING = (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EINTR)


class WriterFile:
    def __init__(self, fd: int) -> None:
        self.fd, self.pid = fd, os.getpid()
        # At most one blocking wait per descriptor. A lock belongs to the open file, so a
        # second request on it while a wait is pending would be granted beside that wait, and
        # the wait, once abandoned, would drop the lock the second one thinks it holds.
        self._pending: _Wait | None = None

    @classmethod
    def open(cls, path: str) -> WriterFile | None:
        """The lock file, made if missing; None on a system without `flock`. Never through a
        symbolic link, and only a regular file of this process's user, readable by no one
        else: a file another user could lock would let them stop every writer."""
        if fcntl is None:
            return None
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        fd = os.open(path, flags, 0o600)  # OSError: the caller decides
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            os.close(fd)
            raise PermissionError(errno.EPERM, "not a regular file of this user", path)
        if info.st_mode & 0o077:
            os.fchmod(fd, 0o600)
        return cls(fd)

    def acquire(self, timeout: float) -> bool:
        """The lock, waiting at most `timeout` seconds. The wait is a blocking `flock` in a
        thread of its own, woken by the kernel the moment the lock is freed (waiting in slices
        instead measured 8-10 % fewer pushes a second under contention); a wait given up on
        goes on, and the next call takes it back rather than asking again."""
        if self._pending is not None:
            outcome = self._pending.until(timeout)
            if outcome is False:
                return False
            self._pending = None
            if outcome:
                return True
            # It ended without the lock: ask afresh.
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        except OSError as exc:
            log.warning("SQLite writers' lock file refused a lock (%s)", exc)
            return False
        self._pending = _Wait(self.fd)
        outcome = self._pending.until(timeout)
        if outcome is not False:
            self._pending = None
        return bool(outcome)

    def release(self) -> None:
        # A forked child shares the open file, and with it its parent's lock: never its to drop.
        if os.getpid() == self.pid:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)


def is_passing(exc: OSError) -> bool:
    return exc.errno in _PASSING


class _Wait:
    """One blocking wait for the lock. Until someone wants it again, a wait given up on lets
    the lock go as soon as it gets it."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._got = threading.Event()
        self._guard = threading.Lock()
        self._wanted = True
        self._ended = False  # without handing the lock to anyone
        self.thread = threading.Thread(target=self._wait, name="sqlite-writer-lock", daemon=True)
        self.thread.start()

    def _wait(self) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError:
            with self._guard:
                self._ended = True
            return
        with self._guard:
            if self._wanted:
                self._got.set()
                return
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._ended = True

    def until(self, timeout: float) -> bool | None:
        """True: the lock is the caller's. False: not within `timeout`; the wait goes on, not
        wanted. None: the wait has ended without the lock."""
        with self._guard:
            if self._ended:
                return None
            self._wanted = True
        if self._got.wait(timeout):
            return True
        with self._guard:
            self._wanted = self._got.is_set()
            return self._wanted
