"""The states of a batch row and of a batch job."""

from __future__ import annotations

from enum import StrEnum


class RowState(StrEnum):
    QUEUED = "queued"
    CREATING = "creating"
    WAITING = "waiting"
    DOWNLOADING = "downloading"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"


TERMINAL_ROWS = frozenset({RowState.DONE, RowState.FAILED, RowState.CANCELED})
ACTIVE_ROWS = frozenset({RowState.CREATING, RowState.WAITING, RowState.DOWNLOADING})


class JobState(StrEnum):
    RUNNING = "running"
    ARCHIVING = "archiving"
    READY = "ready"
    EXPIRED = "expired"
