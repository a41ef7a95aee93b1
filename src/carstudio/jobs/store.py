"""Jobs and rows in SQL (SQLite by default, PostgreSQL by URL): the batch engine's source of truth.

Every change of a row goes through a conditional UPDATE, so two workers can never both own a
row: a worker *claims* a row with a lease, renews it while it works, and only the lease holder
may move the row on.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    case,
    cast,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from carstudio.errors import MADE_ANEW, NOT_RETRIED, ConfigurationError, Failure
from carstudio.jobs.migrations import migrate
from carstudio.jobs.models import Job, Row, RowProgress, SingleSlot
from carstudio.jobs.states import ACTIVE_ROWS, TERMINAL_ROWS, JobState, RowState

Clock = Callable[[], float]


class Turn(NamedTuple):
    """What `Store.take_next` found: the row it started, or whether rows wait for a slot."""

    row: Row | None
    job: Job | None
    fresh: bool
    """Nothing was sent for the row before: its create goes out now."""
    waiting: bool


_SLOT_LOCK = 0x6361_7273  # PostgreSQL advisory lock key for taking generation slots
_ROWS: Table = Row.__table__  # type: ignore[assignment]
_JOBS: Table = Job.__table__  # type: ignore[assignment]
"""The tables themselves, for the writes made several times a second in a big batch: on the
tables, not the mapped classes, a write skips the ORM's bookkeeping, which costs more than
the write itself."""
_TERMINAL = [state.value for state in TERMINAL_ROWS]
_UNFINISHED = Row.state.not_in(_TERMINAL)
_HOLDS_A_SLOT = and_(Row.in_flight.is_(True), _UNFINISHED)
"""A batch row holds one of the slots: its image is being made, or its worker died while it
was (the row that resumes it takes the slot over)."""
_HOLDS_SLOT = select(_ROWS.c.in_flight).where(_ROWS.c.id == bindparam("row", type_=Integer))
_ROW_AND_JOB = (
    select(Row, Job)
    .join(Job, Job.id == Row.job_id)
    .where(Row.id == bindparam("row", type_=Integer))
)
_TOUCH_JOB = (
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("job", type_=String))
    .values(version=_JOBS.c.version + 1)
)
_TOUCH_JOB_OF_ROW = (
    update(_JOBS)
    .where(
        _JOBS.c.id
        == select(_ROWS.c.job_id)
        .where(_ROWS.c.id == bindparam("row", type_=Integer))
        .scalar_subquery()
    )
    .values(version=_JOBS.c.version + 1)
)


def _set_row(session: Session, row_id: int, owner: str, fields: dict[str, Any]) -> int:
    """Change a row `owner` holds; how many rows changed (0: not held by `owner`)."""
    return _changed(
        _core(session), _advancing(frozenset(fields)), fields | {"_row": row_id, "_owner": owner}
    )


def _core(session: Session) -> Connection:
    """The session's connection, for the prebuilt statements on the tables made at every
    hand-over: run there, they skip the ORM's handling of a statement, which costs more
    than running it."""
    return session.connection()


@functools.cache
def _advancing(fields: frozenset[str]) -> Any:
    """The UPDATE of `_set_row` for these fields, built once per set of fields: building
    a statement costs more than running it."""
    return (
        update(_ROWS)
        .where(
            _ROWS.c.id == bindparam("_row", type_=Integer),
            _ROWS.c.lease_owner == bindparam("_owner", type_=String),
        )
        .values({_ROWS.c[name]: bindparam(name) for name in sorted(fields)})
    )


def database_url(url: str | None, data_dir: Path) -> str:
    """The SQLAlchemy URL to use: the setting, normalised, or a SQLite file in the data dir."""
    if not url:
        return f"sqlite:///{(data_dir / 'carstudio.db').resolve()}"
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Store:
    """All reads and writes of jobs and rows."""

    def __init__(self, url: str, *, clock: Clock = time.time) -> None:
        self.clock = clock
        slot_news = threading.Lock()
        self.rows_waiting = threading.Condition(slot_news)
        """Batch rows waiting here for a slot: one is woken per freed slot."""
        self.singles_waiting = threading.Condition(slot_news)
        """Single images waiting here for a slot: all are woken, since they go first."""
        self.slot_changes = 0
        """How many times a slot was freed here or announced by another process."""
        self.rows_asleep = 0
        """Batch rows of this process asleep until a slot is freed."""
        self.announce_slot: Callable[[], None] = lambda: None
        """Tell other processes a slot was freed (see jobs/notices.py)."""
        if url.startswith("sqlite"):
            self.engine = create_engine(
                url, connect_args={"check_same_thread": False, "timeout": 30}
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # SQLite lets one transaction write at a time and makes the others sleep and try
            # again, for milliseconds at a go; taking turns here wakes the next one at once.
            self._turns: AbstractContextManager[object] = threading.RLock()
        else:
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
            self._turns = nullcontext()
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        try:
            migrate(self.engine)
        except DBAPIError as exc:
            self.engine.dispose()
            where = make_url(url).render_as_string(hide_password=True)
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            raise ConfigurationError(
                f"Car Studio cannot open its database {where} ({reason}); "
                "check CARSTUDIO_DATABASE_URL."
            ) from exc

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._turns, self._sessions.begin() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A transaction that only reads: it need not wait for writers to take their turn."""
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()

    # -- jobs ---------------------------------------------------------------------------------

    def add_job(self, job: Job, rows: Sequence[Row]) -> None:
        now = self.clock()
        for row in rows:
            if row.state in (None, RowState.QUEUED.value):
                row.queued_at = now
        with self.session() as s:
            s.add(job)
            s.flush()
            s.add_all(rows)

    def job(self, job_id: str) -> Job | None:
        with self.reading() as s:
            return s.get(Job, job_id)

    def row(self, row_id: int) -> Row | None:
        with self.reading() as s:
            return s.get(Row, row_id)

    def rows(self, job_id: str) -> list[Row]:
        with self.reading() as s:
            return list(s.scalars(select(Row).where(Row.job_id == job_id).order_by(Row.row)))

    def made_so_far(self, job_id: str, *, other_than: int) -> list[tuple[int, Any, str]]:
        """The fingerprints of the batch's finished images, other than one row's: (row
        number, spec, fingerprint) each, read without loading whole rows (every image asks,
        as it is checked for a duplicate)."""
        fingerprint = Row.checks["fingerprint"].as_string()
        with self.reading() as s:
            found: Sequence[Any] = s.execute(
                select(Row.row, Row.spec, fingerprint)
                .where(
                    Row.job_id == job_id,
                    Row.id != other_than,
                    Row.state == RowState.DONE.value,
                    fingerprint.is_not(None),
                )
                .order_by(Row.row)
            ).all()
        return [(number, spec, str(print_)) for number, spec, print_ in found if print_]

    def progress(self, job_id: str) -> tuple[Job | None, list[RowProgress]]:
        """A job and just the columns of its rows that progress reports need, in one read."""
        with self.reading() as s:
            job = s.get(Job, job_id)
            if job is None:
                return None, []
            rows = s.execute(
                select(
                    Row.row,
                    Row.state,
                    Row.values,
                    Row.image_name,
                    Row.error,
                    Row.failure,
                    Row.seconds,
                    Row.cached,
                    Row.checks,
                    Row.rerolls,
                )
                .where(Row.job_id == job_id)
                .order_by(Row.row)
            ).all()
        return job, [RowProgress._make(row) for row in rows]

    def recent_jobs(
        self, *, owner_id: int | None, everyone: bool, limit: int, before: float | None
    ) -> list[tuple[Job, dict[str, int]]]:
        """Jobs newest first (`owner_id`'s, or `everyone`'s), each with its rows per state."""
        with self.session() as s:
            query = select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit)
            if not everyone:
                query = query.where(Job.owner_id == owner_id)
            if before is not None:
                query = query.where(Job.created_at < before)
            jobs = list(s.scalars(query))
            counts: dict[str, dict[str, int]] = {job.id: {} for job in jobs}
            if jobs:
                for job_id, state, count in s.execute(
                    select(Row.job_id, Row.state, func.count())
                    .where(Row.job_id.in_(list(counts)))
                    .group_by(Row.job_id, Row.state)
                ):
                    counts[job_id][state] = count
            return [(job, counts[job.id]) for job in jobs]

    def set_job(self, job_id: str, **fields: Any) -> None:
        with self.session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(**fields, version=_NEXT))

    def set_checks(self, checks: dict[int, dict[str, Any]]) -> None:
        """Replace finished rows' image checks (by row id): a duplicate seen only once the
        whole batch was done."""
        with self.session() as s:
            for row_id, found in checks.items():
                s.execute(update(Row).where(Row.id == row_id).values(checks=found))
                _touch_job_of(s, row_id)

    def settle_unstarted(
        self, job_id: str, state: RowState, *, error: str, failure: Failure
    ) -> int:
        """Move a job's queued rows that nobody holds to `state` (cancel, or a fatal fault).
        A row queued to be made again keeps its first image: its worker finishes it with that."""
        now = self.clock()
        with self.session() as s:
            changed = _changed(
                s,
                update(Row)
                .where(
                    Row.job_id == job_id,
                    Row.state == RowState.QUEUED.value,
                    Row.alternate.is_(None),
                    or_(Row.lease_expires.is_(None), Row.lease_expires < now),
                )
                .values(
                    state=state.value,
                    error=error,
                    failure=failure.value,
                    finished_at=now,
                    in_flight=False,
                ),
            )
            if changed:
                _touch(s, job_id)
            return changed

    def begin_archive(self, job_id: str) -> bool:
        """Take the job's turn to build its ZIP once every row is terminal; False if not ours."""
        with self.session() as s:
            pending = s.scalar(
                select(func.count()).select_from(Row).where(Row.job_id == job_id, _UNFINISHED)
            )
            if pending:
                return False
            changed = _changed(
                s,
                update(Job)
                .where(Job.id == job_id, Job.state == JobState.RUNNING.value)
                .values(
                    state=JobState.ARCHIVING.value,
                    archive_started_at=self.clock(),
                    archive_retry_at=None,
                    version=_NEXT,
                ),
            )
            return bool(changed)

    def rows_left(self, job_id: str) -> tuple[int, int]:
        """A job's rows not yet finished, and how many of those have not started."""
        with self.reading() as s:
            counts: tuple[Any, Any] = s.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(case((Row.state == RowState.QUEUED.value, 1))), 0),
                ).where(Row.job_id == job_id, _UNFINISHED)
            ).one()
        return int(counts[0]), int(counts[1])

    def jobs_in(self, state: JobState) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(Job.id).where(Job.state == state.value)))

    def stalled_archives(self, started_before: float) -> list[str]:
        """Jobs whose ZIP to build again: its builder stopped before `started_before` and never
        finished, or a failed build's wait is over."""
        now = self.clock()
        with self.session() as s:
            return list(
                s.scalars(
                    select(Job.id).where(
                        Job.state == JobState.ARCHIVING.value,
                        or_(
                            and_(
                                Job.archive_retry_at.is_(None),
                                or_(
                                    Job.archive_started_at.is_(None),
                                    Job.archive_started_at < started_before,
                                ),
                            ),
                            Job.archive_retry_at <= now,
                        ),
                    )
                )
            )

    def archive_failed(self, job_id: str, *, error: str, wait: float) -> None:
        """The ZIP could not be built: say why, and when it is tried again."""
        with self.session() as s:
            s.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == JobState.ARCHIVING.value)
                .values(
                    archive_error=error,
                    archive_retry_at=self.clock() + wait,
                    archive_attempts=Job.archive_attempts + 1,
                    version=_NEXT,
                )
            )

    def inactive_jobs(self, cutoff: float) -> list[Job]:
        """Finished jobs with no activity since `cutoff`: nothing made, retried or moved."""
        with self.session() as s:
            return list(
                s.scalars(
                    select(Job).where(
                        Job.state == JobState.READY.value,
                        func.coalesce(Job.finished_at, Job.created_at) < cutoff,
                    )
                )
            )

    def expire(self, job: Job) -> bool:
        """Mark a job expired if it is still as it was read (ready, finished at that moment);
        False when it changed since (say, a retry started), and its files must stay."""
        with self.session() as s:
            changed = _changed(
                s,
                update(Job)
                .where(
                    Job.id == job.id,
                    Job.state == JobState.READY.value,
                    Job.finished_at.is_(None)
                    if job.finished_at is None
                    else Job.finished_at == job.finished_at,
                )
                .values(state=JobState.EXPIRED.value, zip_name=None, version=_NEXT),
            )
            return bool(changed)

    # -- rows: leases ---------------------------------------------------------------------------

    def claim(self, row_id: int, owner: str, ttl: float) -> Row | None:
        """Take a non-terminal row that no live lease holds; None when someone else has it."""
        now = self.clock()
        with self.session() as s:
            changed = _changed(
                s,
                update(Row)
                .where(
                    Row.id == row_id,
                    _UNFINISHED,
                    # Not even this process may take a row it holds: its other thread has it.
                    or_(Row.lease_expires.is_(None), Row.lease_expires < now),
                )
                .values(
                    lease_owner=owner,
                    lease_expires=now + ttl,
                ),
            )
            if not changed:
                return None
            return s.get(Row, row_id)

    def renew(self, row_id: int, owner: str, ttl: float) -> bool:
        with self.session() as s:
            changed = _changed(
                s,
                update(Row)
                .where(Row.id == row_id, Row.lease_owner == owner)
                .values(lease_expires=self.clock() + ttl),
            )
            return bool(changed)

    def take_slot(self, row_id: int, owner: str, limit: int, *, creating: bool = False) -> bool:
        """Let a held row that has started before (resumed after its worker stopped) go on
        generating if fewer than `limit` other images, across every worker of every machine,
        hold a slot now, counting single images that wait for one (they go first). The count
        and the update are one atomic step. Rows that have not started take their turn in the
        line instead (`take_next`).

        An unfinished row keeps its slot even when its worker dies: its prediction may still
        be running at Replicate, and the row that resumes it takes the slot over.
        """
        busy = self._busy(exclude_row=row_id) + self._singles(waiting_too=True)
        creating_now = (
            {"state": RowState.CREATING.value, "create_sent_at": self.clock()} if creating else {}
        )
        with self._slot_session() as s:
            changed = _changed(
                s,
                update(Row)
                .where(Row.id == row_id, Row.lease_owner == owner, busy < limit)
                .values(
                    in_flight=True,
                    worker=owner,
                    started_at=func.coalesce(Row.started_at, self.clock()),
                    **creating_now,
                ),
            )
            if changed and creating:
                _touch_job_of(s, row_id)
            return bool(changed)

    def take_next(self, owner: str, limit: int, ttl: float) -> Turn:
        """Start the row whose turn it is, if a slot is free: hold it under a lease and a slot
        in one atomic step, and move a fresh row (nothing sent for it yet) to `creating`.

        Whose turn: single images that wait go first (they count as busy here); then the
        owner (the batch's user; with sign-in off, the batch itself) with the fewest images
        in slots, and among equals the one served longest ago, so owners take turns round
        by round; within one owner, batches in submission order and rows in spreadsheet
        order.
        """
        now = self.clock()
        with self._slot_session() as s:
            asked = {"now": now, "slots": limit, "holder": owner, "expires": now + ttl}
            taken = _core(s).execute(_TAKE_NEXT, asked).scalar()
            if taken is None:
                waiting = _core(s).scalar(_NEXT_IN_LINE, {"now": now})
                return Turn(row=None, job=None, fresh=False, waiting=waiting is not None)
            row, job = s.execute(_ROW_AND_JOB, {"row": taken}).one()
            fresh = row.prediction_id is None and row.create_sent_at is None
            if fresh:
                creating = {"state": RowState.CREATING.value, "create_sent_at": now}
                _set_row(s, taken, owner, creating)
                for name, value in creating.items():
                    set_committed_value(row, name, value)  # as stored: nothing left to flush
                _touch(s, row.job_id)
            return Turn(row=row, job=job, fresh=fresh, waiting=True)

    def prepare_line(self) -> None:
        """Build the line's statements now, which the first row of the first batch would
        otherwise pay for at its hand-over: asked with no slot free, the line starts nothing."""
        self.take_next("", 0, 0.0)
        with self.reading() as s:
            s.execute(_ROW_AND_JOB, {"row": -1}).all()

    def has_room(self, limit: int) -> bool:
        """Whether a batch row could take a slot now, read without waiting for the writers:
        a row that wakes from its safety-net poll to find every slot taken goes back to
        sleep without queueing at the writer for `take_next`."""
        with self.reading() as s:
            return bool(_core(s).scalar(_HAS_ROOM, {"now": self.clock(), "slots": limit}))

    def queue_single(self, image_id: str, *, client: str, expires_at: float, cap: int) -> bool:
        """Put a single image in line for a slot; False when `client` already has `cap` waiting."""
        with self.session() as s:
            waiting = s.scalar(
                select(func.count())
                .select_from(SingleSlot)
                .where(
                    SingleSlot.client == client,
                    SingleSlot.holding.is_(False),
                    SingleSlot.expires_at > self.clock(),
                )
            )
            if (waiting or 0) >= cap:
                return False
            s.add(SingleSlot(id=image_id, client=client, holding=False, expires_at=expires_at))
            return True

    def take_single_slot(self, image_id: str, limit: int, *, hold_until: float) -> bool:
        """Let a waiting single image start if fewer than `limit` images hold a slot now; it
        then holds the slot until `hold_until` at the latest (its deadline)."""
        busy = self._busy(exclude_row=None) + self._singles(waiting_too=False)
        with self._slot_session() as s:
            changed = _changed(
                s,
                update(SingleSlot)
                .where(SingleSlot.id == image_id, busy < limit)
                .values(holding=True, expires_at=hold_until),
            )
            return bool(changed)

    def renew_single_wait(self, image_id: str, until: float) -> None:
        """A waiting single image is still wanted; a dead process's stops counting soon."""
        with self.session() as s:
            s.execute(update(SingleSlot).where(SingleSlot.id == image_id).values(expires_at=until))

    def release_single_slot(self, image_id: str) -> None:
        with self.session() as s:
            s.execute(delete(SingleSlot).where(SingleSlot.id == image_id))
        self.slot_freed()

    def forget_expired_single_slots(self) -> None:
        """Tickets of processes that died holding or awaiting a slot; they count for nothing."""
        with self.session() as s:
            s.execute(delete(SingleSlot).where(SingleSlot.expires_at <= self.clock()))

    def _busy(self, *, exclude_row: int | None) -> Any:
        """Batch rows holding a slot, as a subquery."""
        query = select(func.count()).select_from(Row).where(_HOLDS_A_SLOT)
        if exclude_row is not None:
            query = query.where(Row.id != exclude_row)
        return query.scalar_subquery()

    def _singles(self, *, waiting_too: bool) -> Any:
        """Single images holding a slot (and, for batch rows, those waiting for one)."""
        query = (
            select(func.count()).select_from(SingleSlot).where(SingleSlot.expires_at > self.clock())
        )
        if not waiting_too:
            query = query.where(SingleSlot.holding.is_(True))
        return query.scalar_subquery()

    @contextmanager
    def _slot_session(self) -> Iterator[Session]:
        with self.session() as s:
            if s.bind is not None and s.bind.dialect.name == "postgresql":
                # Serialise slot-taking: under READ COMMITTED two takers could both see room.
                s.execute(select(func.pg_advisory_xact_lock(_SLOT_LOCK)))
            yield s

    def advance(self, row_id: int, owner: str, **fields: Any) -> bool:
        """Change a row the caller holds; terminal states also free its lease and slot."""
        if fields.get("state") in _TERMINAL:
            fields |= {
                "lease_owner": None,
                "lease_expires": None,
                "in_flight": False,
                "finished_at": self.clock(),
            }
        held = False
        with self.session() as s:
            if fields.get("in_flight") is False:
                # Only a row that held a slot frees one: waking the waiters for a row that
                # had given its slot back already (done after its download) would send every
                # one of them to the line for nothing.
                held = bool(_core(s).scalar(_HOLDS_SLOT, {"row": row_id}))
            changed = _set_row(s, row_id, owner, fields)
            if changed and not fields.keys() <= _BOOKKEEPING:
                _touch_job_of(s, row_id)
        if changed and held:
            self.slot_freed()
        return bool(changed)

    def slot_freed(self) -> None:
        """Wake this process's rows and images waiting for a slot, and tell the other
        processes: one may be theirs now."""
        self.wake_slot_waiters()
        self.announce_slot()

    def wake_slot_waiters(self) -> None:
        """A slot was freed: every single image waiting here looks (they go ahead of batch
        rows), and one batch row. The line, not the row, decides which row starts, so one
        look is enough; waking every row would send the rest to the line for nothing, each
        taking its turn at the store's writer while the one that won starts its image."""
        with self.rows_waiting:
            self.slot_changes += 1
            self.singles_waiting.notify_all()
            self.rows_waiting.notify()

    def pass_on_wake(self) -> None:
        """A woken row did not want the slot (its line was empty): wake another row, one that
        waits to resume, say, which may."""
        with self.rows_waiting:
            self.rows_waiting.notify()

    def wait_for_slot_change(self, timeout: float, *, since: int, single: bool = False) -> bool:
        """Sleep until woken for a freed slot (here, or in a process whose notice arrives),
        or `timeout` seconds pass; True when woken. `since`: the `slot_changes` read before
        the caller last looked for a slot; a slot freed after that look ends the wait at
        once, so none is missed between looking and sleeping. `single`: the caller is a
        single image, woken with every other single image at each freed slot."""
        waiting = self.singles_waiting if single else self.rows_waiting
        with waiting:
            if self.slot_changes != since:
                return True
            if single:
                return waiting.wait(timeout)
            self.rows_asleep += 1
            try:
                return waiting.wait(timeout)
            finally:
                self.rows_asleep -= 1

    def expire_leases(self, is_dead: Callable[[str], bool]) -> int:
        """End at once the leases of holders known to be gone, instead of waiting out their time."""
        with self.session() as s:
            owners = s.scalars(
                select(Row.lease_owner).where(Row.lease_owner.is_not(None)).distinct()
            ).all()
            dead = [owner for owner in owners if owner and is_dead(owner)]
            if not dead:
                return 0
            changed = _changed(
                s, update(Row).where(Row.lease_owner.in_(dead)).values(lease_expires=0.0)
            )
            return changed

    def resumable_rows(self, *, stale_before: float | None) -> list[int]:
        """Unfinished rows of running jobs that nobody is working on, to queue again.

        That is every unfinished row whose lease has ended, whatever its state (its worker
        died, even while the row only waited for a slot), and every queued row nobody has
        touched since `stale_before` (its queue task may be lost; None: every queued row).
        A row queued twice still runs once, because a task first claims its row. Queued
        rows picked here count as queued now, so each is picked at most once a lease.
        """
        now = self.clock()
        queued = Row.state == RowState.QUEUED.value
        untouched = or_(
            Row.lease_owner.is_not(None),  # claimed, then its holder went silent
            Row.queued_at.is_(None),
            Row.queued_at < (now if stale_before is None else stale_before),
        )
        with self.session() as s:
            found = s.execute(
                select(Row.id, Row.state)
                .join(Job, Job.id == Row.job_id)
                .where(
                    Job.state == JobState.RUNNING.value,
                    or_(Row.state.in_([st.value for st in ACTIVE_ROWS]), and_(queued, untouched)),
                    or_(Row.lease_expires.is_(None), Row.lease_expires < now),
                )
                .order_by(Row.job_id, Row.row)
            ).all()
            requeued = [row_id for row_id, state in found if state == RowState.QUEUED.value]
            if requeued:
                s.execute(
                    update(Row)
                    .where(Row.id.in_(requeued))
                    .values(queued_at=now, lease_owner=None, lease_expires=None)
                )
            return [row_id for row_id, _ in found]

    def adopt_model(self, job_id: str, *, replaced: str, model: str) -> bool:
        """Move a running job from `replaced` to `model`; False when it has moved already."""
        with self.session() as s:
            changed = _changed(
                s,
                update(Job)
                .where(Job.id == job_id, Job.model == replaced)
                .values(model=model, replaced_model=replaced, version=_NEXT),
            )
            return bool(changed)

    def switch_model(self, job_id: str, *, model: str) -> list[int]:
        """Put a finished job's rows that its retired model stopped back in the queue, under
        `model`; finished images stay as they are."""
        stopped = [Failure.MODEL_UNAVAILABLE.value, Failure.BATCH_STOPPED.value]
        with self.session() as s:
            job, rows = _failed_rows_of_ready_job(s, job_id, Row.failure.in_(stopped))
            for row in rows:
                _requeue(row)
            if job is not None and rows:
                job.replaced_model = job.model
                job.model = model
                _reopen(job)
            return [row.id for row in rows]

    def reset_failed(self, job_id: str) -> list[int]:
        """Put a finished job's failed rows back in the queue, and the job back to running."""
        retried = or_(
            Row.failure.is_(None),
            Row.failure.not_in([kind.value for kind in NOT_RETRIED]),
        )
        with self.session() as s:
            job, rows = _failed_rows_of_ready_job(s, job_id, retried)
            for row in rows:
                # A prediction that was made but not stored is resumed for free, and a create
                # whose outcome stayed unknown is looked up before it is sent again; an image
                # the model refused, or Replicate deleted, is made anew.
                _requeue(row, resume=row.failure not in {kind.value for kind in MADE_ANEW})
            if job is not None and rows:
                _reopen(job)
            return [row.id for row in rows]


def _failed_rows_of_ready_job(
    s: Session, job_id: str, failure: ColumnElement[bool]
) -> tuple[Job | None, list[Row]]:
    """A finished job, locked, and its failed rows whose failure matches `failure`; no job
    and no rows when the job is gone or not finished."""
    # Locked and checked in one step: cleanup may be expiring this very job.
    job = s.get(Job, job_id, with_for_update=True)
    if job is None or job.state != JobState.READY.value:
        return None, []
    failed = select(Row).where(Row.job_id == job_id, Row.state == RowState.FAILED.value, failure)
    return job, list(s.scalars(failed))


def _requeue(row: Row, *, resume: bool = False) -> None:
    """A finished row, queued to run again; `resume` keeps what identifies its prediction."""
    if not resume:
        row.prediction_id = row.create_sent_at = None
    row.state = RowState.QUEUED.value
    row.queued_at = time.time()
    row.error = row.failure = None
    row.started_at = row.finished_at = row.seconds = None


def _reopen(job: Job) -> None:
    job.version += 1
    job.state = JobState.RUNNING.value
    job.canceled = False
    job.fatal_error = job.stop_failure = None
    job.finished_at = None


def _next_in_line(now: Any) -> Any:
    """The id of the row that starts next (see `Store.take_next`), as a scalar subquery."""
    live = (
        select(
            Row.id,
            Row.row,
            Row.state,
            Row.in_flight,
            Row.started_at,
            Row.lease_expires,
            Job.created_at.label("submitted"),
            Job.id.label("job"),
            func.coalesce(cast(Job.owner_id, String), Job.id).label("owner"),
        )
        .join(Job, Job.id == Row.job_id)
        .where(Job.state == JobState.RUNNING.value)
        .subquery()
    )
    owners = (
        select(
            live.c.owner,
            func.sum(
                case((and_(live.c.in_flight.is_(True), live.c.state.not_in(_TERMINAL)), 1), else_=0)
            ).label("busy"),
            func.max(live.c.started_at).label("served"),
        )
        .group_by(live.c.owner)
        .subquery()
    )
    return (
        select(live.c.id)
        .join(owners, owners.c.owner == live.c.owner)
        .where(
            live.c.state == RowState.QUEUED.value,
            live.c.in_flight.is_(False),
            or_(live.c.lease_expires.is_(None), live.c.lease_expires < now),
        )
        .order_by(
            owners.c.busy,
            owners.c.served.asc().nulls_first(),
            live.c.submitted,
            live.c.job,
            live.c.row,
        )
        .limit(1)
        .scalar_subquery()
    )


_NEXT = Job.version + 1
_BOOKKEEPING = frozenset({"lease_owner", "lease_expires", "in_flight", "queued_at", "worker"})
"""Row fields no progress answer shows: changing only these leaves the job's version."""


def _touch(session: Session, job_id: str) -> None:
    """Count a change to a job or its rows."""
    _core(session).execute(_TOUCH_JOB, {"job": job_id})


def _touch_job_of(session: Session, row_id: int) -> None:
    """Count a change to a row's job."""
    _core(session).execute(_TOUCH_JOB_OF_ROW, {"row": row_id})


_NOW = bindparam("now", type_=Float)
_NEXT_IN_LINE = select(_next_in_line(_NOW))
_IN_SLOTS = select(func.count()).select_from(Row).where(_HOLDS_A_SLOT).scalar_subquery()
_SINGLES_IN_LINE = (
    select(func.count()).select_from(SingleSlot).where(SingleSlot.expires_at > _NOW)
).scalar_subquery()
_ROOM = bindparam("slots", type_=Integer) > _IN_SLOTS + _SINGLES_IN_LINE
"""A slot is free for a batch row: the images in slots, and the single images waiting for
one (they go first), are fewer than the limit."""
_HAS_ROOM = select(_ROOM)
_TAKE_NEXT = (
    update(_ROWS)
    .where(_ROWS.c.id == _next_in_line(_NOW), _ROOM)
    .values(
        in_flight=True,
        lease_owner=bindparam("holder", type_=String),
        lease_expires=bindparam("expires", type_=Float),
        worker=bindparam("holder", type_=String),
        started_at=func.coalesce(_ROWS.c.started_at, _NOW),
    )
    .returning(_ROWS.c.id)
)
"""Built once: the line is asked at every hand-over, and building this costs more than
running it."""


def _changed(
    session: Session | Connection, statement: Any, params: dict[str, Any] | None = None
) -> int:
    """Run an UPDATE (in a session, or on its connection: `_core`) and say how many rows it
    changed."""
    result = session.execute(statement, params)
    return int(getattr(result, "rowcount", 0) or 0)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
