"""The ZIP a batch ends in: images stored as they are, plus manifest.json, and, when rows
failed, failed_rows.json and failed_rows.csv (the failed rows in the file's own columns)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

from carstudio.jobs.models import Job, Row
from carstudio.jobs.states import RowState
from carstudio.quality.review import ALTERNATES
from carstudio.spec import FIELDS, IDENTITY_FIELDS

_NOT_MADE = (RowState.FAILED.value, RowState.CANCELED.value)
PART_PREFIX = "."
"""Unfinished ZIPs are hidden files: `.<job>.zip.<pid>.part`."""


def leftover_parts(dest: Path) -> list[Path]:
    """Unfinished copies of `dest` that a killed process left behind."""
    return list(dest.parent.glob(f"{PART_PREFIX}{dest.name}.*.part"))


def failed_rows(rows: list[Row]) -> list[dict[str, Any]]:
    """Every row that did not produce an image, with its reason and its CSV values."""
    report = []
    for row in rows:
        if row.state in _NOT_MADE:
            entry: dict[str, Any] = {
                "row": row.row,
                "reason": row.error or "No reason was recorded.",
                "status": row.state,
                "kind": row.failure,
            }
            entry |= {field: row.values.get(field, "") for field in FIELDS}
            entry["extra"] = dict(row.extra or {})
            if row.prediction_id:
                entry["predictionId"] = row.prediction_id
            report.append(entry)
    return report


def failed_rows_csv(job: Job, rows: list[Row]) -> str:
    """The rows that made no image in the uploaded file's own columns and order, plus a
    `reason` column: a file a dealer can fix and upload again. UTF-8 with a byte-order mark,
    so Excel reads its accents right."""
    failed = [row for row in rows if row.state in _NOT_MADE]
    header = list(job.columns) if job.columns else list(FIELDS)
    lines = [row.cells if row.cells is not None else _cells_of(row) for row in failed]
    width = max([len(header), *(len(cells) for cells in lines)])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*header, *[""] * (width - len(header)), "reason"])
    for row, cells in zip(failed, lines, strict=True):
        reason = row.error or "No reason was recorded."
        writer.writerow([*cells, *[""] * (width - len(cells)), reason])
    return "\ufeff" + out.getvalue()


def _cells_of(row: Row) -> list[str]:
    """A row stored before its cells were kept: its values in FIELDS order."""
    return [row.values.get(field, "") for field in FIELDS]


def manifest(job: Job, rows: list[Row]) -> dict[str, Any]:
    return {
        "job": job.id,
        "createdAt": _iso(job.created_at),
        "builtAt": _iso(time.time()),
        "source": job.source_name,
        "provider": job.provider,
        "model": job.model,
        # More than one when the batch moved to another model after its own was retired.
        "models": sorted({row.model or job.model for row in rows if row.state == "done"}),
        "total": len(rows),
        "done": sum(row.state == RowState.DONE.value for row in rows),
        "failed": sum(row.state != RowState.DONE.value for row in rows),
        "cached": sum(row.cached for row in rows),
        # Images made again because a check failed (each a prediction paid for), and images
        # whose checks still failed or warned: the ones a person should look at.
        "rerolls": sum(row.rerolls or 0 for row in rows),
        "needsReview": sum(_needs_review(row) for row in rows),
        "rows": [
            {
                "row": row.row,
                "file": row.image_name,
                "status": row.state,
                "prompt": row.prompt,
                "model": row.model or job.model,
                "cached": row.cached,
                "predictionId": row.prediction_id,
                "seconds": row.seconds,
                "startedAt": _iso(row.started_at),
                "finishedAt": _iso(row.finished_at),
                "reason": row.error,
                "kind": row.failure,
                "values": row.values,
                "identity": {name: row.values.get(name, "") for name in IDENTITY_FIELDS},
                "extra": dict(row.extra or {}),
                "checks": _checks(row.checks),
                "needsReview": _needs_review(row),
                "rerolls": row.rerolls or 0,
                "alternate": _alternate(row),
            }
            for row in rows
        ],
    }


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat(timespec="milliseconds")


def _checks(checks: dict[str, Any] | None) -> dict[str, Any] | None:
    """Every check's verdict, score and sentence (the fingerprint stays in the database)."""
    if not checks:
        return None
    return {key: value for key, value in checks.items() if key != "fingerprint"}


def _needs_review(row: Row) -> bool:
    verdict = (row.checks or {}).get("verdict")
    return row.state == RowState.DONE.value and verdict in ("fail", "warn")


def _alternate(row: Row) -> dict[str, Any] | None:
    """The image not kept of a row made twice: its file (in the ZIP), prediction and checks."""
    if not row.alternate or row.state != RowState.DONE.value:
        return None
    return {
        "file": row.alternate.get("file"),
        "predictionId": row.alternate.get("predictionId"),
        "checks": _checks(row.alternate.get("checks")),
    }


COPY_CHUNK = 1 << 20
"""Bytes copied into the ZIP at a time: ZipFile.write's 8 KiB made building a 50-image ZIP
take twice as long."""


def _add_file(zf: zipfile.ZipFile, path: Path, arcname: str) -> None:
    info = zipfile.ZipInfo.from_file(path, arcname=arcname)
    with path.open("rb") as src, zf.open(info, "w") as dest:
        shutil.copyfileobj(src, dest, COPY_CHUNK)


def build_zip(job: Job, rows: list[Row], *, images_dir: Path, dest: Path) -> Path:
    """Write the job's ZIP to `dest` atomically. Entry names are the stored file names only."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{PART_PREFIX}{dest.name}.{os.getpid()}.part")
    job_dir = images_dir / job.id
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for row in rows:
                if row.state == RowState.DONE.value and row.image_name:
                    # Names were made from a portable alphabet; basename keeps it that way.
                    name = Path(row.image_name).name
                    _add_file(zf, job_dir / name, name)
                alternate = _alternate(row)
                if row.state == RowState.DONE.value and alternate and alternate["file"]:
                    # The image not kept of a row made twice: beside the kept one, for a look.
                    other = job_dir / ALTERNATES / Path(alternate["file"]).name
                    if other.is_file():
                        _add_file(zf, other, f"{ALTERNATES}/{other.name}")
            zf.writestr("manifest.json", json.dumps(manifest(job, rows), indent=2))
            failures = failed_rows(rows)
            if failures:
                zf.writestr("failed_rows.json", json.dumps(failures, indent=2))
                zf.writestr("failed_rows.csv", failed_rows_csv(job, rows))
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
