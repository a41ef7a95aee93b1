"""The store's schema changes and its slot rule, on SQLite."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from sqlalchemy import inspect

from carstudio.jobs.states import RowState
from carstudio.jobs.store import MIGRATIONS, Job, Row, Store


def test_a_database_from_the_first_schema_is_brought_up_to_date(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE carstudio_schema (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO carstudio_schema VALUES (1)")
        conn.execute("CREATE TABLE jobs (id VARCHAR(32) PRIMARY KEY, created_at FLOAT)")
    store = Store(f"sqlite:///{path}")
    try:
        columns = {c["name"] for c in inspect(store.engine).get_columns("jobs")}
        assert "archive_started_at" in columns
        with store.engine.connect() as conn:
            version = conn.exec_driver_sql("SELECT MAX(version) FROM carstudio_schema").scalar()
        assert version == len(MIGRATIONS)
    finally:
        store.close()


def test_migrations_run_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    Store(url).close()
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT version FROM carstudio_schema").all()
        assert [r[0] for r in rows] == list(range(1, len(MIGRATIONS) + 1))
    finally:
        store.close()


def _job_with_rows(store: Store, count: int) -> list[int]:
    job = Job(id="a" * 32, created_at=time.time(), provider="preview", model="preview", total=count)
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
