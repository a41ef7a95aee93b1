"""`GET /api/batch/{id}` under load: 50 clients polling flat out while 20 batches run.

The server (`carstudio serve`, its own worker, the preview provider) runs in its own process;
this process keeps 50 keep-alive connections busy, each asking for one of the 20 batches again
as soon as its last answer arrived. As the page does, each poll sends the ETag of the last
answer it got, so a poll that finds nothing new is a 304 without a body. Side by side, the
same load without ETags (every answer a whole 200) shows what they save.

The load comes from a minimal HTTP/1.1 client on asyncio streams, so the client's own cost
stays small beside the server's. Each load is measured over three windows one after the other;
its figures are those of the window with the median p99, so one noisy spell of the machine
does not decide them, and every window's p99 is kept in the details.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.common import (
    PYTHON,
    cars_csv,
    clean_env,
    cpu_seconds,
    free_port,
    median,
    percentile,
    spawn,
    stop,
    wait_http_ok,
)

BATCHES = 20
ROWS = 50
CLIENTS = 50
WARMUP_SECONDS = 1.0
MEASURE_SECONDS = 4.0
WINDOWS = 3


class Poller:
    """One keep-alive connection polling one batch, sending the last ETag when asked to."""

    def __init__(self, host: str, port: int, path: str, *, etags: bool) -> None:
        self.host, self.port, self.path, self.etags = host, port, path, etags
        self.etag = ""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def poll(self) -> int:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        condition = f"If-None-Match: {self.etag}\r\n" if self.etags and self.etag else ""
        self._writer.write(
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{condition}\r\n".encode()
        )
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:] if ":" in line)
        }
        if status != 304:
            await self._reader.readexactly(int(headers.get("content-length", "0")))
        self.etag = headers.get("etag", self.etag)
        return status

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


async def _load(pollers: list[Poller], seconds: float) -> tuple[list[float], dict[int, int]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    end = time.perf_counter() + seconds

    async def loop(poller: Poller) -> None:
        while time.perf_counter() < end:
            sent = time.perf_counter()
            status = await poller.poll()
            latencies.append(time.perf_counter() - sent)
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(loop(poller) for poller in pollers))
    return latencies, statuses


async def _window(pollers: list[Poller], server_pid: int) -> dict[str, Any]:
    """One measuring window of the load: latencies, throughput and the server's CPU."""
    cpu_before = cpu_seconds(server_pid)
    started = time.perf_counter()
    latencies, statuses = await _load(pollers, MEASURE_SECONDS)
    elapsed = time.perf_counter() - started
    server_cpu = cpu_seconds(server_pid) - cpu_before
    if set(statuses) - {200, 304}:
        raise RuntimeError(f"unexpected answers: {statuses}")
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": median(latencies) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "share_304": statuses.get(304, 0) / len(latencies),
        "server_cpu_share": server_cpu / elapsed,
    }


async def _measure(base_url: str, jobs: list[str], server_pid: int) -> dict[str, Any]:
    split = urlsplit(base_url)
    assert split.hostname is not None and split.port is not None
    figures: dict[str, Any] = {}
    for name, etags in (("etag", True), ("no_etag", False)):
        pollers = [
            Poller(split.hostname, split.port, f"/api/batch/{jobs[n % len(jobs)]}", etags=etags)
            for n in range(CLIENTS)
        ]
        try:
            await _load(pollers, WARMUP_SECONDS)
            windows = [await _window(pollers, server_pid) for _ in range(WINDOWS)]
        finally:
            for poller in pollers:
                poller.close()
        windows.sort(key=lambda window: window["p99_ms"])
        figures[name] = windows[len(windows) // 2] | {
            "p99_ms_windows": [window["p99_ms"] for window in windows]
        }
    return figures


def run(work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = clean_env(
        CARSTUDIO_DATA_DIR=str(work / "data"),
        CARSTUDIO_PROVIDER="preview",
        CARSTUDIO_CONCURRENCY="3",
        CARSTUDIO_PORT=str(port),
    )
    log = work / "server.log"
    server = spawn([PYTHON, "-m", "carstudio", "serve"], env=env, cwd=work, log=log)
    try:
        wait_http_ok(f"{base_url}/healthz", server, log)
        with httpx.Client(base_url=base_url, timeout=60) as http:
            jobs = []
            for n in range(BATCHES):
                answer = http.post(
                    "/api/car-batch",
                    files={"file": (f"cars-{n}.csv", cars_csv(ROWS, f"Batch{n}"))},
                )
                answer.raise_for_status()
                jobs.append(answer.json()["jobId"])
            measured = asyncio.run(_measure(base_url, jobs, server.pid))
            after = [http.get(f"/api/batch/{job}").json() for job in jobs]
            for job in jobs:
                http.post(f"/api/batch/{job}/cancel")
    finally:
        stop(server)
    running = sum(status["state"] == "running" for status in after)
    with_etags, without = measured["etag"], measured["no_etag"]
    return {
        "status_load_p99_ms": with_etags["p99_ms"],
        "status_load_p50_ms": with_etags["p50_ms"],
        "status_load_rps": with_etags["rps"],
        "status_load_share_304": with_etags["share_304"],
        "status_load_p99_ms_no_etag": without["p99_ms"],
        "details": {
            "batches": BATCHES,
            "rows": ROWS,
            "clients": CLIENTS,
            "measure_seconds": MEASURE_SECONDS,
            "windows": WINDOWS,
            "with_etags": with_etags,
            "without_etags": without,
            "batches_running_at_the_end": running,
            "rows_done_at_the_end": sum(status["done"] for status in after),
        },
    }
