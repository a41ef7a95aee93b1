"""`carstudio batch`: a CSV batch run in process or on a Car Studio server, with a live
progress bar.

Both runs turn their progress into a `BatchView` and hand it to the same display code
(`watch`, `report`), so a batch looks the same wherever it runs.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from carstudio.config import Settings
from carstudio.errors import CarStudioError
from carstudio.generation import Studio
from carstudio.jobs.service import BatchService, JobStatus
from carstudio.jobs.states import JobState, RowState
from carstudio.remote import RemoteStudio, ServerUnreachable
from carstudio.web.schemas import BatchStatusOut

POLL_SECONDS = 0.25
REMOTE_POLL_SECONDS = 1.0
"""A server is asked once a second: often enough for the bar, cheap for a shared server."""
REMOTE_POLL_FAILURES = 10
"""Consecutive failed polls (about ten seconds of a dropped network) before giving up."""
EXIT_INTERRUPTED = 130
_UNFINISHED = (RowState.FAILED.value, RowState.CANCELED.value)


@dataclass(frozen=True)
class FailedRowLine:
    """A row of the failed-rows table."""

    row: int
    car: str
    reason: str


@dataclass(frozen=True)
class BatchView:
    """What the progress bar and the summary show, whichever engine ran the batch."""

    total: int
    done: int
    failed: int
    eta_seconds: float | None
    finished: bool
    model: str
    elapsed: float
    failed_rows: tuple[FailedRowLine, ...] = ()

    @classmethod
    def of_job(cls, status: JobStatus) -> BatchView:
        """The in-process engine's status."""
        return cls(
            total=status.total,
            done=status.done,
            failed=status.failed,
            eta_seconds=status.eta_seconds,
            finished=status.finished,
            model=status.model,
            elapsed=(status.finished_at or time.time()) - status.created_at,
            failed_rows=_failed_lines((r.row, r.state, r.title, r.error) for r in status.rows),
        )

    @classmethod
    def of_answer(cls, status: BatchStatusOut) -> BatchView:
        """A server's `GET /api/batch/{id}` answer."""
        return cls(
            total=status.total,
            done=status.done,
            failed=status.failed,
            eta_seconds=status.eta_seconds,
            finished=status.state == JobState.READY,
            model=status.model,
            elapsed=(status.finished_at or time.time()) - status.created_at,
            failed_rows=_failed_lines((r.row, r.state, r.title, r.error) for r in status.rows),
        )


def _failed_lines(rows: Iterable[tuple[int, str, str, str | None]]) -> tuple[FailedRowLine, ...]:
    return tuple(
        FailedRowLine(row=row, car=title, reason=error or "No reason was recorded.")
        for row, state, title, error in rows
        if state in _UNFINISHED
    )


# -- the display ----------------------------------------------------------------------------------


def watch(read: Callable[[], BatchView], console: Console, *, interval: float) -> BatchView:
    """Show a live progress bar, reading the batch every `interval` seconds until it is done."""
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[summary]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        view = read()
        bar = progress.add_task("Generating", total=view.total, summary="")
        while True:
            eta = f" · about {view.eta_seconds:.0f} s left" if view.eta_seconds else ""
            progress.update(
                bar,
                completed=view.done + view.failed,
                summary=f"done {view.done} · failed {view.failed}{eta}",
            )
            if view.finished:
                return view
            time.sleep(interval)
            view = read()


def report(view: BatchView, output: Path, console: Console) -> int:
    """Print where the ZIP is and the failed rows; 0 when every row is done, else 1."""
    console.print(
        f"[bold]{view.done}[/] of {view.total} images in [bold]{output}[/] "
        f"({view.model}, {view.elapsed:.1f} s)"
    )
    if view.failed:
        console.print(_failed_table(view.failed_rows))
        return 1
    return 0


def _failed_table(lines: Iterable[FailedRowLine]) -> Table:
    table = Table(title="Failed rows", title_justify="left")
    table.add_column("Row", justify="right")
    table.add_column("Car")
    table.add_column("Reason")
    for line in lines:
        table.add_row(str(line.row), line.car, line.reason)
    return table


# -- the two runs ---------------------------------------------------------------------------------


def run_batch(
    settings: Settings,
    data: bytes,
    *,
    source_name: str,
    output: Path,
    skip_invalid: bool = False,
    model: str | None = None,
    console: Console | None = None,
) -> int:
    """Run one CSV to a ZIP at `output`; 0 when every row is done, 1 when some failed."""
    console = console or Console(stderr=True)
    studio = Studio(settings)
    batches = BatchService(settings, studio)
    try:
        batches.start(workers=True, periodic=False)
        job_id = batches.submit(
            data, source_name=source_name, skip_invalid=skip_invalid, model=model
        )
        try:
            view = watch(
                lambda: BatchView.of_job(batches.status(job_id)), console, interval=POLL_SECONDS
            )
        except KeyboardInterrupt:
            console.print(
                f"Interrupted. Batch {job_id} is kept in {settings.data_dir} and resumes "
                "the next time Car Studio starts with that data directory."
            )
            return EXIT_INTERRUPTED
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(batches.zip_path(job_id), output)
    finally:
        batches.stop()
        studio.close()
    return report(view, output, console)


def run_remote_batch(
    remote: RemoteStudio,
    data: bytes,
    *,
    source_name: str,
    output: Path,
    skip_invalid: bool = False,
    model: str | None = None,
    console: Console | None = None,
    interval: float = REMOTE_POLL_SECONDS,
) -> int:
    """Run one CSV on a Car Studio server and download its ZIP to `output`; exit codes as
    `run_batch`."""
    console = console or Console(stderr=True)
    accepted = remote.submit_batch(
        data, source_name=source_name, skip_invalid=skip_invalid, model=model
    )
    job_id = accepted.job_id
    status_url = remote.address(accepted.status_url)

    def read() -> BatchView:
        attempt = 1
        while True:
            try:
                return BatchView.of_answer(remote.status(job_id))
            except ServerUnreachable:
                # A network that drops for a few seconds should not abandon a batch that keeps
                # running there; a refusal (an expired batch, a revoked token) ends at once.
                if attempt >= REMOTE_POLL_FAILURES:
                    raise
                attempt += 1
                time.sleep(interval)

    try:
        try:
            view = watch(read, console, interval=interval)
        except KeyboardInterrupt:
            console.print(
                f"Interrupted. Batch {job_id} keeps running on the server; "
                f"follow it at {status_url}"
            )
            return EXIT_INTERRUPTED
        zip_url = remote.status(job_id).zip_url
        if zip_url is None:
            raise CarStudioError("The server finished the batch but offers no ZIP for it.")
        remote.download(zip_url, output, media_type="application/zip")
    except CarStudioError as exc:
        # After submission the batch exists on the server: say where, whatever went wrong here.
        raise CarStudioError(f"{exc.message} (batch {job_id}: {status_url})") from exc
    return report(view, output, console)
