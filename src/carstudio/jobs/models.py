"""The batch engine's tables: a job per uploaded file, a row per car."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from carstudio.db import Base
from carstudio.jobs.states import JobState, RowState


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, default=None)
    state: Mapped[str] = mapped_column(String(16), default=JobState.RUNNING.value, index=True)
    canceled: Mapped[bool] = mapped_column(Boolean, default=False)
    source_name: Mapped[str] = mapped_column(String(255), default="")
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(64))
    fatal_error: Mapped[str | None] = mapped_column(Text, default=None)
    """Why the batch stopped early: a fault every remaining row would meet."""
    stop_failure: Mapped[str | None] = mapped_column(String(32), default=None)
    """The failure kind behind `fatal_error`."""
    replaced_model: Mapped[str | None] = mapped_column(String(64), default=None)
    """The model the batch started with, when its rows moved to `model` after it was retired."""
    owner_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    """The user who started the batch; None when sign-in was off."""
    fresh: Mapped[bool] = mapped_column(Boolean, default=False)
    output: Mapped[str] = mapped_column(String(20), default="original")
    """The output preset its files are delivered in (carstudio.delivery.OutputPreset)."""
    """The person asked for new images: the image cache is not used for this batch."""
    zip_name: Mapped[str | None] = mapped_column(String(64), default=None)
    archive_started_at: Mapped[float | None] = mapped_column(Float, default=None)
    archive_error: Mapped[str | None] = mapped_column(Text, default=None)
    """Why the last try to build the ZIP failed; it is tried again at `archive_retry_at`."""
    archive_retry_at: Mapped[float | None] = mapped_column(Float, default=None)
    archive_attempts: Mapped[int] = mapped_column(Integer, default=0)
    columns: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), default=None)
    """The uploaded file's header row as it was, for failed_rows.csv."""
    version: Mapped[int] = mapped_column(Integer, default=0)
    """Counts every change to the job or to what its rows show, so a progress answer is
    rebuilt only when something changed (and an unchanged one is told by its ETag)."""


class Row(Base):
    __tablename__ = "rows"
    __table_args__ = (UniqueConstraint("job_id", "row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    row: Mapped[int] = mapped_column(Integer)
    values: Mapped[dict[str, str]] = mapped_column(JSON)
    spec: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    prompt: Mapped[str] = mapped_column(Text, default="")
    stem: Mapped[str] = mapped_column(String(160), default="")
    state: Mapped[str] = mapped_column(String(16), default=RowState.QUEUED.value, index=True)
    prediction_id: Mapped[str | None] = mapped_column(String(64), default=None)
    create_sent_at: Mapped[float | None] = mapped_column(Float, default=None)
    started_at: Mapped[float | None] = mapped_column(Float, default=None)
    finished_at: Mapped[float | None] = mapped_column(Float, default=None)
    seconds: Mapped[float | None] = mapped_column(Float, default=None)
    image_name: Mapped[str | None] = mapped_column(String(200), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    failure: Mapped[str | None] = mapped_column(String(32), default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_expires: Mapped[float | None] = mapped_column(Float, default=None)
    in_flight: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    """Holds one of the server-wide generation slots until the row ends."""
    worker: Mapped[str | None] = mapped_column(String(64), default=None)
    checks: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    """The image checks of its kept image (carstudio.quality.checks.Inspection as JSON)."""
    rerolls: Mapped[int] = mapped_column(Integer, default=0)
    """Images made again because the first failed a check (each one a prediction paid for)."""
    alternate: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    """The image not kept of two, {file, predictionId, checks}; while its re-roll is made,
    the first image."""
    """The worker that last worked on the row."""
    model: Mapped[str | None] = mapped_column(String(64), default=None)
    """The model that made the row's image (the job's model when the row was made)."""
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    """Its image came from the image cache: an identical request was made before."""
    queued_at: Mapped[float | None] = mapped_column(Float, default=None)
    cells: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), default=None)
    """The row's cells as uploaded, in the file's own order, for failed_rows.csv."""
    extra: Mapped[dict[str, str] | None] = mapped_column(JSON(none_as_null=True), default=None)
    """The columns Car Studio did not use for the car: {header as uploaded: value}."""
    """When the row last went into the queue; a queued row untouched for longer than a lease
    may have lost its queue task, and is queued again."""


class RowProgress(NamedTuple):
    row: int
    state: str
    values: dict[str, str]
    image_name: str | None
    error: str | None
    failure: str | None
    seconds: float | None
    cached: bool
    checks: dict[str, Any] | None = None
    rerolls: int = 0


class SingleImage(Base):
    """Who asked for a single image, so only they (or an admin) can fetch it."""

    __tablename__ = "single_images"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    created_at: Mapped[float] = mapped_column(Float)


class SingleSlot(Base):
    """A single image waiting for, or holding, one of the server-wide generation slots.

    Batch rows hold theirs in `rows.in_flight`; both count against the same limit, and a
    waiting single image goes ahead of batch rows that have not started. An entry whose
    process died ends by itself at `expires_at` (the image's deadline).
    """

    __tablename__ = "single_slots"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client: Mapped[str] = mapped_column(String(200), index=True)
    holding: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class CachedImage(Base):
    """An image kept by the content it was asked for (model and model input), so an identical
    request is answered without paying again. Kept CARSTUDIO_CACHE_DAYS after its last use."""

    __tablename__ = "image_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    file_name: Mapped[str] = mapped_column(String(80))
    model: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    last_used_at: Mapped[float] = mapped_column(Float, index=True)
    checks: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, default=None)
    """The image's checks when it was kept, and the standard they were made to."""
