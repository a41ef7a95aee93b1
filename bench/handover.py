"""Slots handed over and shared, measured from outside with the fake Replicate in its own
process: how long after one prediction's output is ready does the next create arrive, and how
soon does a batch submitted behind a running 50-row batch get its first image?

Hand-over: one slot (CARSTUDIO_CONCURRENCY=1), rows waiting, and a 200 ms download per image
so the worker that just finished is busy fetching its image while another takes the slot: a
second thread of the same process, or, scaled out, a worker process that hears of the freed
slot through PostgreSQL's LISTEN/NOTIFY or Redis pub/sub (each measured with the other off).
The fake's own clock times it: from the output being ready to the next create.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    PYTHON,
    FakeProcess,
    cars_csv,
    carstudio_env,
    free_port,
    handover_ms,
    median,
    percentile,
    spawn,
    stop,
    wait_http_ok,
)
from carstudio.jobs.store import Store, database_url

HANDOVER_ROWS = 24
HANDOVER_LATENCY = 0.3
HANDOVER_DOWNLOAD = 0.2
BIG_ROWS = 50
SMALL_ROWS = 3
FAIR_LATENCY = 0.5
FAIR_CONCURRENCY = 3
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/13"


@contextmanager
def _postgres_and_redis() -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database and an empty Redis database, removed afterwards."""
    import psycopg
    import redis

    name = f"carstudio_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(POSTGRES_ADMIN, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    queue = redis.Redis.from_url(REDIS_URL)
    queue.flushdb()
    try:
        yield {
            "CARSTUDIO_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{name}",
            "CARSTUDIO_QUEUE_URL": REDIS_URL,
        }
    finally:
        queue.flushdb()
        queue.close()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _submit_and_wait(base: str, rows: int, tag: str, timeout: float = 120) -> dict[str, Any]:
    answer = httpx.post(f"{base}/api/car-batch", files={"file": ("cars.csv", cars_csv(rows, tag))})
    answer.raise_for_status()
    job_id = answer.json()["jobId"]
    deadline = time.monotonic() + timeout
    while not (status := httpx.get(f"{base}/api/batch/{job_id}").json())["zipUrl"]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the batch did not finish within {timeout} s: {status}")
        time.sleep(0.1)
    return dict(status)


def _handover(work: Path, *, workers: int, extra: dict[str, str]) -> list[float]:
    """Hand-over delays (ms) of one batch: in the web process's own worker (`workers` = 0),
    or in `workers` separate one-thread worker processes."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    fake_process = FakeProcess(
        work, latency=HANDOVER_LATENCY, image_bytes=0, download_delay=HANDOVER_DOWNLOAD
    )
    procs = []
    try:
        with fake_process as fake:
            env = carstudio_env(
                work / "data",
                fake.base_url,
                CARSTUDIO_PORT=str(port),
                CARSTUDIO_CONCURRENCY="1",
                **extra,
            )
            log = work / "processes.log"
            serve = [PYTHON, "-m", "carstudio", "serve"] + (["--no-worker"] if workers else [])
            procs.append(web := spawn(serve, env=env, cwd=work, log=log))
            for _ in range(workers):
                command = [PYTHON, "-m", "carstudio", "worker", "--threads", "1", "--no-periodic"]
                procs.append(spawn(command, env=env, cwd=work, log=log))
            wait_http_ok(f"{base}/healthz", web, log)
            time.sleep(1.0)  # let the workers connect and subscribe before the batch
            status = _submit_and_wait(base, HANDOVER_ROWS, work.name)
            if status["done"] != HANDOVER_ROWS:
                raise RuntimeError(f"not every row was made: {status}")
            timeline = fake.state()["timeline"]
    finally:
        for proc in procs:
            stop(proc)
    return handover_ms(timeline, 1)


def _first_image_behind(work: Path) -> dict[str, Any]:
    """Submit a 50-row batch, then, once it runs at full speed, a 3-row batch: when does the
    second batch's first row start, and when is its first image ready?"""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = work / "data"
    with FakeProcess(work, latency=FAIR_LATENCY, image_bytes=0) as fake:
        env = carstudio_env(
            data,
            fake.base_url,
            CARSTUDIO_PORT=str(port),
            CARSTUDIO_CONCURRENCY=str(FAIR_CONCURRENCY),
        )
        log = work / "server.log"
        web = spawn([PYTHON, "-m", "carstudio", "serve"], env=env, cwd=work, log=log)
        try:
            wait_http_ok(f"{base}/healthz", web, log)
            big = httpx.post(
                f"{base}/api/car-batch", files={"file": ("big.csv", cars_csv(BIG_ROWS, "Big"))}
            ).json()["jobId"]
            while httpx.get(f"{base}/api/batch/{big}").json()["done"] < 2 * FAIR_CONCURRENCY:
                time.sleep(0.05)
            small = httpx.post(
                f"{base}/api/car-batch",
                files={"file": ("small.csv", cars_csv(SMALL_ROWS, "Small"))},
            ).json()["jobId"]
            while not httpx.get(f"{base}/api/batch/{small}").json()["zipUrl"]:
                time.sleep(0.05)
            httpx.post(f"{base}/api/batch/{big}/cancel")
        finally:
            stop(web)
    store = Store(database_url(None, data))
    try:
        job = store.job(small)
        rows = store.rows(small)
        big_rows = store.rows(big)
    finally:
        store.close()
    assert job is not None
    first_start = min(row.started_at for row in rows if row.started_at)
    first_done = min(row.finished_at for row in rows if row.finished_at)
    big_started_before = sum(
        1 for row in big_rows if row.started_at and job.created_at <= row.started_at < first_start
    )
    big_unstarted = sum(
        1 for row in big_rows if row.started_at is None or row.started_at > first_start
    )
    return {
        "start_s": first_start - job.created_at,
        "first_image_s": first_done - job.created_at,
        "big_rows_started_in_between": big_started_before,
        "big_rows_still_waiting": big_unstarted,
    }


def run(work: Path) -> dict[str, Any]:
    in_process = _handover(work / "in_process", workers=0, extra={})
    with _postgres_and_redis() as shared:
        redis = _handover(
            work / "redis", workers=2, extra=shared | {"CARSTUDIO_SLOT_NOTICES": "redis"}
        )
    with _postgres_and_redis() as shared:
        postgres = _handover(
            work / "postgres", workers=2, extra=shared | {"CARSTUDIO_SLOT_NOTICES": "postgres"}
        )
    behind = _first_image_behind(work / "behind")
    return {
        "handover_ms_median": median(in_process),
        "handover_ms_p95": percentile(in_process, 0.95),
        "handover_redis_ms_median": median(redis),
        "handover_redis_ms_p95": percentile(redis, 0.95),
        "handover_postgres_ms_median": median(postgres),
        "handover_postgres_ms_p95": percentile(postgres, 0.95),
        "first_image_behind_start_s": behind["start_s"],
        "first_image_behind_s": behind["first_image_s"],
        "first_image_behind_rows_ahead": behind["big_rows_started_in_between"],
        "details": {
            "handover_rows": HANDOVER_ROWS,
            "handover_latency_s": HANDOVER_LATENCY,
            "handover_download_s": HANDOVER_DOWNLOAD,
            "handover_ms": {
                "in_process": [round(x, 1) for x in in_process],
                "redis": [round(x, 1) for x in redis],
                "postgres": [round(x, 1) for x in postgres],
            },
            "fair_latency_s": FAIR_LATENCY,
            "fair_concurrency": FAIR_CONCURRENCY,
            "behind": behind,
        },
    }
