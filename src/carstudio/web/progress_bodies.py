"""Progress answers as JSON, made once per batch and version however many pages poll.

The answer for a batch of 50 cars is some 50 KB of JSON, and making it whole (a model for
every row and every check of its image, then the dump) takes milliseconds of the event loop,
once for every change of every batch being watched. Between two versions nearly every row is
as it was, so the JSON of each row is kept beside the row it was made from, and only rows
that changed are made again; the answer is the batch's own fields with those rows put in.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from carstudio.jobs.progress import JobStatus, RowStatus
from carstudio.web.schemas import BatchStatusOut, RowProgressOut

_NO_ROWS = b'"rows":[]}'
"""How the batch's own fields end when dumped without rows: `rows` is the model's last field."""


@dataclass(frozen=True)
class _Made:
    tag: str
    body: bytes
    rows: dict[int, tuple[RowStatus, bytes]] = field(default_factory=dict)
    """Each row's JSON, by row number, with the row it was made from."""


class ProgressBodies:
    """The JSON of `BatchStatusOut` for a progress answer, kept for the last version of each
    batch asked for."""

    MAX_BATCHES = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[str, _Made] = {}

    def of(self, status: JobStatus) -> bytes:
        with self._lock:
            last = self._made.get(status.id)
        if last is not None and last.tag == status.tag:
            return last.body
        kept = last.rows if last is not None else {}
        base = f"/api/batch/{status.id}"
        rows: dict[int, tuple[RowStatus, bytes]] = {}
        for row in status.rows:
            found = kept.get(row.row)
            if found is None or found[0] != row:
                found = (row, RowProgressOut.of(row, base).model_dump_json(by_alias=True).encode())
            rows[row.row] = found
        head = BatchStatusOut.of(status, rows=[]).model_dump_json(by_alias=True).encode()
        assert head.endswith(_NO_ROWS)
        listed = b",".join(json for _, json in rows.values())
        body = b"%s[%s]}" % (head[: -len(b"[]}")], listed)
        with self._lock:
            if len(self._made) >= self.MAX_BATCHES:
                self._made.clear()
            self._made[status.id] = _Made(status.tag, body, rows)
        return body
