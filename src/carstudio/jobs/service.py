"""The batch engine's operations: submit, watch, cancel, retry, download, clean up.

Used by the web API and the CLI alike; it knows nothing of HTTP.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

from PIL import Image

from carstudio.accounts.viewer import ANYONE, Viewer
from carstudio.billing.ledger import Ledger, LedgerBooking, UsageLine, dollars
from carstudio.cache import ImageCache, cache_key
from carstudio.config import Settings
from carstudio.decoding import one_at_a_time
from carstudio.delivery import requested_preset
from carstudio.errors import (
    BudgetReached,
    Conflict,
    Expired,
    Failure,
    InvalidInput,
    NotFound,
)
from carstudio.generation import Studio
from carstudio.intake import IntakeReport, read_intake
from carstudio.jobs import archive
from carstudio.jobs.leases import new_owner, owner_is_dead
from carstudio.jobs.models import Job, Row, RowProgress
from carstudio.jobs.notices import LocalOnly, SlotNotices, start_notices
from carstudio.jobs.options import DEFAULTS, BatchOptions
from carstudio.jobs.progress import (
    STATUS_TTL,
    Estimate,
    JobStatus,
    JobSummary,
    RowStatus,
    StatusCache,
    outcomes,
)
from carstudio.jobs.queue import EmbeddedConsumer, build_huey, start_consumer
from carstudio.jobs.slots import SingleImageLine
from carstudio.jobs.states import JobState, RowState
from carstudio.jobs.store import Store, database_url
from carstudio.jobs.worker import CANCELED_REASON, RowWorker
from carstudio.naming import NameTemplate, file_stems
from carstudio.providers import Provider
from carstudio.providers.models import REPLACEMENT, get_model, requested_model
from carstudio.providers.prices import PriceBook
from carstudio.quality import review
from carstudio.spec import IDENTITY_FIELDS, CarSpec
from carstudio.storage import StorageGuard, is_storage_fault

log = logging.getLogger(__name__)

_JOB_ID_LENGTH = 32
THUMB_SIZE = (320, 320)
CLEANUP_EVERY = 3600.0
ARCHIVE_RETRY_FIRST = 5.0
ARCHIVE_RETRY_MAX = 300.0
PACK_WAIT = 60.0
"""Seconds the batch's ZIP waits at most for a pack of its images under way in this process."""


class BatchService:
    """One per process: the store, the queue, and (optionally) the workers that drain it."""

    def __init__(self, settings: Settings, studio: Studio) -> None:
        self.settings = settings
        self.studio = studio
        settings.ensure_dirs()
        self.store = Store(database_url(settings.database_url, settings.data_dir))
        self.huey = build_huey(settings.queue_url, settings.data_dir)
        self.owner = new_owner()
        if settings.fallback_model is not None:
            get_model(settings.fallback_model, setting="CARSTUDIO_FALLBACK_MODEL")
        self.storage = StorageGuard(settings.data_dir, min_free_mb=settings.min_free_mb)
        self.prices = PriceBook(settings.prices_file)
        self.ledger = Ledger(self.store, monthly_cap=settings.budget_monthly)
        self.cache = ImageCache(self.store, settings.data_dir / "cache", days=settings.cache_days)
        self.worker = RowWorker(
            store=self.store,
            providers=studio.provider_for,
            fallback_model=settings.fallback_model,
            images_dir=self.batch_images_dir,
            owner=self.owner,
            lease_seconds=settings.lease_seconds,
            deadline_seconds=settings.prediction_deadline,
            concurrency=settings.concurrency,
            on_row_finished=self._row_finished,
            requeue=self._requeue,
            storage=self.storage,
            bookings=self._row_booking,
            cache=self.cache,
            reviewer=studio.reviewer,
        )
        self._row_task = self.huey.task(name="carstudio.process_row")(self._process_row)
        self.singles = SingleImageLine(
            self.store,
            limit=settings.concurrency,
            per_client=settings.waiting_singles_per_client,
            deadline_seconds=settings.prediction_deadline,
        )
        """Where single images wait for a slot from the same pool as batch rows."""
        self.notices: SlotNotices = LocalOnly()
        self._consumer: EmbeddedConsumer | None = None
        self._sweeper: threading.Thread | None = None
        self._stopping = threading.Event()
        self._status_cache = StatusCache(ttl=STATUS_TTL)
        self._packing: dict[str, threading.Event] = {}
        """Jobs whose finished images this process is packing ahead of their ZIP, each with
        the event set when that pack is done."""
        self._packing_lock = threading.Lock()

    def _row_booking(self, job: Job, row: Row, provider: Provider) -> LedgerBooking:
        return LedgerBooking(
            self.ledger,
            model=provider.model,
            usd=self.prices.per_image(provider.model),
            kind="batch",
            job_id=job.id,
            row=row.row,
            owner_id=job.owner_id,
            # Checked at every booking, not only on the estimate: re-rolls and retried rows
            # are paid for too.
            batch_cap=self.settings.budget_per_batch,
        )

    def single_booking(self, viewer: Viewer) -> Callable[[Provider, str], LedgerBooking]:
        """How a single image for `viewer` is booked in the ledger."""
        return lambda provider, image_id: LedgerBooking(
            self.ledger,
            model=provider.model,
            usd=self.prices.per_image(provider.model),
            kind="single",
            image_id=image_id,
            owner_id=viewer.owner_id,
        )

    def usage(
        self, viewer: Viewer, *, start: dt.date, end: dt.date
    ) -> tuple[list[UsageLine], Decimal]:
        """Spending per day and model from `start` to `end` (UTC days, both included), and
        this month's total so far; the viewer's own, or everyone's for an admin."""
        everyone = viewer.user_id is None or viewer.admin
        first = dt.datetime.combine(start, dt.time(), dt.UTC).timestamp()
        after = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC).timestamp()
        lines = self.ledger.usage(
            start=first, end=after, owner_id=viewer.user_id, everyone=everyone
        )
        month = self.ledger.spent_this_month(viewer.user_id, everyone=everyone)
        return lines, month

    def _check_budgets(self, estimate: Estimate) -> None:
        """Refuse a batch whose estimate passes a budget, before anything is spent."""
        caps = (
            (self.settings.budget_per_batch, "a batch", "CARSTUDIO_BUDGET_PER_BATCH", Decimal(0)),
            (
                self.settings.budget_monthly,
                "this month's spending",
                "CARSTUDIO_BUDGET_MONTHLY",
                self.ledger.spent_this_month(),
            ),
        )
        for cap, what, setting, spent in caps:
            if cap is None or estimate.images == 0:
                continue
            if estimate.total is None:
                raise BudgetReached(
                    f"The price of {estimate.model} is unknown, so this batch cannot be kept "
                    f"within the budget for {what} ({setting}); set its price in "
                    "CARSTUDIO_PRICES or choose a model with a known price."
                )
            if spent + estimate.total > cap:
                raise BudgetReached(
                    f"This batch of {estimate.images} images would cost about "
                    f"{dollars(estimate.total)}, which passes the budget for {what} "
                    f"({dollars(cap)}, {setting}"
                    + (f"; {dollars(spent)} already spent" if spent else "")
                    + "). Split the file or choose a cheaper model."
                )

    def _requeue(self, row_id: int, delay: float) -> None:
        if delay > 0:
            self._row_task.schedule((row_id,), delay=delay)
        else:
            self._row_task(row_id)

    @property
    def worker_threads(self) -> int:
        """Twice the slots when images come over the network: a row downloading its image
        (which needs no slot) must not keep the next row from starting. The preview provider
        draws its images in this process, so all of its rows' work is this process's: more
        threads than slots would only take turns at the interpreter with the web requests."""
        drawn_here = self.studio.provider.name == "preview"
        return self.settings.concurrency * (1 if drawn_here else 2)

    @property
    def batch_images_dir(self) -> Path:
        return self.settings.images_dir / "batches"

    # -- lifecycle ------------------------------------------------------------------------------

    def start(
        self, *, workers: bool = True, periodic: bool = True, threads: int | None = None
    ) -> None:
        """Re-queue what a previous process left unfinished, then start draining the queue.

        `periodic`: this process also sweeps expired leases and cleans up old files; exactly
        one process of a deployment should.
        """
        self.recover(startup=True)
        self.notices = start_notices(
            self.settings.slot_notices,
            database_url=str(self.store.engine.url),
            queue_url=self.settings.queue_url,
            engine=self.store.engine,
            me=self.owner,
            wake=self.store.wake_slot_waiters,
        )
        self.store.announce_slot = self.notices.announce
        if workers:
            self.studio.reviewer.load()
            self.store.prepare_line()
            self._consumer = start_consumer(
                self.huey, workers=threads or self.worker_threads, periodic=False
            )
        if periodic:
            self._sweeper = threading.Thread(target=self._periodic, daemon=True, name="periodic")
            self._sweeper.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._consumer is not None:
            self._consumer.stop(graceful=False)
            self._consumer = None
        self.store.announce_slot = lambda: None
        self.notices.close()
        self.store.close()

    def _process_row(self, row_id: int) -> None:
        """A row's queue task. A worker thread still waiting for a task when this service
        stops can take one as it stops; that task goes back to the queue for whichever worker
        runs next (this process restarted, or another one), not run by a stopped service."""
        if self._stopping.is_set():
            self._row_task(row_id)
            return
        self.worker.process(row_id)

    def _periodic(self) -> None:
        """The periodic duties: sweep expired leases often, remove old files hourly."""
        interval = max(self.settings.lease_seconds / 2, 0.5)
        next_cleanup = time.monotonic()
        while not self._stopping.wait(interval):
            try:
                self.recover(startup=False)
                if time.monotonic() >= next_cleanup:
                    next_cleanup = time.monotonic() + CLEANUP_EVERY
                    self.cleanup()
            except Exception:
                log.exception("periodic duties failed; they run again shortly")

    def recover(self, *, startup: bool) -> int:
        """Re-queue unfinished rows whose holder is gone, and finish jobs left mid-archive.

        At start-up every queued row is queued again, in case the queue itself lost them;
        later, queued rows untouched for longer than a lease. A row that is queued twice
        runs once, because a task first claims its row. A ZIP still being built is left to
        its builder unless it has taken longer than a lease.
        """
        self.store.expire_leases(lambda owner: owner_is_dead(owner, self.owner))
        self.store.forget_expired_single_slots()
        stale_before = None if startup else time.time() - self.settings.lease_seconds
        row_ids = self.store.resumable_rows(stale_before=stale_before)
        for row_id in row_ids:
            self._row_task(row_id)
        cutoff = time.time() - (0 if startup else self.settings.lease_seconds)
        for job_id in self.store.stalled_archives(started_before=cutoff):
            self.store.set_job(job_id, state=JobState.RUNNING.value)
            self.finish_if_complete(job_id)
        for job_id in self.store.jobs_in(JobState.RUNNING):
            self.finish_if_complete(job_id)
        if row_ids:
            log.info("re-queued %d unfinished rows", len(row_ids))
        return len(row_ids)

    # -- intake and submission --------------------------------------------------------------------

    def validate(self, data: bytes, *, name_template: str | None = None) -> IntakeReport:
        """The intake report for a file, with the names its images would get; starts nothing
        and costs nothing."""
        template = NameTemplate.parse(name_template)
        report = read_intake(data)
        report.file_names = file_stems(_cars(report), template)
        return report

    def estimate(
        self, report: IntakeReport, *, model: str | None = None, fresh: bool = False
    ) -> Estimate:
        """What running the valid rows of `report` on `model` would cost; rows the image
        cache can answer cost nothing (unless `fresh` asks for new images)."""
        provider = self.studio.provider_for(model)
        cached = 0
        if not fresh:
            keys = [
                cache_key(provider, prompt=self.studio.prompts.build(spec), spec=spec)
                for spec in (item.spec for item in report.valid_rows)
                if spec is not None
            ]
            held = self.cache.held(keys)
            cached = sum(key in held for key in keys)
        return Estimate(
            images=len(report.valid_rows),
            cached_images=cached,
            per_image=self.prices.per_image(provider.model),
            model=provider.model,
        )

    def submit(
        self, data: bytes, options: BatchOptions = DEFAULTS, *, owner: Viewer = ANYONE
    ) -> str:
        """Check the file, persist the job and its rows, and queue one task per valid row."""
        provider = self.studio.provider_for(options.model)
        preset = requested_preset(options.output, self.settings.output)
        template = NameTemplate.parse(options.name_template)
        report = read_intake(data)
        self.storage.check()
        self._check_budgets(self.estimate(report, model=options.model, fresh=options.fresh))
        if report.invalid_rows and not options.skip_invalid:
            count = len(report.invalid_rows)
            raise InvalidInput(
                f"{count} row{'s are' if count != 1 else ' is'} not valid; fix "
                f"{'them' if count != 1 else 'it'} or choose to skip invalid rows.",
                [
                    {"row": e.row, "column": e.column, "message": e.message}
                    for e in report.row_errors
                ],
            )
        if not report.valid_rows:
            raise InvalidInput("No row in this file can be generated.")
        job_id = uuid.uuid4().hex
        stems = file_stems(_cars(report), template)
        rows: list[Row] = []
        for item in report.rows:
            as_read = {  # the row as the file gave it, valid or not
                "job_id": job_id,
                "row": item.row,
                "values": item.values,
                "cells": item.cells,
                "extra": item.extra,
            }
            if item.spec is None:
                reason = "; ".join(e.message.rstrip(".") for e in item.errors) + "."
                rows.append(
                    Row(
                        **as_read,
                        state=RowState.FAILED.value,
                        error=reason,
                        failure=Failure.INVALID_ROW.value,
                        finished_at=time.time(),
                    )
                )
                continue
            rows.append(
                Row(
                    **as_read,
                    spec=item.spec.model_dump(mode="json"),
                    prompt=self.studio.prompts.build(item.spec),
                    stem=stems[item.row],
                )
            )
        job = Job(
            id=job_id,
            created_at=time.time(),
            source_name=Path(options.source_name).name[:255],
            provider=provider.name,
            model=provider.model,
            owner_id=owner.owner_id,
            fresh=options.fresh,
            columns=report.source_header,
            output=preset.value,
        )
        self.store.add_job(job, rows)
        for row in rows:
            if row.state == RowState.QUEUED.value:
                self._row_task(row.id)
        return job_id

    # -- watching ---------------------------------------------------------------------------------

    def job(self, job_id: str, viewer: Viewer = ANYONE) -> Job:
        """The job, if `viewer` may see it; another user's batch is as unknown as no batch."""
        job = self.store.job(job_id) if len(job_id) == _JOB_ID_LENGTH else None
        return self._check(job, viewer)

    def _check(self, job: Job | None, viewer: Viewer) -> Job:
        """The job, or the error a person should read about it."""
        if job is None or not viewer.sees(job.owner_id):
            raise NotFound("There is no batch with that id.")
        if job.state == JobState.EXPIRED.value:
            raise Expired(
                f"This batch's images and ZIP were removed {self.settings.retention_hours:g} hours "
                "after it ran; upload the CSV again to make them anew."
            )
        return job

    def status(self, job_id: str, viewer: Viewer = ANYONE) -> JobStatus:
        """A job's progress, as many pages may be polling it: an answer is reused as it is
        for a moment, then for as long as the job's version (and the storage problem it
        reports) stays the same; only a change reads the rows again."""
        cached = self.recent_status(job_id, viewer)
        return cached if cached is not None else self.fresh_status(job_id, viewer)

    def fresh_status(self, job_id: str, viewer: Viewer = ANYONE) -> JobStatus:
        """The progress as the store has it now: the job's version is read, and the rows
        only when it moved (or the storage problem changed)."""
        job = self._check(self.store.job(job_id) if len(job_id) == _JOB_ID_LENGTH else None, viewer)
        last = self._status_cache.last(job_id)
        if (
            last is not None
            and last.version == job.version
            and last.storage_problem == self._storage_problem(job)
        ):
            self._status_cache.put(job_id, last)
            return last
        found, rows = self.store.progress(job_id)
        status = self._status(self._check(found, viewer), rows)
        self._status_cache.put(job_id, status)
        return status

    def recent_status(self, job_id: str, viewer: Viewer = ANYONE) -> JobStatus | None:
        """The last answer read, without any I/O (so an event loop may ask); None when there
        is none yet. When it has come due it is still given, and looked at again on the
        progress thread, so no poll waits for the store."""
        cached, due = self._status_cache.peek(job_id)
        if cached is None:
            return None
        if not viewer.sees(cached.owner_id):
            raise NotFound("There is no batch with that id.")
        if due:
            _PROGRESS.submit(self._look_again, job_id)
        return cached

    def _look_again(self, job_id: str) -> None:
        try:
            self.fresh_status(job_id)
        except (NotFound, Expired):
            self._status_cache.forget(job_id)  # the next poll hears why, in its own words
        except Exception:
            log.exception("reading the progress of job %s failed", job_id)

    def _storage_problem(self, job: Job) -> str | None:
        return self.storage.problem() if job.state != JobState.READY.value else None

    def _status(self, job: Job, rows: list[RowProgress]) -> JobStatus:
        by_state = Counter(row.state for row in rows)
        done, failed, canceled = outcomes(by_state)
        remaining = len(rows) - done - failed
        return JobStatus(
            id=job.id,
            state=job.state,
            total=len(rows),
            done=done,
            failed=failed,
            canceled=canceled,
            running=remaining - by_state.get(RowState.QUEUED.value, 0),
            created_at=job.created_at,
            finished_at=job.finished_at,
            eta_seconds=self._eta(rows, remaining),
            zip_ready=job.state == JobState.READY.value and job.zip_name is not None,
            source_name=job.source_name,
            model=job.model,
            provider=job.provider,
            concurrency=self.settings.concurrency,
            fatal_error=job.fatal_error,
            owner_id=job.owner_id,
            stop_failure=job.stop_failure,
            replaced_model=job.replaced_model,
            switch_to=self._switch_to(job),
            storage_problem=self._storage_problem(job),
            version=job.version,
            rows=tuple(
                RowStatus(
                    row=row.row,
                    state=row.state,
                    title=_title(row.values),
                    identity={name: row.values.get(name, "") for name in IDENTITY_FIELDS},
                    image_name=row.image_name if row.state == RowState.DONE.value else None,
                    error=row.error,
                    failure=row.failure,
                    seconds=row.seconds,
                    cached=bool(row.cached),
                    checks=row.checks,
                    rerolls=row.rerolls or 0,
                )
                for row in rows
            ),
        )

    def recent(
        self, viewer: Viewer = ANYONE, *, limit: int = 20, before: float | None = None
    ) -> list[JobSummary]:
        """The viewer's batches, newest first (an admin's, or anyone's with sign-in off: all);
        `before` (a `created_at`) pages further back."""
        everyone = viewer.user_id is None or viewer.admin
        found = self.store.recent_jobs(
            owner_id=viewer.user_id, everyone=everyone, limit=limit, before=before
        )
        summaries = []
        for job, counts in found:
            done, failed, canceled = outcomes(counts)
            summaries.append(
                JobSummary(
                    id=job.id,
                    state=job.state,
                    created_at=job.created_at,
                    finished_at=job.finished_at,
                    source_name=job.source_name,
                    model=job.model,
                    provider=job.provider,
                    total=sum(counts.values()),
                    done=done,
                    failed=failed,
                    canceled=canceled,
                    stop_reason=job.fatal_error,
                )
            )
        return summaries

    def _switch_to(self, job: Job) -> str | None:
        if job.stop_failure != Failure.MODEL_UNAVAILABLE or job.provider == "preview":
            return None
        choice = self.settings.fallback_model or REPLACEMENT
        return choice if choice != job.model else None

    def _eta(self, rows: list[RowProgress], remaining: int) -> float | None:
        """Seconds left: rounds of `concurrency` rows at the mean time of the rows done so far."""
        if remaining == 0:
            return 0.0
        times = [row.seconds for row in rows if row.seconds and row.state == RowState.DONE.value]
        if not times:
            return None
        rounds = math.ceil(remaining / self.settings.concurrency)
        return round(rounds * sum(times) / len(times), 1)

    def failed_rows(self, job_id: str, viewer: Viewer = ANYONE) -> list[dict[str, Any]]:
        self.job(job_id, viewer)
        return archive.failed_rows(self.store.rows(job_id))

    def failed_rows_csv(self, job_id: str, viewer: Viewer = ANYONE) -> str:
        """The failed rows in the uploaded file's own columns, plus `reason`, to fix and
        upload again."""
        job = self.job(job_id, viewer)
        return archive.failed_rows_csv(job, self.store.rows(job_id))

    def _zip_file(self, job_id: str) -> Path:
        return self.settings.downloads_dir / f"{job_id}.zip"

    def zip_path(self, job_id: str, viewer: Viewer = ANYONE) -> Path:
        job = self.job(job_id, viewer)
        path = self._zip_file(job.id)
        if job.state != JobState.READY.value or not path.is_file():
            raise NotFound(
                "This batch's ZIP is not ready yet; it appears when every row has finished."
            )
        return path

    def row_image(
        self, job_id: str, row_number: int, *, thumbnail: bool = False, viewer: Viewer = ANYONE
    ) -> Path:
        """A finished row's image (or a small JPEG of it, made on first request)."""
        job = self.job(job_id, viewer)
        row = next((r for r in self.store.rows(job.id) if r.row == row_number), None)
        if row is None or row.state != RowState.DONE.value or not row.image_name:
            raise NotFound(f"Row {row_number} has no image.")
        path = self.batch_images_dir / job.id / Path(row.image_name).name
        if not thumbnail:
            return path
        thumb = self.settings.data_dir / "thumbs" / job.id / f"{row.row}.jpg"
        if not thumb.exists():
            one_at_a_time(_make_thumbnail, path, thumb)
        return thumb

    # -- changing a job ---------------------------------------------------------------------------

    def cancel(self, job_id: str, viewer: Viewer = ANYONE) -> JobStatus:
        """Stop rows that have not started; images already made (or paid for) are kept."""
        job = self.job(job_id, viewer)
        if job.state != JobState.RUNNING.value:
            raise Conflict("This batch has already finished; there is nothing to cancel.")
        self.store.set_job(job.id, canceled=True)
        self.store.settle_unstarted(
            job.id, RowState.CANCELED, error=CANCELED_REASON, failure=Failure.CANCELED
        )
        self.finish_if_complete(job.id)
        self._status_cache.forget(job.id)
        return self.status(job.id, viewer)

    def retry_failed(self, job_id: str, viewer: Viewer = ANYONE) -> JobStatus:
        """Run the failed rows again under the same row numbers and names, then rebuild the ZIP."""
        job = self.job(job_id, viewer)
        if job.state != JobState.READY.value:
            raise Conflict("This batch is still running; retry failed rows once it has finished.")
        row_ids = self.store.reset_failed(job.id)
        if not row_ids:
            raise Conflict("There are no failed rows that can be retried in this batch.")
        for row_id in row_ids:
            self._row_task(row_id)
        self._status_cache.forget(job.id)
        return self.status(job.id, viewer)

    def switch_model(self, job_id: str, model: str, viewer: Viewer = ANYONE) -> JobStatus:
        """Run the rows a retired model stopped again with `model`; finished images stay."""
        job = self.job(job_id, viewer)
        chosen = requested_model(model, field="model")
        if job.state != JobState.READY.value or job.stop_failure != Failure.MODEL_UNAVAILABLE:
            raise Conflict(
                "Only a batch that stopped because its model is no longer available can move "
                "to another model; use retry-failed for other failures."
            )
        if chosen.name == job.model:
            raise InvalidInput(f"This batch already uses {chosen.name}; choose another model.")
        self.studio.provider_for(chosen.name)
        row_ids = self.store.switch_model(job.id, model=chosen.name)
        if not row_ids:
            raise Conflict("There are no rows left to run in this batch.")
        for row_id in row_ids:
            self._row_task(row_id)
        self._status_cache.forget(job.id)
        return self.status(job.id, viewer)

    def _row_finished(self, job_id: str) -> None:
        """A row of the job ended: build the ZIP if it was the last; if only the batch's
        last images are still being made, pack the finished ones for the ZIP meanwhile."""
        unfinished, queued = self.store.rows_left(job_id)
        if not unfinished:
            self.finish_if_complete(job_id)
            return
        if queued or self.storage.problem():
            return  # a pack would take room the last images may need
        with self._packing_lock:
            if job_id in self._packing:
                return  # this row's image joins the next pack, or the ZIP
            packed = self._packing[job_id] = threading.Event()
        try:
            archive.prepack(
                self.store.rows(job_id),
                images_dir=self.batch_images_dir,
                job_id=job_id,
                dest=self._zip_file(job_id),
            )
        except OSError as exc:  # the ZIP is then built whole at the end
            log.info("packing the images of job %s ahead failed: %s", job_id, exc)
        finally:
            with self._packing_lock:
                del self._packing[job_id]
            packed.set()

    def finish_if_complete(self, job_id: str) -> None:
        """Build the ZIP once every row is terminal; exactly one caller gets to do it."""
        with self._packing_lock:
            packing = self._packing.get(job_id)
        if packing is not None:
            # The pack under way holds most of the ZIP already: the rest of it takes less
            # than building the ZIP anew beside it.
            packing.wait(PACK_WAIT)
        if not self.store.begin_archive(job_id):
            return
        job = self.store.job(job_id)
        assert job is not None
        dest = self._zip_file(job_id)
        for part in archive.leftover_parts(dest):  # a process killed while building this ZIP
            part.unlink(missing_ok=True)
        rows = self.store.rows(job_id)
        self._duplicates_across(rows)
        try:
            archive.build_zip(job, rows, images_dir=self.batch_images_dir, dest=dest)
        except Exception as exc:
            self._archive_failed(job, exc)
            return
        self.store.set_job(
            job_id,
            state=JobState.READY.value,
            zip_name=f"{job_id}.zip",
            finished_at=time.time(),
            archive_error=None,
            archive_retry_at=None,
            archive_attempts=0,
        )

    def _duplicates_across(self, rows: list[Row]) -> None:
        """Rows that finished side by side did not see each other's image: before the ZIP,
        every image is compared with every earlier one, and a repeat is flagged (not made
        again: the batch is over), in the store and in `rows`."""
        done = [r for r in rows if r.state == RowState.DONE.value and r.checks]
        made = [review.MadeImage(f"row {r.row}", r.spec, r.checks or {}) for r in done]
        changed = review.duplicates_across(made)
        if changed:
            self.store.set_checks({done[index].id: checks for index, checks in changed.items()})
            for index, checks in changed.items():
                done[index].checks = checks

    def _archive_failed(self, job: Job, exc: Exception) -> None:
        """The job stays 'archiving' with a reason a person can read, tried again later."""
        wait = min(ARCHIVE_RETRY_FIRST * 2**job.archive_attempts, ARCHIVE_RETRY_MAX)
        if isinstance(exc, OSError) and is_storage_fault(exc):
            reason = self.storage.noticed(exc)
            log.warning("the ZIP of job %s waits for storage: %s", job.id, exc)
        else:
            reason = "The ZIP could not be built because of an internal error."
            if job.archive_attempts == 0:
                log.exception("building the ZIP of job %s failed", job.id)
            else:
                log.warning("building the ZIP of job %s failed again: %s", job.id, exc)
        self.store.archive_failed(
            job.id, error=f"{reason} It is tried again in {wait:g} seconds.", wait=wait
        )

    def cleanup(self, now: float | None = None) -> int:
        """Remove the images and ZIPs of batches untouched for the retention period (counted
        from when they last finished); their jobs then answer 410."""
        now = time.time() if now is None else now
        cutoff = now - self.settings.retention_hours * 3600
        removed = 0
        for job in self.store.inactive_jobs(cutoff):
            # Expired first, and only if nothing changed since it was read: a batch retried
            # at this moment keeps its files.
            if not self.store.expire(job):
                continue
            shutil.rmtree(self.batch_images_dir / job.id, ignore_errors=True)
            shutil.rmtree(self.settings.data_dir / "thumbs" / job.id, ignore_errors=True)
            zip_path = self._zip_file(job.id)
            for path in [
                zip_path,
                archive.prepack_path(zip_path),
                *archive.leftover_parts(zip_path),
            ]:
                path.unlink(missing_ok=True)
            self._status_cache.forget(job.id)
            removed += 1
        removed += self.cache.cleanup()
        for folder in (self.studio.single_dir, self.settings.data_dir / "scratch"):
            for path in folder.glob("*") if folder.is_dir() else ():
                if path.stat().st_mtime < cutoff:
                    shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
                    removed += 1
        return removed


# One thread looks at the store again for progress answers that came due, while polls are
# answered with the answer they have: one read per batch at a time, whatever the polling.
_PROGRESS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="progress")


def _make_thumbnail(source: Path, thumb: Path) -> None:
    if thumb.exists():
        return
    thumb.parent.mkdir(parents=True, exist_ok=True)
    tmp = thumb.with_suffix(f".{uuid.uuid4().hex[:6]}.part")
    with Image.open(source) as image:
        image.draft("RGB", THUMB_SIZE)  # JPEG decodes at a fraction of full size
        image.thumbnail(THUMB_SIZE)
        image.convert("RGB").save(tmp, format="JPEG", quality=80)
    tmp.replace(thumb)


def _cars(report: IntakeReport) -> list[tuple[int, CarSpec]]:
    return [(item.row, item.spec) for item in report.rows if item.spec is not None]


def _title(values: dict[str, str]) -> str:
    parts = (
        values.get("year", ""),
        values.get("make", ""),
        values.get("model", ""),
        values.get("trim", ""),
    )
    return " ".join(part for part in parts if part) or "(no make or model)"
