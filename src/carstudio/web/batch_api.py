"""The JSON API for batches: validate, submit, watch, cancel, retry, download."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from carstudio.accounts.viewer import Viewer
from carstudio.errors import InvalidInput, NotFound
from carstudio.intake import template_csv, template_xlsx
from carstudio.jobs.progress import JobStatus
from carstudio.jobs.service import BatchService
from carstudio.spreadsheets import XLSX_TYPE
from carstudio.web.auth import CurrentViewer
from carstudio.web.progress_bodies import ProgressBodies
from carstudio.web.schemas import (
    BatchAccepted,
    BatchList,
    BatchStatusOut,
    FailedRow,
    IntakeReportOut,
    SwitchModel,
    UsageOut,
    errors,
)
from carstudio.web.security import require_json
from carstudio.web.uploads import UPLOAD_SCHEMA, read_csv_upload

router = APIRouter(tags=["batch"])
_ZIP_NAME = re.compile(r"([0-9a-f]{32})\.zip")


async def get_batches(request: Request) -> BatchService:
    batches: BatchService = request.app.state.batches
    return batches


Batches = Annotated[BatchService, Depends(get_batches)]


# Progress first: routes are tried in the order they are declared, and the polls of open pages
# are most of the requests Car Studio answers.
@router.get(
    "/api/batch/{job_id}",
    response_model=BatchStatusOut,
    responses=errors(404, 410) | {304: {"description": "Nothing new since that `ETag`."}},
)
async def batch_status(
    job_id: str,
    batches: Batches,
    viewer: CurrentViewer,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Progress of a batch; `zipUrl` is null until the ZIP is ready. Send the `ETag` of the
    last answer in `If-None-Match`: while nothing changed, the answer is a 304 with no body."""
    # A poll of a batch with a moment-old answer was answered before routing (`polls.py`);
    # this answers the rest, reading the store on a thread, and gives the refusals. Another
    # user's batch is a 404 before any ETag is compared.
    status = batches.recent_status(job_id, viewer)
    if status is None:
        status = await run_in_threadpool(batches.fresh_status, job_id, viewer)
    code, headers, body = progress_answer(status, viewer, if_none_match)
    return Response(body, status_code=code, headers=headers)


def progress_answer(
    status: JobStatus, viewer: Viewer, if_none_match: str | None
) -> tuple[int, dict[str, str], bytes]:
    """The answer to a progress poll (status code, headers, body): a 304 without a body when
    `If-None-Match` names the current answer, else the answer's JSON."""
    etag = status_etag(status, viewer)
    headers = progress_headers(etag)
    if if_none_match is not None and etag_matches(if_none_match, etag):
        return 304, headers, b""
    return 200, headers | {"Content-Type": "application/json"}, _PROGRESS_BODIES.of(status)


def status_etag(status: JobStatus, viewer: Viewer) -> str:
    """The answer's name for this viewer: it changes with the answer, and differs between
    users, so one user's ETag never stands for another's answer."""
    who = "-" if viewer.user_id is None else _digest(f"user {viewer.user_id}")
    return f'"{status.id[:8]}.{status.tag}.{who}"'


def progress_headers(etag: str) -> dict[str, str]:
    """What every progress answer carries, a 304 included: its ETag, and that it is one
    viewer's answer to be asked for again, not kept (it differs with the cookie or token)."""
    return {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Cookie, Authorization"}


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Whether `If-None-Match` names `etag` (weakly compared, as RFC 9110 13.1.2 asks)."""
    wanted = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in wanted or etag in wanted


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


_PROGRESS_BODIES = ProgressBodies()


@router.post(
    "/api/car-batch/validate",
    openapi_extra=UPLOAD_SCHEMA,
    response_model=IntakeReportOut,
    responses=errors(400, 413),
)
async def validate_batch(request: Request, batches: Batches) -> IntakeReportOut:
    """Check a CSV and preview it; never starts anything and never costs money."""
    upload = await read_csv_upload(request)
    report = await run_in_threadpool(
        batches.validate, upload.data, name_template=upload.options.name_template
    )
    estimate = batches.estimate(report, model=upload.options.model, fresh=upload.options.fresh)
    return IntakeReportOut.of(report, estimate)


@router.post(
    "/api/car-batch",
    status_code=202,
    openapi_extra=UPLOAD_SCHEMA,
    response_model=BatchAccepted,
    responses=errors(400, 402, 413, 507),
)
async def submit_batch(
    request: Request, response: Response, batches: Batches, viewer: CurrentViewer
) -> BatchAccepted:
    """Start a batch: 202 with the job id; 400 when the file or any row is not valid."""
    upload = await read_csv_upload(request)
    job_id = await run_in_threadpool(batches.submit, upload.data, upload.options, owner=viewer)
    status_url = f"/api/batch/{job_id}"
    response.headers["Location"] = status_url
    return BatchAccepted(job_id=job_id, status_url=status_url)


@router.get("/api/batches", response_model=BatchList)
def recent_batches(
    batches: Batches,
    viewer: CurrentViewer,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: Annotated[float | None, Query(description="`createdAt` of the last one seen.")] = None,
) -> BatchList:
    """The caller's batches, newest first; `next` pages further back."""
    found = batches.recent(viewer, limit=limit + 1, before=before)
    return BatchList.of(found, limit=limit)


@router.get("/api/usage", response_model=UsageOut, responses=errors(400), tags=["money"])
def usage(
    batches: Batches,
    viewer: CurrentViewer,
    start: Annotated[dt.date | None, Query(alias="from", description="First UTC day.")] = None,
    end: Annotated[dt.date | None, Query(alias="to", description="Last UTC day.")] = None,
) -> UsageOut:
    """Images made and dollars spent per day and model: the caller's, or everyone's for an
    admin (and with sign-in off). Default: this month so far."""
    today = dt.datetime.now(dt.UTC).date()
    end = end or today
    start = start or end.replace(day=1)
    if start > end:
        raise InvalidInput("'from' must not be after 'to'.")
    lines, month = batches.usage(viewer, start=start, end=end)
    return UsageOut.of(lines, start=start.isoformat(), end=end.isoformat(), month_to_date=month)


@router.get(
    "/api/batch/{job_id}/failed_rows.json",
    response_model=list[FailedRow],
    responses=errors(404, 410),
)
def batch_failed_rows(
    job_id: str, response: Response, batches: Batches, viewer: CurrentViewer
) -> list[Any]:
    """Every row that produced no image, with its reason."""
    response.headers["Content-Disposition"] = 'inline; filename="failed_rows.json"'
    return [FailedRow.model_validate(entry) for entry in batches.failed_rows(job_id, viewer)]


@router.get(
    "/api/batch/{job_id}/failed_rows.csv",
    response_class=Response,
    responses=errors(404, 410),
)
def batch_failed_rows_csv(job_id: str, batches: Batches, viewer: CurrentViewer) -> Response:
    """The rows that produced no image in the uploaded file's own columns and order, plus a
    `reason` column: fix them and upload the file again."""
    return Response(
        batches.failed_rows_csv(job_id, viewer),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="failed_rows.csv"'},
    )


@router.post(
    "/api/batch/{job_id}/cancel", response_model=BatchStatusOut, responses=errors(404, 409, 410)
)
def cancel_batch(job_id: str, batches: Batches, viewer: CurrentViewer) -> BatchStatusOut:
    """Stop rows that have not started; finished images stay and still make a ZIP."""
    return BatchStatusOut.of(batches.cancel(job_id, viewer))


@router.post(
    "/api/batch/{job_id}/retry-failed",
    response_model=BatchStatusOut,
    responses=errors(404, 409, 410),
)
def retry_failed_rows(job_id: str, batches: Batches, viewer: CurrentViewer) -> BatchStatusOut:
    """Run the failed rows again under the same row numbers and file names."""
    return BatchStatusOut.of(batches.retry_failed(job_id, viewer))


@router.post(
    "/api/batch/{job_id}/switch-model",
    response_model=BatchStatusOut,
    responses=errors(400, 404, 409, 410, 415),
    dependencies=[Depends(require_json)],
)
def switch_model(
    job_id: str, choice: SwitchModel, batches: Batches, viewer: CurrentViewer
) -> BatchStatusOut:
    """Run the rows a retired model stopped with another model; finished images stay."""
    return BatchStatusOut.of(batches.switch_model(job_id, choice.model, viewer))


@router.get("/api/batch/{job_id}/rows/{row}/image", response_class=FileResponse)
def row_image(job_id: str, row: int, batches: Batches, viewer: CurrentViewer) -> FileResponse:
    path = batches.row_image(job_id, row, viewer=viewer)
    return FileResponse(path, filename=path.name, content_disposition_type="inline")


@router.get("/api/batch/{job_id}/rows/{row}/thumb", response_class=FileResponse)
def row_thumbnail(job_id: str, row: int, batches: Batches, viewer: CurrentViewer) -> FileResponse:
    path = batches.row_image(job_id, row, thumbnail=True, viewer=viewer)
    return FileResponse(
        path,
        media_type="image/jpeg",
        filename=f"row-{row}-thumbnail.jpg",
        content_disposition_type="inline",
    )


@router.get("/downloads/{name}", response_class=FileResponse)
def download_zip(name: str, batches: Batches, viewer: CurrentViewer) -> FileResponse:
    """A finished batch's ZIP. Nothing else is ever served from this path."""
    match = _ZIP_NAME.fullmatch(name)
    if match is None:
        raise NotFound("Only batch ZIPs are served here.")
    job_id = match.group(1)
    return FileResponse(
        batches.zip_path(job_id, viewer),
        media_type="application/zip",
        filename=f"carstudio-{job_id}.zip",
    )


@router.get("/api/xlsx-template", response_class=Response)
def xlsx_template() -> Response:
    """The same example as an Excel workbook."""
    return Response(
        template_xlsx(),
        media_type=XLSX_TYPE,
        headers={"Content-Disposition": 'attachment; filename="carstudio-template.xlsx"'},
    )


@router.get("/api/csv-template", response_class=Response)
def csv_template() -> Response:
    """An example CSV with every column."""
    return Response(
        template_csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="carstudio-template.csv"'},
    )
