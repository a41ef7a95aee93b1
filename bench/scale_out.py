"""A 50-row batch on two workers next to one, sharing Redis and PostgreSQL.

The in-flight limit is server-wide, so a second worker should not make a batch faster or
break the limit: it adds resilience, not throughput. Needs the local Redis and PostgreSQL.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from tests.batch_helpers import numbered_cars

from bench.common import PYTHON, FakeProcess, carstudio_env, free_port, spawn, stop, wait_http_ok

ROWS = 50
LATENCY = 1.0
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/14"


def _one(work: Path, workers: int) -> dict[str, Any]:
    import psycopg
    import redis

    work.mkdir(parents=True, exist_ok=True)
    name = f"carstudio_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(POSTGRES_ADMIN, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    queue = redis.Redis.from_url(REDIS_URL)
    queue.flushdb()
    port = free_port()
    procs = []
    try:
        with FakeProcess(work, latency=LATENCY, image_bytes=0) as fake:
            env = carstudio_env(
                work / "data",
                fake.base_url,
                CARSTUDIO_PORT=str(port),
                CARSTUDIO_DATABASE_URL=f"postgresql://postgres@127.0.0.1:5432/{name}",
                CARSTUDIO_QUEUE_URL=REDIS_URL,
            )
            log = work / "processes.log"
            web = spawn(
                [PYTHON, "-m", "carstudio", "serve", "--no-worker"], env=env, cwd=work, log=log
            )
            procs.append(web)
            for _ in range(workers):
                worker = [PYTHON, "-m", "carstudio", "worker", "--no-periodic"]
                procs.append(spawn(worker, env=env, cwd=work, log=log))
            base = f"http://127.0.0.1:{port}"
            wait_http_ok(f"{base}/healthz", web, log)
            time.sleep(1.0)  # let the workers connect before the clock starts
            answer = httpx.post(
                f"{base}/api/car-batch", files={"file": ("cars.csv", numbered_cars(ROWS))}
            )
            job_id = answer.json()["jobId"]
            while not (status := httpx.get(f"{base}/api/batch/{job_id}").json())["zipUrl"]:
                time.sleep(0.1)
            state = fake.state()
    finally:
        for proc in procs:
            stop(proc)
        queue.flushdb()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    return {
        "seconds": round(status["finishedAt"] - status["createdAt"], 2),
        "done": status["done"],
        "peak_in_flight": state["peak_in_flight"],
    }


def run(work: Path) -> dict[str, Any]:
    one = _one(work / "one", 1)
    two = _one(work / "two", 2)
    return {
        "scale_one_worker_s": one["seconds"],
        "scale_two_workers_s": two["seconds"],
        "scale_peak_in_flight": max(one["peak_in_flight"], two["peak_in_flight"]),
        "details": {"one_worker": one, "two_workers": two},
    }
