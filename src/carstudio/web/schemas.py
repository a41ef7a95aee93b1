"""The shapes of every JSON answer, so `/openapi.json` describes the whole API.

Python names are snake_case; the wire names are their camelCase aliases (`zip_url` ->
`zipUrl`), the names the API contract promises. Each answer is built from a domain object by
one `of(...)` constructor, so routes stay one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.alias_generators import to_camel

from carstudio.billing.ledger import UsageLine
from carstudio.columns import HeaderStatus
from carstudio.errors import Failure
from carstudio.intake import IntakeReport
from carstudio.jobs.progress import Estimate, JobStatus, JobSummary, RowStatus
from carstudio.jobs.states import JobState, RowState
from carstudio.providers.prices import CURRENCY
from carstudio.quality.checks import Inspection
from carstudio.spec import FIELDS, CarSpec


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class ApiError(ApiModel):
    """Every 4xx answer: a sentence a person can act on, and the specifics when there are any."""

    error: str = Field(examples=["There is no batch with that id."])
    details: list[dict[str, Any]] | None = Field(
        default=None,
        description="Per field or per row: `{field, message}` or `{row, column, message}`.",
    )


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ApiError, "description": description}
    for status, description in (
        (400, "The request or file cannot be used; `error` says why."),
        (402, "It would pass a budget the operator set; the sentence names it."),
        (403, "Refused."),
        (404, "Nothing with that id."),
        (409, "Not in this state."),
        (410, "Its files were removed after the retention period."),
        (413, "The upload is too large."),
        (415, "The body is not JSON."),
        (422, "The image service refused this car (its safety filter, or an invalid input)."),
        (429, "The image service is rate limiting this account; try again in a minute."),
        (502, "The image service failed or refused the account; `error` says which."),
        (504, "The image took longer than the deadline and was cancelled."),
        (507, "The server cannot store images now (its disk is full or read-only)."),
    )
}
"""The error answers a route may give, for its `responses=`."""


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: ERRORS[status] for status in statuses}


# -- image checks -------------------------------------------------------------------------------


class CheckOut(ApiModel):
    """One check of an image (shape, background, colour, blank, duplicate)."""

    name: str = Field(examples=["background"])
    verdict: Literal["pass", "warn", "fail", "skipped"]
    score: float | None = Field(
        description="What was measured: a share (0..1), a ratio error or a CIEDE2000 difference."
    )
    sentence: str = Field(examples=["97% of the border is near-white."])


class ChecksOut(ApiModel):
    """Every check of an image, its worst verdict and the sentences of the flagged ones."""

    verdict: Literal["pass", "warn", "fail", "skipped"]
    sentence: str
    checks: list[CheckOut]

    @classmethod
    def of(cls, data: Mapping[str, Any] | None) -> ChecksOut | None:
        if not data:
            return None
        inspection = Inspection.from_json(data)
        return cls(
            verdict=inspection.verdict,
            sentence=inspection.sentence,
            checks=[CheckOut(**check.as_json()) for check in inspection.checks],
        )


# -- single images ------------------------------------------------------------------------------


class CarImage(ApiModel):
    """One generated image and where it is served."""

    id: str
    image_url: str
    prompt: str
    model: str
    elapsed_ms: int
    provider: str
    width: int
    height: int
    aspect_ratio: str
    file_name: str
    title: str
    cached: bool = Field(
        default=False, description="An identical image was made before; this one cost nothing."
    )
    checks: ChecksOut | None = Field(default=None, description="The image's checks.")
    needs_review: bool = Field(
        default=False, description="A check failed or warned: look at the image before use."
    )
    rerolls: int = Field(default=0, description="Images made again because a check failed.")


class Health(ApiModel):
    status: Literal["ok"]
    version: str
    provider: str
    model: str


# -- intake ---------------------------------------------------------------------------------------


class Header(ApiModel):
    name: str
    mapped_to: str | None
    status: HeaderStatus


class Column(ApiModel):
    """A car field and how this file supplies it."""

    name: str
    label: str
    present: bool
    default: str = Field(description="What every car gets when the file has no such column.")


class CellError(ApiModel):
    column: str | None
    message: str


class RowError(ApiModel):
    row: int
    column: str | None
    message: str


class PreviewRow(ApiModel):
    row: int
    values: dict[str, str]
    errors: list[CellError]
    valid: bool
    file_name: str | None = Field(
        default=None, description="The name its image will get (without the file type)."
    )
    warnings: list[CellError] = Field(
        default_factory=list, description="What may be wrong though the row can run."
    )


class NoticeOut(ApiModel):
    """Something about the file as a whole: which of two columns was used, a header that
    looks like a car field but was not used, or a file of which too little was understood."""

    kind: Literal["column_choice", "looks_like", "few_fields"]
    message: str
    header: str | None
    field: str | None
    confirm: bool = Field(description="The page starts the batch only once the person agrees.")


class EstimateOut(ApiModel):
    """What the batch would cost before it starts, in `currency`; null prices are unknown."""

    images: int
    cached_images: int
    per_image: float | None
    total: float | None
    currency: str
    includes_rerolls: bool
    model: str

    @classmethod
    def of(cls, estimate: Estimate) -> EstimateOut:
        total = estimate.total
        return cls(
            images=estimate.images,
            cached_images=estimate.cached_images,
            per_image=None if estimate.per_image is None else float(estimate.per_image),
            total=None if total is None else float(total),
            currency=estimate.currency,
            includes_rerolls=estimate.includes_rerolls,
            model=estimate.model,
        )


class IntakeReportOut(ApiModel):
    """What Car Studio read from an uploaded CSV; the same check runs when the batch starts."""

    ok: bool
    row_count: int
    valid_count: int
    invalid_count: int
    headers: list[Header]
    unknown_headers: list[str]
    columns: list[Column]
    preview: list[PreviewRow]
    row_errors: list[RowError]
    row_warnings: list[RowError] = Field(
        default_factory=list, description="Doubtful values in rows that can still run."
    )
    encoding: str
    encoding_label: str
    delimiter: str
    delimiter_label: str
    sheet: str | None = Field(
        default=None, description="For an Excel workbook: the sheet the cars were read from."
    )
    max_rows: int
    estimate: EstimateOut | None = None
    warnings: list[NoticeOut] = Field(default_factory=list)
    needs_confirmation: bool = Field(
        default=False, description="A warning asks the person to confirm before starting."
    )

    @classmethod
    def of(cls, report: IntakeReport, estimate: Estimate | None = None) -> IntakeReportOut:
        return cls(
            estimate=None if estimate is None else EstimateOut.of(estimate),
            ok=report.ok,
            row_count=report.row_count,
            valid_count=len(report.valid_rows),
            invalid_count=len(report.invalid_rows),
            headers=[
                Header(name=h.name, mapped_to=h.mapped_to, status=h.status) for h in report.headers
            ],
            unknown_headers=list(report.unknown_headers),
            columns=[
                Column(name=c.name, label=c.label, present=c.present, default=c.default)
                for c in report.columns
            ],
            preview=[
                PreviewRow(
                    row=row.row,
                    values=dict(row.values),
                    errors=[CellError(column=e.column, message=e.message) for e in row.errors],
                    valid=row.valid,
                    file_name=report.file_names.get(row.row),
                    warnings=[CellError(column=w.column, message=w.message) for w in row.warnings],
                )
                for row in report.preview
            ],
            row_errors=[
                RowError(row=e.row, column=e.column, message=e.message) for e in report.row_errors
            ],
            row_warnings=[
                RowError(row=w.row, column=w.column, message=w.message) for w in report.row_warnings
            ],
            encoding=report.encoding,
            encoding_label=report.encoding_label,
            delimiter=report.delimiter,
            delimiter_label=report.delimiter_label,
            sheet=report.sheet,
            max_rows=report.max_rows,
            warnings=[
                NoticeOut(
                    kind=n.kind,
                    message=n.message,
                    header=n.header,
                    field=n.field,
                    confirm=n.confirm,
                )
                for n in report.notices
            ],
            needs_confirmation=report.needs_confirmation,
        )


# -- batches --------------------------------------------------------------------------------------


class BatchAccepted(ApiModel):
    job_id: str
    status_url: str


class RowProgressOut(ApiModel):
    """One car of a batch."""

    row: int = Field(description="Spreadsheet row number; the header is row 1.")
    state: RowState
    title: str
    image_url: str | None
    thumb_url: str | None
    file_name: str | None
    error: str | None
    kind: Failure | None = Field(description="Why it produced nothing, when it did not.")
    retryable: bool
    seconds: float | None
    cached: bool = Field(description="Its image came from the image cache, at no cost.")
    identity: dict[str, str] = Field(
        default_factory=dict,
        description="The fields that identify the car on the lot (`vin`, `stock_number`), "
        "as the file gave them.",
    )
    checks: ChecksOut | None = Field(default=None, description="Its image's checks.")
    needs_review: bool = Field(
        default=False, description="Its image failed or warned a check, even after a re-roll."
    )
    rerolls: int = Field(default=0, description="Images made again because a check failed.")

    @classmethod
    def of(cls, row: RowStatus, base: str) -> RowProgressOut:
        return cls(
            row=row.row,
            state=RowState(row.state),
            title=row.title,
            image_url=f"{base}/rows/{row.row}/image" if row.image_name else None,
            thumb_url=f"{base}/rows/{row.row}/thumb" if row.image_name else None,
            file_name=row.image_name,
            error=row.error,
            kind=Failure(row.failure) if row.failure else None,
            retryable=row.retryable,
            seconds=row.seconds,
            cached=row.cached,
            identity=dict(row.identity),
            checks=ChecksOut.of(row.checks) if row.state == RowState.DONE.value else None,
            needs_review=row.needs_review,
            rerolls=row.rerolls,
        )


class BatchStatusOut(ApiModel):
    """A batch's progress: the contract's five fields first, then the rest."""

    total: int
    done: int
    failed: int = Field(description="Rows that produced no image, cancelled ones included.")
    percent: int = Field(description="round((done + failed) / total * 100)")
    zip_url: str | None = Field(description="Null until the ZIP is ready.")
    job_id: str
    state: JobState
    canceled: int
    running: int
    eta_seconds: float | None
    created_at: float
    finished_at: float | None
    source: str
    model: str
    provider: str
    concurrency: int
    stop_reason: str | None = Field(description="Why the batch stopped early, if it did.")
    stop_kind: Failure | None = Field(description="The failure kind behind `stopReason`.")
    replaced_model: str | None = Field(
        description="The model the batch started with, when its rows moved to `model`."
    )
    switch_to: str | None = Field(
        description="When a retired model stopped the batch: the model switch-model offers."
    )
    storage_problem: str | None = Field(
        description="Why the batch is paused: the server cannot store images now; it goes on "
        "by itself once it can."
    )
    archive_problem: str | None = Field(
        description="Why the ZIP is not ready yet after a failed try to build it, and when it "
        "is tried again."
    )
    failed_rows_url: str | None
    failed_rows_csv_url: str | None = Field(
        default=None,
        description="The failed rows in the uploaded file's own columns, plus `reason`.",
    )
    retryable: int = Field(description="Failed rows that retry-failed would run again.")
    cached: int = Field(description="Images the image cache answered, at no cost.")
    needs_review: int = Field(
        default=0, description="Images whose checks failed or warned, even after a re-roll."
    )
    rerolls: int = Field(
        default=0, description="Images made again because a check failed (each one paid for)."
    )
    rows: list[RowProgressOut]

    @classmethod
    def of(cls, status: JobStatus, rows: list[RowProgressOut] | None = None) -> BatchStatusOut:
        """The answer for `status`; `rows`, when given, stand for its rows' own (the counts
        are still the status's)."""
        base = f"/api/batch/{status.id}"
        return cls(
            total=status.total,
            done=status.done,
            failed=status.failed,
            percent=status.percent,
            zip_url=f"/downloads/{status.id}.zip" if status.zip_ready else None,
            job_id=status.id,
            state=JobState(status.state),
            canceled=status.canceled,
            running=status.running,
            eta_seconds=status.eta_seconds,
            created_at=status.created_at,
            finished_at=status.finished_at,
            source=status.source_name,
            model=status.model,
            provider=status.provider,
            concurrency=status.concurrency,
            stop_reason=status.fatal_error,
            stop_kind=Failure(status.stop_failure) if status.stop_failure else None,
            replaced_model=status.replaced_model,
            switch_to=status.switch_to,
            storage_problem=status.storage_problem,
            archive_problem=status.archive_problem,
            failed_rows_url=f"{base}/failed_rows.json" if status.failed else None,
            failed_rows_csv_url=f"{base}/failed_rows.csv" if status.failed else None,
            retryable=status.retryable,
            cached=status.cached,
            needs_review=status.needs_review,
            rerolls=status.rerolls,
            rows=[RowProgressOut.of(row, base) for row in status.rows] if rows is None else rows,
        )


class BatchSummary(ApiModel):
    job_id: str
    state: JobState
    created_at: float
    finished_at: float | None
    source: str
    model: str
    provider: str
    total: int
    done: int
    failed: int = Field(description="Rows that produced no image, cancelled ones included.")
    canceled: int
    stop_reason: str | None
    status_url: str


class BatchList(ApiModel):
    """Batches newest first; `next` is the address of the page after this one, if any."""

    batches: list[BatchSummary]
    next: str | None

    @classmethod
    def of(cls, found: list[JobSummary], *, limit: int) -> BatchList:
        """`found` may hold one more than `limit`: that one only says a next page exists."""
        more = len(found) > limit
        found = found[:limit]
        items = [
            BatchSummary(
                job_id=job.id,
                state=JobState(job.state),
                created_at=job.created_at,
                finished_at=job.finished_at,
                source=job.source_name,
                model=job.model,
                provider=job.provider,
                total=job.total,
                done=job.done,
                failed=job.failed,
                canceled=job.canceled,
                stop_reason=job.stop_reason,
                status_url=f"/api/batch/{job.id}",
            )
            for job in found
        ]
        return cls(
            batches=items,
            next=f"/api/batches?limit={limit}&before={found[-1].created_at!r}" if more else None,
        )


class _FailedRowBase(ApiModel):
    row: int
    reason: str
    status: Literal[RowState.FAILED, RowState.CANCELED]
    kind: Failure | None
    prediction_id: str | None = None
    extra: dict[str, str] = Field(
        default_factory=dict,
        description="The file's other columns, {header as uploaded: value}.",
    )


# The car's values ride along under their own (snake_case) names, one per car field.
FailedRow = create_model(  # type: ignore[call-overload]
    "FailedRow",
    __base__=_FailedRowBase,
    __doc__="A row that produced no image: why, and its values from the CSV.",
    **{name: (str, Field(default="", alias=name)) for name in FIELDS},
)


class SwitchModel(ApiModel):
    """The model to run a stopped batch's remaining rows with."""

    model: str = Field(examples=["google/nano-banana-2"])


class CarImageRequest(CarSpec):
    """A car, and optionally the image model to draw it with (the server's setting if not).

    Named `image_model` because `model` is the car's own model name ("Corolla").
    """

    image_model: str | None = Field(default=None, examples=["google/nano-banana-2"])
    fresh: bool = Field(
        default=False,
        description="Make a new image even if an identical one was made before.",
    )
    output: str | None = Field(
        default=None,
        description="The file delivered: original, listing-jpeg, marketplace-4x3 or webp "
        "(the server's CARSTUDIO_OUTPUT if not given).",
        examples=["listing-jpeg"],
    )

    def car(self) -> CarSpec:
        return CarSpec.model_validate(self.model_dump(exclude={"image_model", "fresh", "output"}))


class UsageLineOut(ApiModel):
    day: str = Field(description="UTC day, YYYY-MM-DD.")
    model: str
    images: int
    usd: float = Field(description="Dollars for the images whose price is known.")
    unpriced: int = Field(description="Images whose model's price is unknown.")


class UsageOut(ApiModel):
    """What was spent between `from` and `to` (UTC days, both included)."""

    start: str = Field(alias="from")
    end: str = Field(alias="to")
    currency: str
    images: int
    usd: float
    unpriced: int
    month_to_date: float
    lines: list[UsageLineOut]

    @classmethod
    def of(
        cls, lines: list[UsageLine], *, start: str, end: str, month_to_date: Decimal
    ) -> UsageOut:
        # "from" is a Python keyword, so both ends are given by their wire names.
        return cls.model_validate(
            {
                "from": start,
                "to": end,
                "currency": CURRENCY,
                "images": sum(line.images for line in lines),
                "usd": float(sum((line.usd for line in lines), Decimal(0))),
                "unpriced": sum(line.unpriced for line in lines),
                "monthToDate": float(month_to_date),
                "lines": [
                    UsageLineOut(
                        day=line.day,
                        model=line.model,
                        images=line.images,
                        usd=float(line.usd),
                        unpriced=line.unpriced,
                    )
                    for line in lines
                ],
            }
        )
