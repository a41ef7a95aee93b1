"""Whether the data directory can take another image: writable, with a reserve of free space.

A full or read-only disk is a state Car Studio waits out, not a crash: rows pause before they
are paid for, images already paid for are fetched again once they can be written (Replicate
keeps them for an hour), and new work is refused with a sentence saying why.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from carstudio.errors import StorageUnavailable

log = logging.getLogger(__name__)

CHECK_EVERY = 2.0
"""Seconds a verdict is reused: every row and request asks, the disk need not be asked each time."""
LOG_EVERY = 60.0

STORAGE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EIO}
)


def is_storage_fault(exc: BaseException) -> bool:
    """An OSError that says the disk, not the data, is the problem."""
    return isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS


class StorageGuard:
    def __init__(
        self,
        data_dir: Path,
        *,
        min_free_mb: int,
        check_every: float = CHECK_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.data_dir = data_dir
        self.min_free_mb = min_free_mb
        self.check_every = check_every
        self._clock = clock
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._problem: str | None = None
        self._logged_at = -LOG_EVERY

    def problem(self) -> str | None:
        """None when images can be stored; otherwise a sentence saying why not."""
        with self._lock:
            now = self._clock()
            if now - self._checked_at >= self.check_every:
                self._problem = self._look()
                self._checked_at = now
                if self._problem and now - self._logged_at >= LOG_EVERY:
                    log.warning("storage: %s", self._problem)
                    self._logged_at = now
                elif not self._problem and self._logged_at > -LOG_EVERY:
                    log.info("storage: images can be stored again")
                    self._logged_at = -LOG_EVERY
            return self._problem

    def check(self) -> None:
        """Raise StorageUnavailable (a 507) when images cannot be stored now."""
        problem = self.problem()
        if problem:
            raise StorageUnavailable(problem)

    def noticed(self, exc: OSError) -> str:
        """A write just failed: remember that until the next look, and say it in words."""
        with self._lock:
            self._problem = _sentence(exc)
            self._checked_at = self._clock()
            return self._problem

    def _look(self) -> str | None:
        probe = self.data_dir / f".write-check-{os.getpid()}-{threading.get_ident()}"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            return _sentence(exc)
        free_mb = shutil.disk_usage(self.data_dir).free // (1024 * 1024)
        if free_mb < self.min_free_mb:
            return (
                f"The server's disk has {free_mb} MB free, less than the {self.min_free_mb} MB "
                "Car Studio keeps in reserve, so it cannot store images; it continues by itself "
                "once space is freed (CARSTUDIO_MIN_FREE_MB)."
            )
        return None


def _sentence(exc: OSError) -> str:
    why = {
        errno.ENOSPC: "its disk is full",
        errno.EDQUOT: "its disk quota is used up",
        errno.EROFS: "its data directory is read-only",
        errno.EACCES: "it may not write to its data directory",
        errno.EPERM: "it may not write to its data directory",
    }.get(exc.errno or 0, "its data directory cannot be written")
    return (
        f"The server cannot store images because {why}; it continues by itself once that is "
        "fixed, and images already made are kept."
    )
