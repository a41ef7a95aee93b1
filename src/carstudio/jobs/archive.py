"""The ZIP a batch ends in: images stored as they are, plus manifest.json, and, when rows
failed, failed_rows.json and failed_rows.csv (the failed rows in the file's own columns).

Copying the images is most of a ZIP's cost (a tenth of a second for fifty 2 MB images), so
it need not wait for the last one: once a batch's last images are being made, the finished
ones are packed ahead (`prepack`), and the ZIP built at the end takes that pack over and adds
only the rest. A pack that no longer matches the images (a row retried since) is not used.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any, Literal

from carstudio.jobs.models import Job, Row
from carstudio.jobs.states import RowState
from carstudio.quality.review import ALTERNATES
from carstudio.spec import FIELDS, IDENTITY_FIELDS

_NOT_MADE = (RowState.FAILED.value, RowState.CANCELED.value)
PART_PREFIX = "."
"""Unfinished ZIPs are hidden files: `.<job>.zip.<pid>.<random>.part`."""


def leftover_parts(dest: Path) -> list[Path]:
    """Unfinished copies of `dest` that a killed process left behind."""
    return list(dest.parent.glob(f"{PART_PREFIX}{dest.name}.*.part"))


def prepack_path(dest: Path) -> Path:
    """Where the finished images of a batch still running wait, packed, for its ZIP."""
    return dest.with_name(f"{PART_PREFIX}{dest.name}.prepack")


def _part(dest: Path) -> Path:
    return dest.with_name(f"{PART_PREFIX}{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")


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


def _images(rows: list[Row], job_dir: Path) -> dict[str, Path]:
    """The ZIP's images, by entry name, in row order: each done row's image and, for a row
    made twice, the image not kept (beside the kept one, for a look)."""
    images: dict[str, Path] = {}
    for row in rows:
        if row.state != RowState.DONE.value:
            continue
        if row.image_name:
            # Names were made from a portable alphabet; basename keeps it that way.
            name = Path(row.image_name).name
            images[name] = job_dir / name
        alternate = _alternate(row)
        if alternate and alternate["file"]:
            other = job_dir / ALTERNATES / Path(alternate["file"]).name
            if other.is_file():
                images[f"{ALTERNATES}/{other.name}"] = other
    return images


def _stored_zip(path: Path, mode: Literal["w", "a"]) -> zipfile.ZipFile:
    """A ZIP whose images are stored as they are (they are compressed already)."""
    return zipfile.ZipFile(path, mode, compression=zipfile.ZIP_STORED, allowZip64=True)


def prepack(rows: list[Row], *, images_dir: Path, job_id: str, dest: Path) -> None:
    """Pack the images of a running batch's finished rows for its ZIP (`dest`) to take
    over, adding to the pack made before when there is one. Nothing is lost if this is cut
    short, or finishes after the ZIP was built."""
    tmp = _part(dest)
    try:
        with _pack(dest, tmp, _images(rows, images_dir / job_id)):
            pass
        os.replace(tmp, prepack_path(dest))
    except FileNotFoundError:
        pass  # the ZIP was built meanwhile and swept this unfinished pack away
    finally:
        tmp.unlink(missing_ok=True)


def _take_prepack(dest: Path, tmp: Path, images: dict[str, Path]) -> zipfile.ZipFile | None:
    """The batch's pack moved to `tmp` and opened to add to, if there is one and every image
    in it is still the row's (same name, same size); else None and no pack is left."""
    try:
        os.replace(prepack_path(dest), tmp)
    except FileNotFoundError:
        return None
    try:
        zf = _stored_zip(tmp, "a")
    except (zipfile.BadZipFile, OSError):
        tmp.unlink(missing_ok=True)
        return None
    if all(
        info.filename in images and images[info.filename].stat().st_size == info.file_size
        for info in zf.infolist()
    ):
        return zf
    zf.close()
    tmp.unlink(missing_ok=True)
    return None


def _pack(dest: Path, tmp: Path, images: dict[str, Path]) -> zipfile.ZipFile:
    """A ZIP at `tmp`, open to add to, holding `images`: the batch's pack taken over and the
    images it lacks added, or, without a pack that still matches, all of them anew."""
    zf = _take_prepack(dest, tmp, images) or _stored_zip(tmp, "w")
    try:
        packed = set(zf.namelist())
        for name, path in images.items():
            if name not in packed:
                _add_file(zf, path, name)
    except BaseException:
        zf.close()
        raise
    return zf


def build_zip(job: Job, rows: list[Row], *, images_dir: Path, dest: Path) -> Path:
    """Write the job's ZIP to `dest` atomically. Entry names are the stored file names only."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _part(dest)
    images = _images(rows, images_dir / job.id)
    try:
        with _pack(dest, tmp, images) as zf:
            zf.writestr("manifest.json", json.dumps(manifest(job, rows), indent=2))
            failures = failed_rows(rows)
            if failures:
                zf.writestr("failed_rows.json", json.dumps(failures, indent=2))
                zf.writestr("failed_rows.csv", failed_rows_csv(job, rows))
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
