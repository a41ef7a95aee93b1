"""The store's schema changes and its slot rule, on SQLite."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from sqlalchemy import inspect

from carstudio.jobs.leases import LeaseKeeper
from carstudio.jobs.migrations import MIGRATIONS
from carstudio.jobs.models import Job, Row
from carstudio.jobs.states import RowState
from carstudio.jobs.store import Store
from tests.waiting import wait_until


def _schema(store: Store) -> tuple[list[str], dict[str, set[str]]]:
    """The names of the steps the database has had, and its tables' columns."""
    with store.engine.connect() as conn:
        names = [r[0] for r in conn.exec_driver_sql("SELECT name FROM carstudio_migrations")]
    columns = {
        table: {c["name"] for c in inspect(store.engine).get_columns(table)}
        for table in ("jobs", "rows")
    }
    return names, columns


def test_a_new_database_gets_every_step_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    Store(url).close()
    store = Store(url)
    try:
        names, columns = _schema(store)
        assert sorted(names) == sorted(step.name for step in MIGRATIONS)
        assert "archive_started_at" in columns["jobs"]
        assert not {"total", "encoding", "delimiter"} & columns["jobs"]
        assert "attempts" not in columns["rows"]
    finally:
        store.close()


def test_a_database_with_numbered_steps_is_carried_over_and_brought_up_to_date(
    tmp_path: Path,
) -> None:
    """A database made before steps had names: version 1 only, with the columns of that time."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE carstudio_schema (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO carstudio_schema VALUES (1)")
        conn.execute(
            "CREATE TABLE jobs (id VARCHAR(32) PRIMARY KEY, created_at FLOAT, finished_at FLOAT,"
            " state VARCHAR(16), canceled BOOLEAN, source_name VARCHAR(255),"
            " provider VARCHAR(32), model VARCHAR(64), total INTEGER NOT NULL,"
            " encoding VARCHAR(32), delimiter VARCHAR(4), fatal_error TEXT, zip_name VARCHAR(64))"
        )
        conn.execute(
            "CREATE TABLE rows (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id VARCHAR(32)"
            ' REFERENCES jobs (id) ON DELETE CASCADE, row INTEGER, "values" JSON, spec JSON,'
            " prompt TEXT, stem VARCHAR(160), state VARCHAR(16), prediction_id VARCHAR(64),"
            " create_sent_at FLOAT, started_at FLOAT, finished_at FLOAT, seconds FLOAT,"
            " image_name VARCHAR(200), error TEXT, failure VARCHAR(32),"
            " attempts INTEGER NOT NULL, lease_owner VARCHAR(64), lease_expires FLOAT,"
            " in_flight BOOLEAN, worker VARCHAR(64), UNIQUE (job_id, row))"
        )
        conn.execute(
            "INSERT INTO jobs VALUES ('" + "b" * 32 + "', 1.0, NULL, 'ready', 0, 'old.csv',"
            " 'preview', 'preview', 1, 'utf-8', ',', NULL, NULL)"
        )
    store = Store(f"sqlite:///{path}")
    try:
        names, columns = _schema(store)
        assert names == [step.name for step in MIGRATIONS]
        assert "archive_started_at" in columns["jobs"] and "total" not in columns["jobs"]
        assert "attempts" not in columns["rows"]
        with store.engine.connect() as conn:
            assert not conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE name = 'carstudio_schema'"
            ).all()
        old = store.job("b" * 32)
        assert old is not None and old.source_name == "old.csv"
        _job_with_rows(store, 1)  # a new job can be written: no leftover NOT NULL column
    finally:
        store.close()


def _job_with_rows(store: Store, count: int) -> list[int]:
    job = Job(id="a" * 32, created_at=time.time(), provider="preview", model="preview")
    rows = [Row(job_id=job.id, row=n + 2, values={}, spec={"make": "Kia"}) for n in range(count)]
    store.add_job(job, rows)
    return [row.id for row in store.rows(job.id)]


def test_no_more_rows_than_the_limit_hold_a_slot(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        ids = _job_with_rows(store, 4)
        for row_id in ids:
            assert store.claim(row_id, "w", 60)
        taken = [store.take_slot(row_id, "w", 3, creating=True) for row_id in ids]
        assert taken == [True, True, True, False]
        store.advance(ids[0], "w", state=RowState.DONE.value)
        assert store.take_slot(ids[3], "w", 3, creating=True)
    finally:
        store.close()


def test_a_dead_workers_unfinished_row_keeps_its_slot_until_resumed(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        ids = _job_with_rows(store, 2)
        assert store.claim(ids[0], "dead", 60)
        assert store.take_slot(ids[0], "dead", 1, creating=True)
        store.expire_leases(lambda owner: owner == "dead")
        assert store.claim(ids[1], "alive", 60)
        assert not store.take_slot(ids[1], "alive", 1), "the dead row's image may still be running"
        assert store.claim(ids[0], "alive", 60), "its lease has ended, so it can be resumed"
        assert store.take_slot(ids[0], "alive", 1), "resuming takes the slot over"
    finally:
        store.close()


def test_held_leases_are_renewed_and_the_keeper_stops_when_nothing_is_held(
    tmp_path: Path,
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    keeper = LeaseKeeper(store, "alive", ttl=0.06)  # renewed every 20 ms
    try:
        (row_id,) = _job_with_rows(store, 1)
        assert store.claim(row_id, "alive", 0.06)
        with keeper.hold(row_id):
            first = _lease_expires(store, row_id)
            wait_until(lambda: _lease_expires(store, row_id) > first, interval=0.01)
        # A stopped worker holds nothing: its keeper's thread ends instead of living on.
        wait_until(lambda: keeper._thread is None, interval=0.01)
    finally:
        store.close()


def _lease_expires(store: Store, row_id: int) -> float:
    row = store.row(row_id)
    assert row is not None and row.lease_expires is not None
    return row.lease_expires
