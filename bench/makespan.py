"""A 50-row batch through the real `carstudio batch` command: how close to ceil(50/3) rounds of
the provider's latency does it finish?

The job's own record (jobs and rows tables in the data directory) gives the makespan; the
command's wall time (interpreter start, imports, ZIP copy) is reported beside it.
"""

from __future__ import annotations

import math
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.batch_helpers import numbered_cars, read_zip

from bench.common import MB, PYTHON, FakeProcess, carstudio_env, median, percentile, spawn
from carstudio.jobs.store import Store, database_url

ROWS = 50
CONCURRENCY = 3
LATENCY = 1.0
IMAGE_BYTES = 2 * MB


def run(work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    csv_path = work / "cars.csv"
    csv_path.write_bytes(numbered_cars(ROWS))
    out = work / "out.zip"
    data_dir = work / "data"
    with FakeProcess(work, latency=LATENCY, image_bytes=IMAGE_BYTES) as fake:
        fake.warm()
        env = carstudio_env(data_dir, fake.base_url, CARSTUDIO_CONCURRENCY=str(CONCURRENCY))
        started = time.perf_counter()
        proc = spawn(
            [PYTHON, "-m", "carstudio", "batch", str(csv_path), "-o", str(out)],
            env=env,
            cwd=work,
            log=work / "batch.log",
        )
        try:
            code = proc.wait(timeout=180)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError("`carstudio batch` did not finish within 180 s") from exc
        wall = time.perf_counter() - started
        state = fake.state()
    if code != 0:
        raise RuntimeError(f"`carstudio batch` exited {code}:\n{(work / 'batch.log').read_text()}")

    images, manifest, failed = read_zip(out)
    store = Store(database_url(None, data_dir))
    try:
        job = store.job(manifest["job"])
        rows = store.rows(manifest["job"])
    finally:
        store.close()
    assert job is not None and job.finished_at is not None
    makespan = job.finished_at - job.created_at
    first_start = min(row.started_at for row in rows if row.started_at)
    last_finish = max(row.finished_at for row in rows if row.finished_at)
    ideal = math.ceil(ROWS / CONCURRENCY) * LATENCY
    # What each row cost beyond the provider's latency, as the engine itself recorded it.
    row_extra_ms = [(row["seconds"] - LATENCY) * 1000 for row in manifest["rows"] if row["seconds"]]
    return {
        "makespan_ratio": makespan / ideal,
        "makespan_s": makespan,
        "command_wall_s": wall,
        "peak_in_flight": state["peak_in_flight"],
        "creations": len(state["creations"]),
        "details": {
            "rows": ROWS,
            "concurrency": CONCURRENCY,
            "latency_s": LATENCY,
            "image_bytes": IMAGE_BYTES,
            "ideal_s": ideal,
            "images_in_zip": len(images),
            "failed_rows": len(failed or []),
            "queue_to_first_row_s": first_start - job.created_at,
            "rows_span_s": last_finish - first_start,
            "last_row_to_zip_ready_s": job.finished_at - last_finish,
            "command_wall_minus_makespan_s": wall - makespan,
            "batch_row_overhead_ms_median": median(row_extra_ms),
            "batch_row_overhead_ms_p95": percentile(row_extra_ms, 0.95),
            "fake_requests": state["requests"],
        },
    }
