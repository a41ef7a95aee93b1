"""`carstudio batch`: the batch engine run inside the command, with a live progress bar."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from carstudio.config import Settings
from carstudio.generation import Studio
from carstudio.jobs.service import BatchService, JobStatus

POLL_SECONDS = 0.25


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
            status = _watch(batches, job_id, console)
        except KeyboardInterrupt:
            console.print(
                f"Interrupted. Batch {job_id} is kept in {settings.data_dir} and resumes "
                "the next time Car Studio starts with that data directory."
            )
            return 130
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(batches.zip_path(job_id), output)
    finally:
        batches.stop()
        studio.close()
    console.print(
        f"[bold]{status.done}[/] of {status.total} images in [bold]{output}[/] "
        f"({status.model}, {_elapsed(status):.1f} s)"
    )
    if status.failed:
        console.print(_failed_table(batches, job_id))
        return 1
    return 0


def _watch(batches: BatchService, job_id: str, console: Console) -> JobStatus:
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[summary]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        status = batches.status(job_id)
        bar = progress.add_task("Generating", total=status.total, summary="")
        while True:
            status = batches.status(job_id)
            eta = f" · about {status.eta_seconds:.0f} s left" if status.eta_seconds else ""
            progress.update(
                bar,
                completed=status.done + status.failed,
                summary=f"done {status.done} · failed {status.failed}{eta}",
            )
            if status.finished:
                return status
            time.sleep(POLL_SECONDS)


def _failed_table(batches: BatchService, job_id: str) -> Table:
    table = Table(title="Failed rows", title_justify="left")
    table.add_column("Row", justify="right")
    table.add_column("Car")
    table.add_column("Reason")
    for item in batches.failed_rows(job_id):
        car = " ".join(str(item.get(key) or "") for key in ("year", "make", "model")).strip()
        table.add_row(str(item["row"]), car, str(item["reason"]))
    return table


def _elapsed(status: JobStatus) -> float:
    return (status.finished_at or time.time()) - status.created_at
