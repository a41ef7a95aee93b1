"""Who holds a row: lease owner names, and telling a dead holder from a live one."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from types import TracebackType

from carstudio.jobs.store import Store


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


class Heartbeat:
    """Renews a row's lease in the background for as long as the `with` block runs."""

    def __init__(self, store: Store, row_id: int, owner: str, ttl: float) -> None:
        self._store, self._row_id, self._owner, self._ttl = store, row_id, owner, ttl
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"lease-{row_id}")

    def _run(self) -> None:
        while not self._stop.wait(self._ttl / 3):
            self._store.renew(self._row_id, self._owner, self._ttl)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
