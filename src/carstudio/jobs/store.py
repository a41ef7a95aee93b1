"""Jobs and rows in SQL (SQLite by default, PostgreSQL by URL): the batch engine's source of truth.

Every change of a row goes through a conditional UPDATE, so two workers can never both own a
row: a worker *claims* a row with a lease, renews it while it works, and only the lease holder
may move the row on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from carstudio.errors import ConfigurationError
from carstudio.jobs.states import ACTIVE_ROWS, INVALID_ROW, TERMINAL_ROWS, JobState, RowState

Clock = Callable[[], float]
_SLOT_LOCK = 0x6361_7273  # PostgreSQL advisory lock key for taking generation slots


class Base(DeclarativeBase):
    pass


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
    total: Mapped[int] = mapped_column(Integer)
    encoding: Mapped[str] = mapped_column(String(32), default="utf-8")
    delimiter: Mapped[str] = mapped_column(String(4), default=",")
    fatal_error: Mapped[str | None] = mapped_column(Text, default=None)
    zip_name: Mapped[str | None] = mapped_column(String(64), default=None)
    archive_started_at: Mapped[float | None] = mapped_column(Float, default=None)


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
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_expires: Mapped[float | None] = mapped_column(Float, default=None)
    in_flight: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    """Holds one of the server-wide generation slots until the row ends."""
    worker: Mapped[str | None] = mapped_column(String(64), default=None)
    """The worker that last worked on the row."""


class RowProgress(NamedTuple):
    row: int
    state: str
    values: dict[str, str]
    image_name: str | None
    error: str | None
    failure: str | None
    seconds: float | None


# Ordered schema changes, each applied once; append, never edit.
def _add_column(table: str, column: str, sql_type: str) -> Callable[[Engine], None]:
    def migrate(engine: Engine) -> None:
        if column not in {c["name"] for c in inspect(engine).get_columns(table)}:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")

    return migrate


MIGRATIONS: list[Callable[[Engine], None]] = [
    lambda engine: Base.metadata.create_all(engine),
    _add_column("jobs", "archive_started_at", "FLOAT"),
]


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
        if url.startswith("sqlite"):
            self.engine = create_engine(
                url, connect_args={"check_same_thread": False, "timeout": 30}
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        try:
            self._migrate()
        except DBAPIError as exc:
            self.engine.dispose()
            where = make_url(url).render_as_string(hide_password=True)
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            raise ConfigurationError(
                f"Car Studio cannot open its database {where} ({reason}); "
                "check CARSTUDIO_DATABASE_URL."
            ) from exc

    def _migrate(self) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE IF NOT EXISTS carstudio_schema (version INTEGER NOT NULL)"
            )
            current = conn.exec_driver_sql("SELECT MAX(version) FROM carstudio_schema").scalar()
        for version, migration in enumerate(MIGRATIONS, start=1):
            if current is not None and version <= current:
                continue
            migration(self.engine)
            with self.engine.begin() as conn:
                conn.exec_driver_sql(f"INSERT INTO carstudio_schema (version) VALUES ({version})")

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()

    # -- jobs ---------------------------------------------------------------------------------

    def add_job(self, job: Job, rows: Sequence[Row]) -> None:
        with self.session() as s:
            s.add(job)
            s.flush()
            s.add_all(rows)

    def job(self, job_id: str) -> Job | None:
        with self.session() as s:
            return s.get(Job, job_id)

    def rows(self, job_id: str) -> list[Row]:
        with self.session() as s:
            return list(s.scalars(select(Row).where(Row.job_id == job_id).order_by(Row.row)))

    def progress(self, job_id: str) -> tuple[Job | None, list[RowProgress]]:
        """A job and just the columns of its rows that progress reports need, in one read."""
        with self.session() as s:
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
                )
                .where(Row.job_id == job_id)
                .order_by(Row.row)
            ).all()
        return job, [RowProgress(*row) for row in rows]

    def set_job(self, job_id: str, **fields: Any) -> None:
        with self.session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(**fields))

    def settle_unstarted(self, job_id: str, state: RowState, *, error: str, failure: str) -> int:
        """Move a job's queued rows that nobody holds to `state` (cancel, or a fatal fault)."""
        now = self.clock()
        with self.session() as s:
            changed = _changed(
                s,
                update(Row)
                .where(
                    Row.job_id == job_id,
                    Row.state == RowState.QUEUED.value,
                    or_(Row.lease_expires.is_(None), Row.lease_expires < now),
                )
                .values(
                    state=state.value,
                    error=error,
                    failure=failure,
                    finished_at=now,
                    in_flight=False,
                ),
            )
            return changed

    def begin_archive(self, job_id: str) -> bool:
        """Take the job's turn to build its ZIP once every row is terminal; False if not ours."""
        with self.session() as s:
            pending = s.scalar(
                select(func.count())
                .select_from(Row)
                .where(Row.job_id == job_id, Row.state.not_in([st.value for st in TERMINAL_ROWS]))
            )
            if pending:
                return False
            changed = _changed(
                s,
                update(Job)
                .where(Job.id == job_id, Job.state == JobState.RUNNING.value)
                .values(state=JobState.ARCHIVING.value, archive_started_at=self.clock()),
            )
            return bool(changed)

    def jobs_in(self, state: JobState) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(Job.id).where(Job.state == state.value)))

    def stalled_archives(self, started_before: float) -> list[str]:
        """Jobs whose ZIP building began before `started_before` and never ended."""
        with self.session() as s:
            return list(
                s.scalars(
                    select(Job.id).where(
                        Job.state == JobState.ARCHIVING.value,
                        or_(
                            Job.archive_started_at.is_(None),
                            Job.archive_started_at < started_before,
                        ),
                    )
                )
            )

    def jobs_older_than(self, cutoff: float) -> list[Job]:
        with self.session() as s:
            return list(
                s.scalars(
                    select(Job).where(
                        Job.created_at < cutoff,
                        Job.state.in_([JobState.READY.value, JobState.RUNNING.value]),
                    )
                )
            )

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
                    Row.state.not_in([st.value for st in TERMINAL_ROWS]),
                    # Not even this process may take a row it holds: its other thread has it.
                    or_(Row.lease_expires.is_(None), Row.lease_expires < now),
                )
                .values(
                    lease_owner=owner,
                    lease_expires=now + ttl,
                    attempts=Row.attempts + 1,
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
        """Let a held row start generating if fewer than `limit` other rows, across every worker
        of every machine, hold a slot now. The count and the update are one atomic step.

        An unfinished row keeps its slot even when its worker dies: its prediction may still
        be running at Replicate, and the row that resumes it takes the slot over.
        """
        busy = (
            select(func.count())
            .select_from(Row)
            .where(
                Row.in_flight.is_(True),
                Row.state.not_in([st.value for st in TERMINAL_ROWS]),
                Row.id != row_id,
            )
            .scalar_subquery()
        )
        creating_now = (
            {"state": RowState.CREATING.value, "create_sent_at": self.clock()} if creating else {}
        )
        with self.session() as s:
            if s.bind is not None and s.bind.dialect.name == "postgresql":
                # Serialise slot-taking: under READ COMMITTED two takers could both see room.
                s.execute(select(func.pg_advisory_xact_lock(_SLOT_LOCK)))
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
            return bool(changed)

    def advance(self, row_id: int, owner: str, **fields: Any) -> bool:
        """Change a row the caller holds; terminal states also free its lease and slot."""
        if fields.get("state") in {st.value for st in TERMINAL_ROWS}:
            fields |= {
                "lease_owner": None,
                "lease_expires": None,
                "in_flight": False,
                "finished_at": self.clock(),
            }
        with self.session() as s:
            changed = _changed(
                s, update(Row).where(Row.id == row_id, Row.lease_owner == owner).values(**fields)
            )
            return bool(changed)

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

    def resumable_rows(self, *, include_queued: bool) -> list[int]:
        """Unfinished rows that no live lease holds: their worker died, or their task was lost."""
        states = [st.value for st in ACTIVE_ROWS]
        if include_queued:
            states.append(RowState.QUEUED.value)
        now = self.clock()
        with self.session() as s:
            return list(
                s.scalars(
                    select(Row.id)
                    .join(Job, Job.id == Row.job_id)
                    .where(
                        Row.state.in_(states),
                        Job.state == JobState.RUNNING.value,
                        or_(Row.lease_expires.is_(None), Row.lease_expires < now),
                    )
                    .order_by(Row.job_id, Row.row)
                )
            )

    def reset_failed(self, job_id: str) -> list[int]:
        """Put a finished job's failed rows back in the queue, and the job back to running."""
        with self.session() as s:
            job = s.get(Job, job_id)
            if job is None:
                return []
            rows = list(
                s.scalars(
                    select(Row).where(
                        Row.job_id == job_id,
                        Row.state == RowState.FAILED.value,
                        Row.failure != INVALID_ROW,
                    )
                )
            )
            for row in rows:
                # A prediction that finished but was not fetched is resumed for free;
                # one the model refused is made again.
                keep = row.failure in {"transient", "bad_output", "rate_limited"}
                row.prediction_id = row.prediction_id if keep else None
                row.create_sent_at = None
                row.state = RowState.QUEUED.value
                row.error = row.failure = None
                row.started_at = row.finished_at = row.seconds = None
            if rows:
                job.state = JobState.RUNNING.value
                job.canceled = False
                job.fatal_error = None
                job.finished_at = None
            return [row.id for row in rows]


def _changed(session: Session, statement: Any) -> int:
    """Run an UPDATE and say how many rows it changed."""
    result = session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
