"""Schema changes of the store, by name, each applied once and recorded in `carstudio_migrations`.

Append new steps at the end and never edit one that has shipped: a database remembers the
names of the steps it has had, so a renamed step would run twice. Each step checks what it
changes, so a database made by `create_tables` from today's models passes through the later
steps untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import NamedTuple

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from carstudio.accounts import models as _accounts  # noqa: F401 - registers its tables
from carstudio.billing import models as _billing  # noqa: F401 - registers its tables
from carstudio.db import Base
from carstudio.jobs import models as _jobs  # noqa: F401 - registers its tables

log = logging.getLogger(__name__)

_TABLE = "carstudio_migrations"
_MIGRATION_LOCK = 0x6361_726D  # PostgreSQL advisory lock key held while the schema changes
_LEGACY_TABLE = "carstudio_schema"
"""Before steps had names they were numbered 1, 2, ... in this table."""


class Migration(NamedTuple):
    name: str
    apply: Callable[[Connection], None]


def _columns(conn: Connection, table: str) -> set[str]:
    found = inspect(conn)
    if not found.has_table(table):
        return set()
    return {column["name"] for column in found.get_columns(table)}


def create_tables(conn: Connection) -> None:
    Base.metadata.create_all(conn)


def _create(conn: Connection, *tables: str) -> None:
    Base.metadata.create_all(conn, tables=[Base.metadata.tables[name] for name in tables])


def _add_column(conn: Connection, table: str, column: str, sql_type: str) -> None:
    if column not in _columns(conn, table):
        conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")


def add_jobs_archive_started_at(conn: Connection) -> None:
    """When a ZIP build began, so a build that stalled can be taken over."""
    _add_column(conn, "jobs", "archive_started_at", "FLOAT")


def drop_unread_columns(conn: Connection) -> None:
    """Columns that were written but never read; `jobs.total` would also block new jobs."""
    for table, column in (
        ("jobs", "total"),
        ("jobs", "encoding"),
        ("jobs", "delimiter"),
        ("rows", "attempts"),
    ):
        if column in _columns(conn, table):
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")


def add_model_switch_columns(conn: Connection) -> None:
    """What a batch needs to move to another model when Replicate retires its own."""
    _add_column(conn, "jobs", "stop_failure", "VARCHAR(32)")
    _add_column(conn, "jobs", "replaced_model", "VARCHAR(64)")
    _add_column(conn, "rows", "model", "VARCHAR(64)")


def add_accounts_and_owners(conn: Connection) -> None:
    """Users, their API tokens and sign-in failures; who owns each batch and single image."""
    _create(conn, "users", "api_tokens", "sign_in_failures", "single_images")
    _add_column(conn, "jobs", "owner_id", "INTEGER")


def add_rows_queued_at(conn: Connection) -> None:
    """When each row went into the queue, so a row whose queue task was lost is found."""
    _add_column(conn, "rows", "queued_at", "FLOAT")


def add_single_slots(conn: Connection) -> None:
    """Single images take generation slots from the same pool as batch rows."""
    _create(conn, "single_slots")


def add_archive_retries(conn: Connection) -> None:
    """A ZIP that cannot be built says why and is tried again later, with a growing wait."""
    _add_column(conn, "jobs", "archive_error", "TEXT")
    _add_column(conn, "jobs", "archive_retry_at", "FLOAT")
    _add_column(conn, "jobs", "archive_attempts", "INTEGER NOT NULL DEFAULT 0")


def add_ledger(conn: Connection) -> None:
    """Every prediction paid for, so spending can be shown and budgets kept."""
    _create(conn, "ledger")


def add_inventory_columns(conn: Connection) -> None:
    """What a batch keeps of its file beyond the car: the header as uploaded, and each row's
    cells and the columns Car Studio did not use (`extra`), for the manifest and
    failed_rows.csv."""
    _add_column(conn, "jobs", "columns", "JSON")
    _add_column(conn, "rows", "cells", "JSON")
    _add_column(conn, "rows", "extra", "JSON")


def add_image_cache(conn: Connection) -> None:
    """Images kept by what was asked for, so an identical request costs nothing."""
    _create(conn, "image_cache")
    _add_column(conn, "rows", "cached", "BOOLEAN NOT NULL DEFAULT FALSE")
    _add_column(conn, "jobs", "fresh", "BOOLEAN NOT NULL DEFAULT FALSE")
    _add_column(conn, "ledger", "cached", "BOOLEAN NOT NULL DEFAULT FALSE")


def add_jobs_version(conn: Connection) -> None:
    """A job's change counter: progress answers are rebuilt only when it moves."""
    _add_column(conn, "jobs", "version", "INTEGER NOT NULL DEFAULT 0")


def add_image_checks(conn: Connection) -> None:
    """Each image's checks, its re-roll and the image not kept; each batch's output preset."""
    _add_column(conn, "rows", "checks", "JSON")
    _add_column(conn, "rows", "rerolls", "INTEGER NOT NULL DEFAULT 0")
    _add_column(conn, "rows", "alternate", "JSON")
    _add_column(conn, "jobs", "output", "VARCHAR(20) NOT NULL DEFAULT 'original'")


def add_cache_checks(conn: Connection) -> None:
    """A cached image keeps its checks, so using it again needs no new look at its pixels."""
    _add_column(conn, "image_cache", "checks", "JSON")


MIGRATIONS: tuple[Migration, ...] = (
    Migration("create_tables", create_tables),
    Migration("add_jobs_archive_started_at", add_jobs_archive_started_at),
    Migration("drop_unread_columns", drop_unread_columns),
    Migration("add_model_switch_columns", add_model_switch_columns),
    Migration("add_accounts_and_owners", add_accounts_and_owners),
    Migration("add_rows_queued_at", add_rows_queued_at),
    Migration("add_single_slots", add_single_slots),
    Migration("add_archive_retries", add_archive_retries),
    Migration("add_ledger", add_ledger),
    Migration("add_image_cache", add_image_cache),
    Migration("add_inventory_columns", add_inventory_columns),
    Migration("add_jobs_version", add_jobs_version),
    Migration("add_image_checks", add_image_checks),
    Migration("add_cache_checks", add_cache_checks),
)


def migrate(engine: Engine) -> list[str]:
    """Apply every step this database has not had yet, in order; return their names."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # Processes of one deployment start together; one of them changes the schema.
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({_MIGRATION_LOCK})")
            conn.commit()
        try:
            return _apply_missing(conn)
        finally:
            if conn.dialect.name == "postgresql":
                conn.rollback()
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_MIGRATION_LOCK})")
                conn.commit()


def _apply_missing(conn: Connection) -> list[str]:
    with conn.begin():
        conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {_TABLE} (name VARCHAR(100) PRIMARY KEY)")
        done = {row[0] for row in conn.exec_driver_sql(f"SELECT name FROM {_TABLE}")}
        if not done and inspect(conn).has_table(_LEGACY_TABLE):
            done = _adopt_numbered_steps(conn)
        elif not done and not inspect(conn).has_table("jobs"):
            # A new database: today's models are the whole schema, so every step is had at once.
            create_tables(conn)
            for step in MIGRATIONS:
                _record(conn, step.name)
            log.info("schema created: %d steps recorded", len(MIGRATIONS))
            return [step.name for step in MIGRATIONS]
    applied = []
    for step in MIGRATIONS:
        if step.name in done:
            continue
        # One transaction per step: the step and its record land together or not at all.
        with conn.begin():
            step.apply(conn)
            _record(conn, step.name)
        log.info("schema change applied: %s", step.name)
        applied.append(step.name)
    return applied


def _record(conn: Connection, name: str) -> None:
    conn.execute(
        text(f"INSERT INTO {_TABLE} (name) VALUES (:name) ON CONFLICT DO NOTHING"), {"name": name}
    )


def _adopt_numbered_steps(conn: Connection) -> set[str]:
    """Carry over a database that recorded its steps by number, then retire that table."""
    highest = conn.exec_driver_sql(f"SELECT MAX(version) FROM {_LEGACY_TABLE}").scalar() or 0
    names = [step.name for step in MIGRATIONS[:highest]]
    for name in names:
        _record(conn, name)
    conn.exec_driver_sql(f"DROP TABLE {_LEGACY_TABLE}")
    return set(names)
