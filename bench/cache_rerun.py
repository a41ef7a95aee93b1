"""The same 50-row CSV run twice through `carstudio batch` with one data directory: the second
run is answered by the image cache. Side by side: its wall time against the first run's,
and the predictions each created."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from tests.batch_helpers import numbered_cars, read_zip

from bench.common import MB, PYTHON, FakeProcess, carstudio_env, spawn

ROWS = 50
LATENCY = 1.0
IMAGE_BYTES = 1 * MB


def _batch(work: Path, env: dict[str, str], csv_path: Path, name: str) -> tuple[float, Path]:
    out = work / f"{name}.zip"
    started = time.perf_counter()
    proc = spawn(
        [PYTHON, "-m", "carstudio", "batch", str(csv_path), "-o", str(out)],
        env=env,
        cwd=work,
        log=work / f"{name}.log",
    )
    try:
        code = proc.wait(timeout=180)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"`carstudio batch` ({name}) did not finish within 180 s") from exc
    if code != 0:
        raise RuntimeError(
            f"`carstudio batch` exited {code}:\n{(work / f'{name}.log').read_text()}"
        )
    return time.perf_counter() - started, out


def run(work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    csv_path = work / "cars.csv"
    csv_path.write_bytes(numbered_cars(ROWS))
    with FakeProcess(work, latency=LATENCY, image_bytes=IMAGE_BYTES) as fake:
        fake.warm()
        env = carstudio_env(work / "data", fake.base_url)
        first_s, _ = _batch(work, env, csv_path, "first")
        made_first = len(fake.state()["creations"])
        second_s, second_zip = _batch(work, env, csv_path, "second")
        made_second = len(fake.state()["creations"]) - made_first
    images, manifest, _ = read_zip(second_zip)
    return {
        "cache_speedup": first_s / second_s,
        "second_run_s": second_s,
        "first_run_s": first_s,
        "creations_second_run": made_second,
        "details": {
            "rows": ROWS,
            "latency_s": LATENCY,
            "creations_first_run": made_first,
            "images_in_second_zip": len(images),
            "cached_in_second_manifest": manifest["cached"],
        },
    }
