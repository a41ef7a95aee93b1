"""Helpers for batch tests: CSV text, running a service, waiting for a job, reading its ZIP."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from carstudio.jobs.progress import JobStatus, RowStatus
from carstudio.jobs.service import BatchService
from carstudio.jobs.states import RowState
from tests.waiting import wait_until

CARS = [
    ("Toyota", "Corolla", "sedan", "XSE", "2024", "red", "white", "1:1"),
    ("Ford", "Mustang", "coupe", "GT", "2023", "blue", "hub", "16:9"),
    ("Honda", "Civic", "hatchback", "Sport", "2022", "white", "white", "4:3"),
    ("Kia", "EV6", "crossover", "GT-Line", "2024", "grey", "hub", "3:4"),
    ("BMW", "X5", "SUV", "xDrive40i", "2025", "black", "white", "9:16"),
    ("Mazda", "MX-5", "roadster", "Club", "2021", "soul red", "hub", "1:1"),
]
HEADER = "make,model,body_style,trim,year,color,background,aspect_ratio"


def csv_of(rows: list[tuple[str, ...]]) -> bytes:
    return ("\n".join([HEADER, *(",".join(row) for row in rows)]) + "\n").encode()


def numbered_cars(count: int) -> bytes:
    """`count` distinct cars: Model-1, Model-2, ... so prompts can be told apart."""
    return csv_of(
        [
            ("Carmaker", f"Model-{n}", "", "", "2024", "red", "white", "1:1")
            for n in range(1, count + 1)
        ]
    )


def wait_finished(batches: BatchService, job_id: str, timeout: float = 20.0) -> JobStatus:
    return wait_until(lambda: (s := batches.status(job_id)).finished and s, timeout=timeout)


def read_zip(path: Path | bytes) -> tuple[list[str], dict[str, Any], list[dict[str, Any]] | None]:
    """(image names, manifest, failed rows or None) of a batch ZIP."""
    source = io.BytesIO(path) if isinstance(path, bytes) else path
    with zipfile.ZipFile(source) as zf:
        names = zf.namelist()
        for info in zf.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
        manifest = json.loads(zf.read("manifest.json"))
        failed = json.loads(zf.read("failed_rows.json")) if "failed_rows.json" in names else None
    images = [n for n in names if n not in {"manifest.json", "failed_rows.json", "failed_rows.csv"}]
    return images, manifest, failed


def running_status(rows: tuple[RowStatus, ...] = (), *, version: int = 0) -> JobStatus:
    """A running batch's progress, made by hand: its counts follow its `rows`."""
    done = sum(row.state == RowState.DONE.value for row in rows)
    return JobStatus(
        id="0123456789abcdef0123456789abcdef",
        state="running",
        total=len(rows),
        done=done,
        failed=0,
        canceled=0,
        running=len(rows) - done,
        created_at=1_700_000_000.0,
        finished_at=None,
        eta_seconds=12.0,
        zip_ready=False,
        source_name="lot.csv",
        model="google/imagen-3",
        provider="replicate",
        concurrency=3,
        fatal_error=None,
        rows=rows,
        version=version,
    )
