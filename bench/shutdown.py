"""How long Ctrl-C takes to stop `carstudio serve`: idle, mid-batch with three rows held inside
Replicate calls, and while a single image is being made, the busy cases beside the idle one.

The server and the fake Replicate (fresh ones for every run, the fake's latency far longer than
the run) each run in their own process. This process starts the work, waits until the fake
counts the creates it expects in flight, sends SIGINT and times how long the server takes to
exit.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
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
    median,
    spawn,
    stop,
    wait_http_ok,
)

LATENCY = 120.0  # every image is still being made when Ctrl-C comes
REPEATS = 3
EXIT_TIMEOUT = 30.0
CASES = {"idle": 0, "mid_batch": 3, "single_image": 1}
"""Each case and the creates it has in flight at Replicate when Ctrl-C comes."""


def _wait_in_flight(fake: FakeProcess, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while fake.state()["in_flight"] < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} creates were not in flight within {timeout} s")
        time.sleep(0.05)


def _start_work(case: str, base_url: str) -> None:
    if case == "mid_batch":
        response = httpx.post(
            f"{base_url}/api/car-batch", files={"file": ("cars.csv", numbered_cars(5))}, timeout=10
        )
        response.raise_for_status()
    elif case == "single_image":

        def request() -> None:
            # The answer never comes: the server is stopped while the image is being made.
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(f"{base_url}/api/car-image", json={"make": "Kia"}, timeout=EXIT_TIMEOUT)

        threading.Thread(target=request, daemon=True).start()


def one_stop(work: Path, case: str) -> float:
    """Seconds from SIGINT to the server's exit, with `case`'s work in progress."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with FakeProcess(work, latency=LATENCY, image_bytes=MB) as fake:
        env = carstudio_env(
            work / "data", fake.base_url, CARSTUDIO_PORT=str(port), CARSTUDIO_WAIT_SECONDS="60"
        )
        log = work / "server.log"
        server = spawn([PYTHON, "-m", "carstudio", "serve"], env=env, cwd=work, log=log)
        try:
            wait_http_ok(f"{base_url}/healthz", server, log)
            _start_work(case, base_url)
            _wait_in_flight(fake, CASES[case])
            started = time.perf_counter()
            server.send_signal(signal.SIGINT)
            try:
                server.wait(EXIT_TIMEOUT)
            except subprocess.TimeoutExpired as exc:
                raise RuntimeError(
                    f"`carstudio serve` ({case}) still ran {EXIT_TIMEOUT:g} s after Ctrl-C"
                ) from exc
            return time.perf_counter() - started
        finally:
            stop(server)


def run(work: Path) -> dict[str, Any]:
    # Alternate the cases, so the machine's other work affects them alike.
    times: dict[str, list[float]] = {case: [] for case in CASES}
    for n in range(REPEATS):
        for case in CASES:
            times[case].append(one_stop(work / f"{case}-{n}", case))
    idle = median(times["idle"])
    return {
        "shutdown_idle_s": idle,
        "shutdown_mid_batch_s": median(times["mid_batch"]),
        "shutdown_single_image_s": median(times["single_image"]),
        "details": {
            "repeats": REPEATS,
            "runs_s": times,
            "mid_batch_vs_idle": median(times["mid_batch"]) / idle,
            "single_image_vs_idle": median(times["single_image"]) / idle,
        },
    }
