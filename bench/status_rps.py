"""Requests per second of `GET /api/batch/{id}` while a 50-row batch runs, against a bare route
that returns the same JSON from the same app in the same server process.

The server (uvicorn, one worker, embedded batch worker) and the fake Replicate each run in their
own process; this process generates the load: a few keep-alive connections, each sending its
next request as soon as the previous answer arrives, in alternating rounds of the two routes so
that drift (the batch moving on, the machine's other work) affects both alike.

The load comes from a minimal HTTP/1.1 client on asyncio streams: httpx spends about a
millisecond of CPU per request, which on a small machine caps the bare route near its own rate
and squeezes the ratio towards 1. A shorter pass with httpx is reported beside it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from tests.batch_helpers import numbered_cars

from bench.common import (
    MB,
    PYTHON,
    FakeProcess,
    carstudio_env,
    cpu_seconds,
    free_port,
    median,
    percentile,
    spawn,
    stop,
    wait_http_ok,
)

ROWS = 50
LATENCY = 3.0  # long enough that the batch outlasts every round of load
IMAGE_BYTES = 2 * MB
CONNECTIONS = 4
ROUNDS = 4
HTTPX_ROUNDS = 2
ROUND_SECONDS = 2.5
WARMUP_SECONDS = 1.0

Getter = Callable[[str], Awaitable[int]]


class RawConnection:
    """One keep-alive HTTP/1.1 connection that sends GETs and reads Content-Length bodies."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
        lengths = [v for k, v in headers.items() if k.strip().lower() == "content-length"]
        if not lengths:
            raise RuntimeError(f"{path} answered without Content-Length")
        await self._reader.readexactly(int(lengths[0]))
        return status

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


async def _load(getters: list[Getter], path: str, seconds: float) -> list[float]:
    """Keep one request per getter in flight for `seconds`; the latency of each answer."""
    latencies: list[float] = []
    failures = 0
    end = time.perf_counter() + seconds

    async def loop(get: Getter) -> None:
        nonlocal failures
        while time.perf_counter() < end:
            sent = time.perf_counter()
            if await get(path) != 200:
                failures += 1
            latencies.append(time.perf_counter() - sent)

    await asyncio.gather(*(loop(get) for get in getters))
    if failures:
        raise RuntimeError(f"{failures} requests to {path} did not answer 200")
    return latencies


async def _rounds(
    getters: list[Getter], paths: dict[str, str], rounds: int, server_pid: int
) -> dict[str, Any]:
    totals = {name: {"seconds": 0.0, "server_cpu": 0.0, "client_cpu": 0.0} for name in paths}
    latencies: dict[str, list[float]] = {name: [] for name in paths}
    round_ratios: list[float] = []
    for path in paths.values():
        await _load(getters, path, WARMUP_SECONDS)
    for number in range(rounds):
        order = ["bare", "status"] if number % 2 == 0 else ["status", "bare"]
        rps: dict[str, float] = {}
        for name in order:
            server_before, client_before = cpu_seconds(server_pid), time.process_time()
            started = time.perf_counter()
            answered = await _load(getters, paths[name], ROUND_SECONDS)
            elapsed = time.perf_counter() - started
            totals[name]["seconds"] += elapsed
            totals[name]["server_cpu"] += cpu_seconds(server_pid) - server_before
            totals[name]["client_cpu"] += time.process_time() - client_before
            latencies[name] += answered
            rps[name] = len(answered) / elapsed
        round_ratios.append(rps["status"] / rps["bare"])
    figures: dict[str, Any] = {"round_ratios": [round(r, 3) for r in round_ratios]}
    for name in paths:
        seconds = totals[name]["seconds"]
        figures[f"{name}_rps"] = len(latencies[name]) / seconds
        figures[f"{name}_ms_median"] = median(latencies[name]) * 1000
        figures[f"{name}_p99_ms"] = percentile(latencies[name], 0.99) * 1000
        figures[f"server_cpu_share_{name}"] = totals[name]["server_cpu"] / seconds
        figures[f"client_cpu_share_{name}"] = totals[name]["client_cpu"] / seconds
    figures["ratio"] = figures["status_rps"] / figures["bare_rps"]
    return figures


async def _measure(base_url: str, job_id: str, server_pid: int) -> dict[str, Any]:
    paths = {"bare": f"/bench/bare/{job_id}", "status": f"/api/batch/{job_id}"}
    split = urlsplit(base_url)
    assert split.hostname is not None and split.port is not None
    connections = [RawConnection(split.hostname, split.port) for _ in range(CONNECTIONS)]
    try:
        raw = await _rounds([c.get for c in connections], paths, ROUNDS, server_pid)
    finally:
        for connection in connections:
            connection.close()
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

        async def get(path: str) -> int:
            return (await client.get(path)).status_code

        with_httpx = await _rounds([get] * CONNECTIONS, paths, HTTPX_ROUNDS, server_pid)
        body = (await client.get(paths["status"])).content
    return {"raw": raw, "httpx": with_httpx, "body_bytes": len(body)}


def run(work: Path, server_module: str = "bench.status_server") -> dict[str, Any]:
    """`server_module` serves the app; another module with the same routes can be compared."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with FakeProcess(work, latency=LATENCY, image_bytes=IMAGE_BYTES) as fake:
        fake.warm()
        env = carstudio_env(work / "data", fake.base_url, CARSTUDIO_PORT=str(port))
        log = work / "server.log"
        server = spawn([PYTHON, "-m", server_module], env=env, cwd=work, log=log)
        try:
            wait_http_ok(f"{base_url}/healthz", server, log)
            with httpx.Client(base_url=base_url, timeout=30) as http:
                response = http.post(
                    "/api/car-batch", files={"file": ("cars.csv", numbered_cars(ROWS))}
                )
                response.raise_for_status()
                job_id = response.json()["jobId"]
                # Start once the first round has finished, so the JSON has images in it.
                while http.get(f"/api/batch/{job_id}").json()["done"] < 3:
                    time.sleep(0.1)
                before = http.get(f"/api/batch/{job_id}").json()
                measured = asyncio.run(_measure(base_url, job_id, server.pid))
                after = http.get(f"/api/batch/{job_id}").json()
                # The figures are in; the rest of the batch is not needed.
                http.post(f"/api/batch/{job_id}/cancel")
        finally:
            stop(server)

    raw, with_httpx = measured["raw"], measured["httpx"]
    return {
        "status_rps_ratio": raw["ratio"],
        "status_p99_ms": raw["status_p99_ms"],
        "bare_rps": raw["bare_rps"],
        "status_rps": raw["status_rps"],
        "details": {
            "connections": CONNECTIONS,
            "rounds": ROUNDS,
            "round_seconds": ROUND_SECONDS,
            "status_json_bytes": measured["body_bytes"],
            "raw_client": raw,
            "httpx_client": with_httpx,
            "rows_done_before": before["done"],
            "rows_done_after": after["done"],
            "batch_running_throughout": after["state"] == "running" and after["done"] < ROWS,
        },
    }
