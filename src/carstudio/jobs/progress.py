"""A batch's progress as people and programs see it: each row's state and the job's counts, the
cost estimate made before it starts, and the short-lived store of answers that progress polls
are served from."""

from __future__ import annotations

import random
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from carstudio.errors import NOT_RETRIED
from carstudio.jobs.states import JobState, RowState
from carstudio.providers.prices import CURRENCY

STATUS_TTL = 0.5
"""Seconds a progress answer is reused; pages poll every 2 s."""
_JITTER = random.Random()
"""The answers' lifetimes vary by this generator of their own, leaving the process's shared
one alone."""


@dataclass(frozen=True)
class RowStatus:
    row: int
    state: str
    title: str
    image_name: str | None
    error: str | None
    failure: str | None
    seconds: float | None
    cached: bool = False
    identity: Mapping[str, str] = field(default_factory=dict)
    """The fields that identify the car on the lot (spec.IDENTITY_FIELDS), as the file gave them."""
    checks: Mapping[str, Any] | None = None
    """Its image's checks (quality.checks.Inspection as JSON), once it has one."""
    rerolls: int = 0

    @property
    def needs_review(self) -> bool:
        """A finished image whose checks failed or warned: a person should look at it."""
        verdict = (self.checks or {}).get("verdict")
        return self.state == RowState.DONE.value and verdict in ("fail", "warn")

    @property
    def retryable(self) -> bool:
        """Failed while generating (not invalid, not cancelled): retry-failed will run it."""
        return self.state == RowState.FAILED.value and self.failure not in NOT_RETRIED


@dataclass(frozen=True)
class JobStatus:
    id: str
    state: str
    total: int
    done: int
    failed: int
    canceled: int
    running: int
    created_at: float
    finished_at: float | None
    eta_seconds: float | None
    zip_ready: bool
    source_name: str
    model: str
    provider: str
    concurrency: int
    fatal_error: str | None
    owner_id: int | None = None
    stop_failure: str | None = None
    replaced_model: str | None = None
    switch_to: str | None = None
    """The model to offer when a retired model stopped the batch."""
    storage_problem: str | None = None
    """Why the batch is paused: the server cannot store images now."""
    archive_problem: str | None = None
    """Why its ZIP is not there yet, after a failed try to build it."""
    rows: tuple[RowStatus, ...] = ()
    version: int = 0
    """The job's change counter when this answer was read."""

    @property
    def tag(self) -> str:
        """Names this answer: it changes whenever anything the answer says does."""
        problem = zlib.crc32(self.storage_problem.encode()) if self.storage_problem else 0
        return f"{self.version}.{problem:x}"

    @property
    def percent(self) -> int:
        """Finished share, as the API defines it: failed here includes cancelled rows."""
        return round((self.done + self.failed) / self.total * 100) if self.total else 100

    @property
    def retryable(self) -> int:
        return sum(row.retryable for row in self.rows)

    @property
    def cached(self) -> int:
        """Rows the image cache answered, at no cost."""
        return sum(row.cached for row in self.rows)

    @property
    def needs_review(self) -> int:
        """Images whose checks failed or warned, even after their re-roll."""
        return sum(row.needs_review for row in self.rows)

    @property
    def rerolls(self) -> int:
        """Images made again because a check failed: each one a prediction paid for."""
        return sum(row.rerolls for row in self.rows)

    @property
    def finished(self) -> bool:
        return self.state == JobState.READY.value


@dataclass(frozen=True)
class JobSummary:
    """A batch in a list of recent ones."""

    id: str
    state: str
    created_at: float
    finished_at: float | None
    source_name: str
    model: str
    provider: str
    total: int
    done: int
    failed: int
    canceled: int
    stop_reason: str | None


@dataclass(frozen=True)
class Estimate:
    """What a batch would cost before it starts."""

    images: int
    cached_images: int
    per_image: Decimal | None
    """None when the model's price is unknown."""
    model: str
    currency: str = CURRENCY
    includes_rerolls: bool = False

    @property
    def total(self) -> Decimal | None:
        if self.per_image is None:
            return None
        return self.per_image * (self.images - self.cached_images)


class StatusCache:
    """Recent progress answers by job id, shared by every request thread: each is trusted as
    it is for about `ttl` seconds, and after that kept to be compared with the job's version.

    When an answer's time is up, one caller is told to look again while the others keep
    getting it until that look is done; the times vary a little, so the answers of many
    batches do not all come due at once.

    Every read and write holds the lock, so a thread pruning old answers never walks the
    dictionary while another adds to it. Answers are immutable, so handing one out is safe.
    """

    MAX_ENTRIES = 256

    def __init__(self, *, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, JobStatus]] = {}
        """Job id: (when the answer comes due, the answer)."""

    def get(self, job_id: str) -> JobStatus | None:
        """The answer while it is trusted; None when it is unknown, or has come due and this
        caller is the one to look again."""
        answer, due = self.peek(job_id)
        return None if due else answer

    def peek(self, job_id: str) -> tuple[JobStatus | None, bool]:
        """The last answer however old, and whether it has come due and this caller is the
        one to look again."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(job_id)
            if entry is None:
                return None, False
            if now < entry[0]:
                return entry[1], False
            self._entries[job_id] = (self._due(now), entry[1])
        return entry[1], True

    def last(self, job_id: str) -> JobStatus | None:
        """The last answer kept, however old."""
        with self._lock:
            entry = self._entries.get(job_id)
        return None if entry is None else entry[1]

    def put(self, job_id: str, status: JobStatus) -> None:
        now = self._clock()
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries = {
                    key: entry for key, entry in self._entries.items() if now < entry[0]
                }
            self._entries[job_id] = (self._due(now), status)

    def _due(self, now: float) -> float:
        return now + self.ttl * _JITTER.uniform(0.8, 1.2)

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._entries.pop(job_id, None)


def outcomes(by_state: Mapping[str, int]) -> tuple[int, int, int]:
    """Rows done, failed and cancelled. `failed` includes the cancelled ones, as the API's
    `failed` and `percent` count them."""
    canceled = by_state.get(RowState.CANCELED.value, 0)
    return (
        by_state.get(RowState.DONE.value, 0),
        by_state.get(RowState.FAILED.value, 0) + canceled,
        canceled,
    )
