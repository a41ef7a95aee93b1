"""50-row batches through the real `carstudio batch` command: how close to ceil(50/3) rounds of
the provider's latency does each finish?

Side by side in one run: 1 s latency (the headline), 0.5 s and 2 s, and 0.5 s with a 300 ms
download per image, whose floor is the rounds of latency plus one download (the last): a
slot is given back when Replicate has finished, so downloads overlap the next images.

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

from bench.common import (
    MB,
    PYTHON,
    FakeProcess,
    carstudio_env,
    handover_ms,
    median,
    percentile,
    spawn,
)
from carstudio.jobs.store import Store, database_url

ROWS = 50
CONCURRENCY = 3
LATENCY = 1.0
IMAGE_BYTES = 2 * MB
DOWNLOAD = 0.3
RUNS = {
    # figure suffix: (latency, download delay)
    "": (LATENCY, 0.0),
    "_0_5s": (0.5, 0.0),
    "_2s": (2.0, 0.0),
    "_download": (0.5, DOWNLOAD),
}


def _one(work: Path, latency: float, download: float) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    csv_path = work / "cars.csv"
    csv_path.write_bytes(numbered_cars(ROWS))
    out = work / "out.zip"
    data_dir = work / "data"
    fake_process = FakeProcess(
        work, latency=latency, image_bytes=IMAGE_BYTES, download_delay=download
    )
    with fake_process as fake:
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
            code = proc.wait(timeout=300)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError("`carstudio batch` did not finish within 300 s") from exc
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
    ideal = math.ceil(ROWS / CONCURRENCY) * latency + download
    # What each row cost beyond the provider's latency, as the engine itself recorded it.
    row_extra_ms = [(row["seconds"] - latency) * 1000 for row in manifest["rows"] if row["seconds"]]
    return {
        "ratio": makespan / ideal,
        "makespan_s": makespan,
        "wall_s": wall,
        "peak_in_flight": state["peak_in_flight"],
        "creations": len(state["creations"]),
        "details": {
            "latency_s": latency,
            "download_delay_s": download,
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
            "handover_ms_median": median(handover := handover_ms(state["timeline"], CONCURRENCY)),
            "handover_ms_p95": percentile(handover, 0.95),
        },
    }


def run(work: Path, runs: dict[str, tuple[float, float]] | None = None) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    details: dict[str, Any] = {
        "rows": ROWS,
        "concurrency": CONCURRENCY,
        "image_bytes": IMAGE_BYTES,
    }
    for suffix, (latency, download) in (runs or RUNS).items():
        one = _one(work / f"run{suffix or '_1s'}", latency, download)
        figures[f"makespan_ratio{suffix}"] = one["ratio"]
        figures[f"makespan_s{suffix}"] = one["makespan_s"]
        if not suffix:
            figures["command_wall_s"] = one["wall_s"]
        figures["peak_in_flight"] = max(figures.get("peak_in_flight", 0), one["peak_in_flight"])
        made = figures.get("creations", ROWS)
        figures["creations"] = max(made, one["creations"], key=lambda n: abs(n - ROWS))
        details[f"run{suffix or '_1s'}"] = one["details"]
    return figures | {"details": details}
