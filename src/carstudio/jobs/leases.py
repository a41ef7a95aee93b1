"""Who holds a row: lease owner names, and telling a dead holder from a live one."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from carstudio.jobs.store import Store

log = logging.getLogger(__name__)


def new_owner() -> str:
    """A name for this process's worker: host/pid/random, unique even when a pid is reused."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str, me: str) -> bool:
    """True when `owner` was a process on this host that no longer runs.

    Owners on other hosts are left to their lease's expiry.
    """
    host, _, rest = owner.partition("/")
    pid_text, _, _ = rest.partition("/")
    if host != socket.gethostname() or not pid_text.isdigit() or owner == me:
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True  # our pid, another owner name: an earlier process that had this pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class LeaseKeeper:
    """Renews the leases of the rows a worker holds, all from one background thread.

    Holding a row costs no thread of its own: starting one per row would make every row
    wait, right after it took its slot, for a new thread to get going. The thread ends once
    the worker holds nothing, so a stopped worker leaves none behind.
    """

    def __init__(self, store: Store, owner: str, ttl: float) -> None:
        self._store, self._owner, self._ttl = store, owner, ttl
        self._held: set[int] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextmanager
    def hold(self, row_id: int) -> Iterator[None]:
        """Keep the row's lease alive for as long as the block runs."""
        with self._lock:
            self._held.add(row_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="leases")
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._held.discard(row_id)

    def _run(self) -> None:
        while True:
            time.sleep(self._ttl / 3)
            with self._lock:
                held = list(self._held)
                if not held:
                    self._thread = None
                    return
            for row_id in held:
                try:
                    self._store.renew(row_id, self._owner, self._ttl)
                except Exception:
                    log.exception("renewing the lease of row %s failed; trying again", row_id)
