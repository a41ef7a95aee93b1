"""Single images in line for a generation slot, from the same server-wide pool as batch rows.

A single image that waits goes ahead of batch rows that have not started, so the Single tab
stays quick during a batch; each client may have only a few waiting at once; a client that
leaves before its image is started makes nothing.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from carstudio.errors import ClientGone, TryLater
from carstudio.jobs.store import Store

POLL = 0.5
"""Seconds between looks at the slots when no word of a freed one arrives: a safety net."""
WAITING_TTL = 10.0
"""A waiting ticket counts this long unless renewed: batch rows are not held up for long by
the ticket of a process that died while it waited."""


class SingleImageLine:
    def __init__(
        self, store: Store, *, limit: int, per_client: int, deadline_seconds: float
    ) -> None:
        self.store = store
        self.limit = limit
        self.per_client = per_client
        self.deadline_seconds = deadline_seconds

    @contextmanager
    def slot(self, *, client: str, cancelled: threading.Event | None = None) -> Iterator[None]:
        """Wait for a slot, hold it for the block, then give it back. Raises TryLater when
        `client` already has its share waiting, ClientGone when `cancelled` is set first."""
        ticket = uuid.uuid4().hex
        renewed = time.time()
        if not self.store.queue_single(
            ticket, client=client, expires_at=renewed + WAITING_TTL, cap=self.per_client
        ):
            raise TryLater(
                f"You already have {self.per_client} images waiting for their turn; "
                "try again when one of them is done.",
                retry_after=5,
            )
        try:
            hold_until = time.time() + self.deadline_seconds
            while True:
                seen = self.store.slot_changes
                if self.store.take_single_slot(ticket, self.limit, hold_until=hold_until):
                    break
                if cancelled is not None and cancelled.is_set():
                    raise ClientGone("The request was abandoned before its image was started.")
                # Woken as soon as a slot is freed, in this process or another.
                self.store.wait_for_slot_change(POLL, since=seen, single=True)
                now = time.time()
                if now - renewed > WAITING_TTL / 3:
                    self.store.renew_single_wait(ticket, now + WAITING_TTL)
                    renewed = now
                hold_until = now + self.deadline_seconds
            yield
        finally:
            self.store.release_single_slot(ticket)
