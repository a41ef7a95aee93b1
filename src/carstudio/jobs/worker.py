"""The row state machine: one car from queued to done, failed or canceled.

queued -> creating -> waiting (prediction id stored) -> downloading -> done | failed | canceled

A row is claimed under a lease before anything happens; a terminal row is left alone; a row
with a prediction id is resumed, never created again; a row whose create may have been sent
is looked up at the provider before a new create is paid for.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from enum import Enum
from pathlib import Path
from typing import Any

from carstudio.cache import CachedCopy, ImageCache, cache_key
from carstudio.delivery import OutputPreset, parse_preset
from carstudio.errors import Failure, GenerationError
from carstudio.generation import Booking, run_prediction
from carstudio.jobs.leases import LeaseKeeper
from carstudio.jobs.models import Job, Row
from carstudio.jobs.states import TERMINAL_ROWS, RowState
from carstudio.jobs.store import Store
from carstudio.providers import Prediction, Provider
from carstudio.quality.checks import Inspection, Neighbour
from carstudio.quality.review import (
    ALTERNATES,
    Reviewer,
    another_car,
    deliver_in_place,
    keeps_first,
    labels,
)
from carstudio.spec import CarSpec
from carstudio.storage import StorageGuard, is_storage_fault

log = logging.getLogger(__name__)


class Outcome(Enum):
    FINISHED = "finished"
    """Done, failed or cancelled."""
    NO_SLOT = "no_slot"
    """Try again at once: no slot came free, or the row moved to another model."""
    PAUSED = "paused"
    """Try again in a while: the disk cannot take its image now."""
    REROLL = "reroll"
    """Back to the line: its image failed a check and is made once more."""


SLOT_POLL = 0.5
"""Seconds between looks at the slots when no notice of a freed one arrives (a safety net),
stretched at random by up to as much again (`_poll`)."""
SLOT_WAIT = 2.0
"""Seconds a task waits for a slot before it gives its thread back and queues itself again."""
HAND_OVER_FIRST = 0.05
"""Seconds at most a row that freed its slot lets the row woken for it go first: the next
image's create is on the batch's critical path, this row's download is not."""
STORAGE_PAUSE = 5.0
"""Seconds a row waits before looking at the disk again."""
GENERIC_FAILURE = "This row could not be finished because of an internal error; retry it."
CANCELED_REASON = "Cancelled before it started."


class RowWorker:
    def __init__(
        self,
        *,
        store: Store,
        providers: Callable[[str], Provider],
        images_dir: Path,
        owner: str,
        lease_seconds: float,
        deadline_seconds: float,
        concurrency: int,
        on_row_finished: Callable[[str], None],
        requeue: Callable[[int, float], None],
        storage: StorageGuard,
        bookings: Callable[[Job, Row, Provider], Booking],
        cache: ImageCache,
        fallback_model: str | None = None,
        reviewer: Reviewer | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        """The provider for a job's model."""
        self.fallback_model = fallback_model
        """Where a batch moves when Replicate says its model is gone (None: it stops)."""
        self.images_dir = images_dir
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.deadline_seconds = deadline_seconds
        self.concurrency = concurrency
        self.on_row_finished = on_row_finished
        self.requeue = requeue
        """Queue a row's task again after a delay in seconds."""
        self.storage = storage
        self.bookings = bookings
        """How a row's image is booked in the ledger before it is paid for."""
        self.cache = cache
        self.leases = LeaseKeeper(store, owner, lease_seconds)
        self._sending = threading.Condition()
        self._creates_sent = 0
        """Creates this worker's rows have sent: a row that freed its slot watches it."""
        self.reviewer = reviewer
        """Checks each image and says when it is made again (None: images go unchecked)."""

    def process(self, row_id: int) -> None:
        """Run a row's task: carry the row on itself if it has started before (its worker
        stopped) or the image cache can answer it; otherwise run the row whose turn it is.

        Every queued row has a task, and every task starts at most one queued row, so the
        line empties; which row a task starts is the line's choice, not the queue's order.
        """
        row = self.store.row(row_id)
        job = self.store.job(row.job_id) if row is not None else None
        if row is not None and job is not None and row.state not in TERMINAL_ROWS:
            started = row.in_flight or row.state != RowState.QUEUED.value
            if (started or self._cacheable(job, row)) and self._resume(row_id):
                return
        self._next_in_line(row_id)

    def _resume(self, row_id: int) -> bool:
        """Take the row if nobody else has it, and carry it to a terminal state; False when
        someone else has it (say, the line gave it to another task)."""
        row = self.store.claim(row_id, self.owner, self.lease_seconds)
        if row is None:
            return False
        job = self.store.job(row.job_id)
        if job is not None:
            self._carry(job, row, holding=False, fresh=_is_fresh(row))
        return True

    def _next_in_line(self, row_id: int) -> None:
        """Wait a little for a free slot, then carry on the row whose turn it is. Woken at once
        when a slot is freed (in this process, or by another one through the notices); the
        timeout is the safety net."""
        if self.storage.problem():
            self.requeue(row_id, STORAGE_PAUSE)  # nothing is started that could not be stored
            return
        give_up = time.monotonic() + SLOT_WAIT
        polled = False
        while True:
            seen = self.store.slot_changes
            # After its safety-net poll, a row first reads whether any slot is free, as the
            # line is asked under the store's writer; woken for a freed slot, it asks at once.
            if not polled or self.store.has_room(self.concurrency):
                turn = self.store.take_next(self.owner, self.concurrency, self.lease_seconds)
                if turn.row is not None:
                    assert turn.job is not None  # the line holds rows of running jobs only
                    break
                if not turn.waiting:
                    # Nothing left in line: a slot this task was woken for may suit a row
                    # that waits to resume.
                    self.store.pass_on_wake()
                    return
            if time.monotonic() > give_up:
                # Give the thread back, so rows that hold slots (say, ones resumed after a
                # crash) can run; this task comes round again.
                self.requeue(row_id, 0.0)
                return
            polled = not self.store.wait_for_slot_change(_poll(), since=seen)
        self._carry(turn.job, turn.row, holding=True, fresh=turn.fresh)

    def _carry(self, job: Job, row: Row, *, holding: bool, fresh: bool) -> None:
        """Carry a claimed row to a terminal state, or back to the line when it must wait."""
        with self.leases.hold(row.id):
            try:
                outcome = self._run(job, row, holding=holding, fresh=fresh)
            except Exception:
                log.exception("row %s of job %s failed unexpectedly", row.row, job.id)
                self._settle(
                    row, RowState.FAILED, error=GENERIC_FAILURE, failure=Failure.INTERNAL.value
                )
                outcome = Outcome.FINISHED
        if outcome is Outcome.FINISHED:
            self.on_row_finished(job.id)
            return
        # No slot came free, the row now runs under another model, or the disk cannot take
        # its image: give the thread back, so rows holding slots (say, ones resumed after a
        # crash) can run, and try this row again later.
        self._advance(
            row, lease_owner=None, lease_expires=None, in_flight=False, queued_at=time.time()
        )
        self.requeue(row.id, STORAGE_PAUSE if outcome is Outcome.PAUSED else 0.0)

    def _cacheable(self, job: Job, row: Row) -> bool:
        """The image cache holds this fresh row's image: it needs no slot."""
        if job.fresh or not _is_fresh(row) or row.spec is None:
            return False
        provider = self.providers(job.model)
        spec = _spec(row)
        return self.cache.has(cache_key(provider, prompt=row.prompt, spec=spec))

    def _run(self, job: Job, row: Row, *, holding: bool, fresh: bool) -> Outcome:
        """Carry the row to a terminal state, or say why it has to wait. `holding`: the row
        took its slot in the line already (and moved to `creating` when `fresh`)."""
        if (held := self._held_back(job, row)) is not None:
            if held is Outcome.PAUSED and holding and fresh:
                # Nothing was sent: back to the line as it was, not as a create to look up.
                self._advance(row, state=RowState.QUEUED.value, create_sent_at=None)
            return held
        spec = _spec(row)
        provider = self.providers(job.model)
        key = cache_key(provider, prompt=row.prompt, spec=spec)
        if fresh and not job.fresh and self._from_cache(job, row, provider, key):
            return Outcome.FINISHED
        # A row whose prediction has finished only fetches its image: that needs no slot.
        if not holding and row.state != RowState.DOWNLOADING.value:
            if not self._wait_for_slot(row, fresh=fresh):
                return Outcome.NO_SLOT
            # Things change while a row waits for its slot (the batch is cancelled or
            # stopped, the disk fills): look again, now, right before anything is paid for.
            if (held := self._held_back(self.store.job(job.id) or job, row)) is not None:
                return held
        prediction_id = row.prediction_id
        started = row.started_at or time.time()
        deadline = time.monotonic() + (started + self.deadline_seconds - time.time())
        try:
            booking = self.bookings(job, row, provider)
            if prediction_id is not None:
                booking.resumed(prediction_id)
            elif not fresh:
                prediction_id = self._recover_lost_create(provider, row, spec, booking)
                if prediction_id is None:
                    self._advance(row, state=RowState.CREATING.value, create_sent_at=time.time())
            slot = _SlotHold(self.store, row, self.owner, handing_over=self._handing_over)
            made, stored = run_prediction(
                provider,
                prompt=row.prompt,
                spec=spec,
                dest=self.images_dir / job.id / row.stem,
                deadline=deadline,
                prediction_id=prediction_id,
                on_sending=self._create_sending,
                on_created=slot.created,
                # Replicate is done with it: the slot goes to the next image before the
                # download, which needs no slot.
                on_downloading=slot.finished,
                booking=booking,
            )
        except GenerationError as exc:
            if self._move_to_fallback(job, row, provider, exc):
                return Outcome.NO_SLOT
            if row.alternate is not None:
                # The re-roll was refused or failed: the first image stays.
                return self._keep_first(job, row, exc)
            self._fail(job, row, exc)
            return Outcome.FINISHED
        except OSError as exc:
            if not is_storage_fault(exc):
                raise
            # Paid for but not storable: the row keeps its prediction id and fetches the image
            # again once the disk takes it (Replicate keeps it for an hour).
            log.info("row %s of job %s waits for storage: %s", row.row, job.id, exc)
            self.storage.noticed(exc)
            return Outcome.PAUSED
        return self._review(
            job, row, spec, provider, key, stored.path, prediction_id=made.id, started=started
        )

    # -- the image checks -----------------------------------------------------------------------

    def _review(
        self,
        job: Job,
        row: Row,
        spec: CarSpec,
        provider: Provider,
        key: str,
        image: Path,
        *,
        started: float,
        prediction_id: str | None = None,
        cached: CachedCopy | None = None,
    ) -> Outcome:
        """Check the image; make it once more when it fails (and a re-roll is left), else
        keep the better of it and the first, deliver it labelled, and finish the row.
        `cached`: the image cache answered the row with it.

        It runs after the prediction finished: the row holds no slot while it is checked."""
        preset = parse_preset(job.output)
        if self.reviewer is None:
            self._done(job, row, provider, image, preset, None, started, cached=cached is not None)
            return Outcome.FINISHED
        inspection = self.reviewer.inspect(
            image,
            spec=spec,
            model=provider.model,
            preset=preset,
            neighbours=self._seen(row),
            kept=None if cached is None else cached.checks,
        )
        first = row.alternate
        if first is None and cached is None and self.reviewer.wants_reroll(inspection, row.rerolls):
            parked = self.images_dir / job.id / ALTERNATES / image.name
            parked.parent.mkdir(parents=True, exist_ok=True)
            os.replace(image, parked)
            log.info("row %s of job %s is made again: %s", row.row, job.id, inspection.sentence)
            self._start_over(
                row,
                rerolls=row.rerolls + 1,
                alternate={
                    "file": f"{ALTERNATES}/{parked.name}",
                    "predictionId": prediction_id,
                    "checks": inspection.as_json(),
                },
            )
            return Outcome.REROLL
        if not inspection.failed and cached is None:
            kept = self.reviewer.kept_with_image(inspection, spec=spec)
            self.cache.keep(key, image, model=provider.model, checks=kept)
        other = None
        if first is not None:
            image, inspection, other = self._pick(job, row, image, inspection, prediction_id)
        self._done(
            job, row, provider, image, preset, inspection, started, cached is not None, other
        )
        return Outcome.FINISHED

    def _pick(
        self, job: Job, row: Row, image: Path, inspection: Inspection, prediction_id: str | None
    ) -> tuple[Path, Inspection, dict[str, Any]]:
        """Of the first image and its re-roll, the better one takes the row's place and the
        other goes to the alternates folder: (kept image, its checks, the other's record)."""
        first = dict(row.alternate or {})
        folder = self.images_dir / job.id
        first_path = folder / str(first["file"])
        first_checks = Inspection.from_json(first["checks"])
        if not keeps_first(first_checks, inspection) or not first_path.is_file():
            return image, inspection, first
        parked = folder / ALTERNATES / f".{image.name}.reroll"
        os.replace(image, parked)
        kept = folder / f"{row.stem}{first_path.suffix}"
        os.replace(first_path, kept)
        other = folder / ALTERNATES / image.name
        os.replace(parked, other)
        record = {
            "file": f"{ALTERNATES}/{other.name}",
            "predictionId": prediction_id,
            "checks": inspection.as_json(),
        }
        return kept, first_checks, record

    def _done(
        self,
        job: Job,
        row: Row,
        provider: Provider,
        image: Path,
        preset: OutputPreset,
        inspection: Inspection | None,
        started: float,
        cached: bool = False,
        other: dict[str, Any] | None = None,
    ) -> None:
        """Deliver the kept image (and the other one) in the batch's preset, and finish."""
        said = labels(model=provider.model, prompt=row.prompt, values=row.values)
        spec = _spec(row)
        final = deliver_in_place(image, preset=preset, labels=said, spec=spec, stem=row.stem)
        if other is not None:
            alternate = self.images_dir / job.id / str(other["file"])
            if alternate.is_file():
                delivered = deliver_in_place(alternate, preset=preset, labels=said, spec=spec)
                other = other | {"file": f"{ALTERNATES}/{delivered.name}"}
        self._settle(
            row,
            RowState.DONE,
            image_name=final.name,
            seconds=round(time.time() - started, 3),
            model=provider.model,
            cached=cached,
            checks=inspection.as_json() if inspection is not None else None,
            alternate=other,
        )

    def _keep_first(self, job: Job, row: Row, exc: GenerationError | None) -> Outcome:
        """Finish a row whose re-roll was not made (refused, failed, or its batch stopped)
        with the first image it had."""
        first = dict(row.alternate or {})
        folder = self.images_dir / job.id
        source = folder / str(first.get("file", ""))
        if exc is not None and exc.fatal_for_batch:
            self.store.set_job(job.id, fatal_error=exc.message, stop_failure=exc.failure.value)
            self.store.settle_unstarted(
                job.id, RowState.FAILED, error=exc.message, failure=Failure.BATCH_STOPPED
            )
        if not first or not source.is_file():
            self._settle(
                row, RowState.FAILED, error=GENERIC_FAILURE, failure=Failure.INTERNAL.value
            )
            return Outcome.FINISHED
        if exc is not None:
            log.info("row %s of job %s keeps its first image: %s", row.row, job.id, exc.message)
        if exc is not None and exc.surely_not_created and row.rerolls:
            # Never made (say, past the batch's budget): not counted as an image made again.
            self._advance(row, rerolls=row.rerolls - 1)
        kept = folder / f"{row.stem}{source.suffix}"
        os.replace(source, kept)
        self._done(
            job,
            row,
            self.providers(job.model),
            kept,
            parse_preset(job.output),
            Inspection.from_json(first.get("checks") or {}),
            row.started_at or time.time(),
        )
        return Outcome.FINISHED

    def _seen(self, row: Row) -> tuple[Neighbour, ...]:
        """The fingerprints of the batch's images made so far for other cars."""
        return tuple(
            Neighbour(f"row {number}", fingerprint)
            for number, spec, fingerprint in self.store.made_so_far(row.job_id, other_than=row.id)
            if another_car(spec, row.spec)
        )

    def _held_back(self, job: Job, row: Row) -> Outcome | None:
        """Why a row that has not been paid for must not be now, if it must not."""
        if row.prediction_id is not None:
            return None
        if row.alternate is not None and (job.canceled or job.fatal_error):
            return self._keep_first(job, row, None)
        if job.canceled:
            self._settle(
                row, RowState.CANCELED, error=CANCELED_REASON, failure=Failure.CANCELED.value
            )
            return Outcome.FINISHED
        if job.fatal_error:
            self._settle(
                row, RowState.FAILED, error=job.fatal_error, failure=Failure.BATCH_STOPPED.value
            )
            return Outcome.FINISHED
        if self.storage.problem():
            return Outcome.PAUSED  # nothing is paid for that could not be stored
        return None

    def _from_cache(self, job: Job, row: Row, provider: Provider, key: str) -> bool:
        """Finish the row with the image an identical request made before, for nothing."""
        started = time.time()
        found = self.cache.copy_to(key, self.images_dir / job.id / row.stem)
        if found is None:
            return False
        self.bookings(job, row, provider).cached()
        self._review(job, row, _spec(row), provider, key, found.path, started=started, cached=found)
        return True

    def _wait_for_slot(self, row: Row, *, fresh: bool) -> bool:
        """Wait a little for a resumed row's slot: at most `concurrency` images generate,
        server-wide. A fresh row moves to `creating` in the same step, its create about to
        be sent."""
        give_up = time.monotonic() + SLOT_WAIT
        while True:
            seen = self.store.slot_changes
            if self.store.take_slot(row.id, self.owner, self.concurrency, creating=fresh):
                return True
            if time.monotonic() > give_up:
                return False
            self.store.wait_for_slot_change(_poll(), since=seen)

    def _create_sending(self) -> None:
        with self._sending:
            self._creates_sent += 1
            self._sending.notify_all()

    @contextmanager
    def _handing_over(self) -> Iterator[None]:
        """Around freeing a slot: when a row of this process was asleep waiting for one, the
        row that freed it then waits (`HAND_OVER_FIRST` at most) until a create is sent, so
        its download, checks and delivery do not hold up that hand-over on the same cores.
        A row that wakes nobody (the batch's last ones) goes straight on."""
        someone_waits = self.store.rows_asleep > 0
        since = self._creates_sent
        yield
        if someone_waits:
            with self._sending:
                self._sending.wait_for(lambda: self._creates_sent != since, HAND_OVER_FIRST)

    def _recover_lost_create(
        self, provider: Provider, row: Row, spec: CarSpec, booking: Booking
    ) -> str | None:
        """A create was sent but its id never stored: find that prediction, don't pay again."""
        if row.create_sent_at is None:
            return None
        rows = self.store.rows(row.job_id)
        # The first image of a row being made again is taken too: it is not the re-roll.
        taken = frozenset(r.prediction_id for r in rows if r.prediction_id) | frozenset(
            str(r.alternate["predictionId"])
            for r in rows
            if r.alternate and r.alternate.get("predictionId")
        )
        found = provider.find_created(
            prompt=row.prompt, spec=spec, since=row.create_sent_at - 5, exclude=taken
        )
        if found is None:
            return None
        log.info(
            "row %s: adopted prediction %s from a create whose answer was lost", row.row, found.id
        )
        booking.created(found.id)  # the booking made before that create, now settled
        self._advance(row, state=RowState.WAITING.value, prediction_id=found.id)
        return found.id

    def _move_to_fallback(
        self, job: Job, row: Row, provider: Provider, exc: GenerationError
    ) -> bool:
        """When the operator named a fallback model and this one is gone, the batch moves to
        it (once, whichever row noticed first) and this row is queued again under it."""
        fallback = self.fallback_model
        if exc.failure is not Failure.MODEL_UNAVAILABLE or fallback in (None, provider.model):
            return False
        assert fallback is not None
        if self.store.adopt_model(job.id, replaced=provider.model, model=fallback):
            log.warning("job %s: %s is gone; its rows move to %s", job.id, provider.model, fallback)
        # A retired model's 404 comes before anything is made, so there is nothing to resume.
        self._start_over(row, in_flight=False)
        return True

    def _fail(self, job: Job, row: Row, exc: GenerationError) -> None:
        extra = {"prediction_id": exc.prediction_id} if exc.prediction_id else {}
        if exc.fatal_for_batch:
            # Every other row would meet the same refusal. The batch is marked stopped before
            # this row gives up its slot, so the row waiting for that slot sees the stop.
            self.store.set_job(job.id, fatal_error=exc.message, stop_failure=exc.failure.value)
        self._settle(row, RowState.FAILED, error=exc.message, failure=exc.failure.value, **extra)
        if exc.fatal_for_batch:
            self.store.settle_unstarted(
                job.id, RowState.FAILED, error=exc.message, failure=Failure.BATCH_STOPPED
            )
        elif exc.failure is Failure.DEADLINE:
            log.warning("row %s of job %s passed its deadline", row.row, job.id)

    def _advance(self, row: Row, **fields: object) -> None:
        self.store.advance(row.id, self.owner, **fields)

    def _start_over(self, row: Row, **fields: object) -> None:
        """Back in line for a new prediction; the old one (re-rolled, or refused by a retired
        model) is no longer the row's."""
        self._advance(
            row,
            state=RowState.QUEUED.value,
            prediction_id=None,
            create_sent_at=None,
            started_at=None,
            **fields,
        )

    def _settle(self, row: Row, state: RowState, **fields: object) -> None:
        self.store.advance(row.id, self.owner, state=state.value, **fields)


_JITTER = random.Random()
"""The safety-net waits' own random numbers: drawing them leaves the process's shared
generator alone."""


def _poll() -> float:
    """A safety-net wait: rows that began to wait together (when their slots were taken at
    one hand-over) do not all look again together, nor in step with images that take a
    whole number of seconds, which would send them to the line just as a freed slot is being
    handed to the row woken for it."""
    return SLOT_POLL * (1 + _JITTER.random())


def _spec(row: Row) -> CarSpec:
    return CarSpec.model_validate(row.spec)


class _SlotHold:
    """A row's slot while Replicate makes its image, given back once, the moment Replicate
    is done: with the prediction id, in one step, when the create itself waited that long."""

    def __init__(
        self,
        store: Store,
        row: Row,
        owner: str,
        *,
        handing_over: Callable[[], AbstractContextManager[None]],
    ) -> None:
        self.store, self.row, self.owner = store, row, owner
        self.handing_over = handing_over
        self.held = True

    def created(self, prediction: Prediction) -> None:
        """Store the prediction id the moment it exists."""
        if prediction.terminal or prediction.ready:
            self._free(prediction_id=prediction.id)
        else:
            self.store.advance(
                self.row.id, self.owner, prediction_id=prediction.id, state=RowState.WAITING.value
            )

    def finished(self, _prediction: Prediction) -> None:
        if self.held:
            self._free()

    def _free(self, **fields: object) -> None:
        self.held = False
        with self.handing_over():
            self.store.advance(
                self.row.id,
                self.owner,
                state=RowState.DOWNLOADING.value,
                in_flight=False,
                **fields,
            )


def _is_fresh(row: Row) -> bool:
    """Nothing was sent to the provider for this row yet."""
    return row.prediction_id is None and row.create_sent_at is None
