"""`carstudio batch`: a CSV batch run in process or on a Car Studio server, with a live
progress bar; or, with `--dry-run`, only checked and priced.

Both runs turn their progress into a `BatchView` and hand it to the same display code
(`watch`, `report`), so a batch looks the same wherever it runs.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from carstudio.billing.ledger import dollars
from carstudio.config import Settings
from carstudio.errors import CarStudioError
from carstudio.generation import Studio
from carstudio.intake import read_intake
from carstudio.jobs.options import BatchOptions
from carstudio.jobs.progress import Estimate, JobStatus
from carstudio.jobs.service import BatchService
from carstudio.jobs.states import JobState, RowState
from carstudio.providers.models import MODELS, get_model, requested_model
from carstudio.providers.preview import PreviewProvider
from carstudio.providers.prices import PriceBook
from carstudio.remote import RemoteStudio, ServerUnreachable
from carstudio.web.schemas import BatchStatusOut, EstimateOut, IntakeReportOut

POLL_SECONDS = 0.25
REMOTE_POLL_SECONDS = 1.0
"""A server is asked once a second: often enough for the bar, cheap for a shared server."""
REMOTE_POLL_FAILURES = 10
"""Consecutive failed polls (about ten seconds of a dropped network) before giving up."""
EXIT_INTERRUPTED = 130
LISTED_ROW_ERRORS = 5
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
    rerolls: int = 0
    """Images made again because a check failed."""
    review_rows: tuple[FailedRowLine, ...] = ()
    """Images whose checks failed or warned, with the checks' sentence."""

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
            rerolls=status.rerolls,
            review_rows=tuple(
                FailedRowLine(r.row, r.title, str((r.checks or {}).get("sentence", "")))
                for r in status.rows
                if r.needs_review
            ),
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
            rerolls=status.rerolls,
            review_rows=tuple(
                FailedRowLine(r.row, r.title, r.checks.sentence if r.checks else "")
                for r in status.rows
                if r.needs_review
            ),
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
    console.print(checks_in_words(view))
    if view.review_rows:
        console.print(_failed_table(view.review_rows, title="Images to look at", why="Check"))
    if view.failed:
        console.print(_failed_table(view.failed_rows))
        return 1
    return 0


def checks_in_words(view: BatchView) -> str:
    """ "Checks: 5 of 6 images passed · 2 made again · 1 needs a look": the summary line."""
    looks = len(view.review_rows)
    parts = [f"Checks: {view.done - looks} of {view.done} images passed"]
    if view.rerolls:
        parts.append(f"{view.rerolls} made again")
    if looks:
        parts.append(f"{looks} need{'s' if looks == 1 else ''} a look")
    return " · ".join(parts)


def _failed_table(
    lines: Iterable[FailedRowLine], *, title: str = "Failed rows", why: str = "Reason"
) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("Row", justify="right")
    table.add_column("Car")
    table.add_column(why)
    for line in lines:
        table.add_row(str(line.row), line.car, line.reason)
    return table


# -- the two runs ---------------------------------------------------------------------------------


def run_batch(
    settings: Settings,
    data: bytes,
    options: BatchOptions,
    *,
    output: Path,
    console: Console | None = None,
) -> int:
    """Run one CSV to a ZIP at `output`; 0 when every row is done, 1 when some failed.
    Images made before are reused from the image cache unless `options.fresh` is set."""
    console = console or Console(stderr=True)
    studio = Studio(settings)
    batches = BatchService(settings, studio)
    try:
        batches.start(workers=True, periodic=False)
        job_id = batches.submit(data, options)
        try:
            # The one reader here reads the store (only the job's version, unless it moved),
            # not the answer kept a moment for the many pages a server has polling.
            view = watch(
                lambda: BatchView.of_job(batches.fresh_status(job_id)),
                console,
                interval=POLL_SECONDS,
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
    options: BatchOptions,
    *,
    output: Path,
    console: Console | None = None,
) -> int:
    """Run one CSV on a Car Studio server and download its ZIP to `output`; exit codes as
    `run_batch`."""
    console = console or Console(stderr=True)
    accepted = remote.submit_batch(data, options)
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
                time.sleep(REMOTE_POLL_SECONDS)

    try:
        try:
            view = watch(read, console, interval=REMOTE_POLL_SECONDS)
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


# -- a dry run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DryRun:
    """What a dry run found: the file's report with its estimate and, when this run would only
    draw previews, what the same images would cost on Replicate."""

    report: IntakeReportOut
    on_replicate: EstimateOut | None = None


def dry_run(settings: Settings, data: bytes, *, model: str | None = None) -> DryRun:
    """Check `data` as the server does and price its valid rows on `model`; it opens no
    provider and no store, so it makes nothing and needs no token."""
    report = read_intake(data)
    chosen = requested_model(model) if model else get_model(settings.model)
    priced = Estimate(
        images=len(report.valid_rows),
        cached_images=0,
        # The image cache is in the store, which a dry run leaves closed: images made before
        # are counted here, while --dry-run --server asks the server, which leaves them out.
        per_image=PriceBook(settings.prices_file).per_image(chosen.name),
        model=chosen.name,
    )
    if settings.provider_name != "preview":
        return DryRun(IntakeReportOut.of(report, priced))
    free = Estimate(
        images=priced.images, cached_images=0, per_image=Decimal(0), model=PreviewProvider.model
    )
    return DryRun(IntakeReportOut.of(report, free), on_replicate=EstimateOut.of(priced))


def remote_dry_run(remote: RemoteStudio, data: bytes, options: BatchOptions) -> DryRun:
    """The server's own check and estimate of `data` (`POST /api/car-batch/validate`)."""
    return DryRun(remote.validate(data, options))


def estimate_in_words(estimate: EstimateOut) -> str:
    """ "50 images · about $2.00 with Imagen 4": the words the Batch tab shows beside Start
    Batch (estimateInWords in static/js/batch-words.js)."""
    parts = [f"{estimate.images} image{'' if estimate.images == 1 else 's'}"]
    if estimate.cached_images:
        parts.append(f"{estimate.cached_images} already made")
    model = MODELS.get(estimate.model)
    label = model.label if model is not None else estimate.model
    if estimate.model == PreviewProvider.model:
        parts.append("free (preview)")
    elif estimate.total is None:
        parts.append(f"price unknown for {label}")
    else:
        about = "about " if estimate.total else ""
        parts.append(f"{about}{dollars(Decimal(str(estimate.total)))} with {label}")
    return " · ".join(parts)


def dry_run_lines(found: DryRun, *, skip_invalid: bool) -> list[str]:
    """What `carstudio batch --dry-run` prints: the estimate, and the rows left out of it."""
    report = found.report
    lines = [estimate_in_words(report.estimate)] if report.estimate is not None else []
    if found.on_replicate is not None:
        lines.append(
            "On Replicate (with REPLICATE_API_TOKEN set): " + estimate_in_words(found.on_replicate)
        )
    if report.sheet:
        lines.append(f"Read from the sheet “{report.sheet}”.")
    lines += [f"Check: {warning.message}" for warning in report.warnings]
    if report.invalid_count:
        are = "row is" if report.invalid_count == 1 else "rows are"
        lines.append(f"{report.invalid_count} {are} not valid, so not in the estimate:")
        for error in report.row_errors[:LISTED_ROW_ERRORS]:
            where = f"row {error.row} {error.column}" if error.column else f"row {error.row}"
            lines.append(f"  {where}: {error.message}")
        if len(report.row_errors) > LISTED_ROW_ERRORS:
            lines.append(f"  …and {len(report.row_errors) - LISTED_ROW_ERRORS} more")
        if not skip_invalid:
            them = "it is" if report.invalid_count == 1 else "they are"
            lines.append(f"The batch starts only with --skip-invalid, or once {them} fixed.")
    lines.append("Dry run: nothing was made and nothing was spent.")
    return lines
