"""The JSON API for batches: validate, submit, watch, cancel, retry, download."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response

from carstudio.errors import NotFound
from carstudio.intake import template_csv
from carstudio.jobs.service import BatchService, JobStatus
from carstudio.web.uploads import UPLOAD_SCHEMA, read_csv_upload

router = APIRouter(tags=["batch"])
_ZIP_NAME = re.compile(r"([0-9a-f]{32})\.zip")


def get_batches(request: Request) -> BatchService:
    batches: BatchService = request.app.state.batches
    return batches


Batches = Annotated[BatchService, Depends(get_batches)]


def status_json(status: JobStatus) -> dict[str, Any]:
    """A job's progress in the API's shape: the contract's five fields first, then the rest."""
    base = f"/api/batch/{status.id}"
    return {
        "total": status.total,
        "done": status.done,
        "failed": status.failed,
        "percent": status.percent,
        "zipUrl": f"/downloads/{status.id}.zip" if status.zip_ready else None,
        "jobId": status.id,
        "state": status.state,
        "canceled": status.canceled,
        "running": status.running,
        "etaSeconds": status.eta_seconds,
        "createdAt": status.created_at,
        "finishedAt": status.finished_at,
        "source": status.source_name,
        "model": status.model,
        "provider": status.provider,
        "concurrency": status.concurrency,
        "stopReason": status.fatal_error,
        "failedRowsUrl": f"{base}/failed_rows.json" if status.failed else None,
        "retryable": status.retryable,
        "rows": [
            {
                "row": row.row,
                "state": row.state,
                "title": row.title,
                "imageUrl": f"{base}/rows/{row.row}/image" if row.image_name else None,
                "thumbUrl": f"{base}/rows/{row.row}/thumb" if row.image_name else None,
                "fileName": row.image_name,
                "error": row.error,
                "kind": row.failure,
                "retryable": row.retryable,
                "seconds": row.seconds,
            }
            for row in status.rows
        ],
    }


@router.post("/api/car-batch/validate", openapi_extra=UPLOAD_SCHEMA)
async def validate_batch(request: Request, batches: Batches) -> dict[str, Any]:
    """Check a CSV and preview it; never starts anything and never costs money."""
    upload = await read_csv_upload(request)
    report = await run_in_threadpool(batches.validate, upload.data)
    return report.to_json()


@router.post("/api/car-batch", status_code=202, openapi_extra=UPLOAD_SCHEMA)
async def submit_batch(request: Request, batches: Batches) -> JSONResponse:
    """Start a batch: 202 with the job id; 400 when the file or any row is not valid."""
    upload = await read_csv_upload(request)
    job_id = await run_in_threadpool(
        batches.submit, upload.data, source_name=upload.filename, skip_invalid=upload.skip_invalid
    )
    return JSONResponse(
        {"jobId": job_id, "statusUrl": f"/api/batch/{job_id}"},
        status_code=202,
        headers={"Location": f"/api/batch/{job_id}"},
    )


@router.get("/api/batch/{job_id}")
def batch_status(job_id: str, batches: Batches) -> dict[str, Any]:
    """Progress of a batch; `zipUrl` is null until the ZIP is ready."""
    return status_json(batches.status(job_id))


@router.get("/api/batch/{job_id}/failed_rows.json")
def batch_failed_rows(job_id: str, batches: Batches) -> JSONResponse:
    """Every row that produced no image, with its reason."""
    return JSONResponse(
        batches.failed_rows(job_id),
        headers={"Content-Disposition": 'inline; filename="failed_rows.json"'},
    )


@router.post("/api/batch/{job_id}/cancel")
def cancel_batch(job_id: str, batches: Batches) -> dict[str, Any]:
    """Stop rows that have not started; finished images stay and still make a ZIP."""
    return status_json(batches.cancel(job_id))


@router.post("/api/batch/{job_id}/retry-failed")
def retry_failed_rows(job_id: str, batches: Batches) -> dict[str, Any]:
    """Run the failed rows again under the same row numbers and file names."""
    return status_json(batches.retry_failed(job_id))


@router.get("/api/batch/{job_id}/rows/{row}/image", response_class=FileResponse)
def row_image(job_id: str, row: int, batches: Batches) -> FileResponse:
    return FileResponse(batches.row_image(job_id, row))


@router.get("/api/batch/{job_id}/rows/{row}/thumb", response_class=FileResponse)
def row_thumbnail(job_id: str, row: int, batches: Batches) -> FileResponse:
    return FileResponse(batches.row_image(job_id, row, thumbnail=True), media_type="image/jpeg")


@router.get("/downloads/{name}", response_class=FileResponse)
def download_zip(name: str, batches: Batches) -> FileResponse:
    """A finished batch's ZIP. Nothing else is ever served from this path."""
    match = _ZIP_NAME.fullmatch(name)
    if match is None:
        raise NotFound("Only batch ZIPs are served here.")
    job_id = match.group(1)
    return FileResponse(
        batches.zip_path(job_id), media_type="application/zip", filename=f"carstudio-{job_id}.zip"
    )


@router.get("/api/csv-template", response_class=Response)
def csv_template() -> Response:
    """An example CSV with every column."""
    return Response(
        template_csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="carstudio-template.csv"'},
    )
