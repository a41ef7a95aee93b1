"""Peak memory of `carstudio serve` through a 50-row batch of large images, at two image sizes.

The server runs as a child process; the fake Replicate (short latency, so downloads dominate) in
another. This process plays the Car Creation page: it submits the CSV, polls the status, fetches
each finished row's thumbnail once (six at a time, as a browser does), then downloads the ZIP.
The same runs without thumbnails show the batch engine alone. The figure is VmHWM, the resident
set's high-water mark, read from /proc at the end.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from tests.batch_helpers import numbered_cars

from bench.common import (
    MB,
    PYTHON,
    FakeProcess,
    carstudio_env,
    free_port,
    proc_status_kb,
    spawn,
    stop,
    wait_http_ok,
)

ROWS = 50
LATENCY = 0.05
SIZES = {"1mb": 1 * MB, "5mb": 5 * MB}
POLL_SECONDS = 0.5
# A browser fetches up to six images from one host at once.
BROWSER_CONNECTIONS = 6
TIMEOUT = 120.0


def _mib(kb: int) -> float:
    return kb / 1024


def one_size(
    work: Path,
    image_bytes: int,
    *,
    thumbnails: bool = True,
    server_module: str = "carstudio",
) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with FakeProcess(work, latency=LATENCY, image_bytes=image_bytes) as fake:
        fake.warm()
        env = carstudio_env(work / "data", fake.base_url, CARSTUDIO_PORT=str(port))
        log = work / "server.log"
        server = spawn([PYTHON, "-m", server_module, "serve"], env=env, cwd=work, log=log)
        try:
            wait_http_ok(f"{base_url}/healthz", server, log)
            baseline = proc_status_kb(server.pid, "VmHWM")
            rss_samples: list[int] = []
            thumbs = 0
            zip_bytes = 0
            limits = httpx.Limits(max_connections=BROWSER_CONNECTIONS + 1)
            with (
                httpx.Client(base_url=base_url, timeout=60, limits=limits) as http,
                ThreadPoolExecutor(BROWSER_CONNECTIONS) as browser,
            ):
                response = http.post(
                    "/api/car-batch", files={"file": ("cars.csv", numbered_cars(ROWS))}
                )
                response.raise_for_status()
                job_id = response.json()["jobId"]
                seen: set[int] = set()
                deadline = time.monotonic() + TIMEOUT
                while True:
                    status = http.get(f"/api/batch/{job_id}").json()
                    rss_samples.append(proc_status_kb(server.pid, "VmRSS"))
                    if thumbnails:
                        new = [r for r in status["rows"] if r["thumbUrl"] and r["row"] not in seen]
                        seen.update(r["row"] for r in new)
                        for answer in browser.map(lambda r: http.get(r["thumbUrl"]), new):
                            answer.raise_for_status()
                            thumbs += 1
                    if status["zipUrl"]:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"the batch did not finish within {TIMEOUT} s")
                    time.sleep(POLL_SECONDS)
                with http.stream("GET", status["zipUrl"]) as download:
                    download.raise_for_status()
                    for chunk in download.iter_bytes():
                        zip_bytes += len(chunk)
            peak = proc_status_kb(server.pid, "VmHWM")
            creations = len(fake.state()["creations"])
        finally:
            stop(server)
    return {
        "peak_mb": _mib(peak),
        "startup_peak_mb": _mib(baseline),
        "batch_rss_max_sampled_mb": _mib(max(rss_samples)),
        "done": status["done"],
        "failed": status["failed"],
        "creations": creations,
        "thumbnails_fetched": thumbs,
        "zip_bytes": zip_bytes,
    }


def run(work: Path) -> dict[str, Any]:
    """The page's way (thumbnails) for the figures; without thumbnails for the engine alone."""
    page = {name: one_size(work / f"page-{name}", size) for name, size in SIZES.items()}
    engine = {
        name: one_size(work / f"engine-{name}", size, thumbnails=False)
        for name, size in SIZES.items()
    }
    small, large = page["1mb"], page["5mb"]
    return {
        "peak_rss_mb": max(small["peak_mb"], large["peak_mb"]),
        "peak_rss_mb_1mb": small["peak_mb"],
        "peak_rss_mb_5mb": large["peak_mb"],
        "details": {
            "unit": "MiB (VmHWM kB / 1024)",
            "latency_s": LATENCY,
            "browser_connections": BROWSER_CONNECTIONS,
            "growth_1mb_to_5mb_mb": large["peak_mb"] - small["peak_mb"],
            "engine_only_peak_mb_1mb": engine["1mb"]["peak_mb"],
            "engine_only_peak_mb_5mb": engine["5mb"]["peak_mb"],
            "engine_only_growth_mb": engine["5mb"]["peak_mb"] - engine["1mb"]["peak_mb"],
            "with_thumbnails": page,
            "engine_only": engine,
        },
    }
