"""`GET /healthz` for a normal client while 1,000 slow clients hold connections to
`carstudio serve`, against the same server with nobody else on it.

Two kinds of slow client, 1,000 of each kind at a time:

- slow uploads: the request head and the first bytes of a multipart CSV body, then nothing.
  Each holds a request task waiting for its body until CARSTUDIO_BODY_TIMEOUT.
- slow heads: a request line and half a header, then nothing. Each holds a connection until
  CARSTUDIO_HEAD_TIMEOUT.

The normal client sends one keep-alive request after another on its own connection; rounds
without and with the slow clients alternate, so the machine's other work affects both alike.
The first second after the slow clients connect, while the server takes in their 1,000
requests, is reported apart (`..._opening`) from the time they are only held.
The server here allows more connections than the slow clients take and body and head timeouts
longer than a round, so the figures are the latency of real answers while everything is held.

Then, on a server with 2 s body and head timeouts, 1,000 slow uploads and then 1,000 slow heads
are left to time out: each must be answered 408 and closed. And the server's peak memory is
read before and after a 200 MB JSON body, declared and chunked, which must be refused without
being held.

Opening 2,000 sockets (both ends on this machine) needs more open files than some shells allow:
the benchmark raises its soft RLIMIT_NOFILE to the hard limit when it is lower than that, and the
server, its child, inherits it.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from pathlib import Path
from typing import Any

from bench.common import (
    PYTHON,
    clean_env,
    free_port,
    median,
    percentile,
    proc_status_kb,
    spawn,
    stop,
    wait_http_ok,
)
from bench.status_rps import RawConnection

SLOW_CLIENTS = 1000
ROUNDS = 3
ROUND_SECONDS = 3.0
SETTLE_SECONDS = 1.0
CUT_TIMEOUT_S = 2
LARGE_BODY = 200 * 1024 * 1024
FILES_NEEDED = 2 * SLOW_CLIENTS + 500
BOUNDARY = "carstudio-bench"


def _raise_open_file_limit() -> dict[str, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FILES_NEEDED if hard == resource.RLIM_INFINITY else min(hard, FILES_NEEDED)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if hard != resource.RLIM_INFINITY and hard < FILES_NEEDED:
        raise RuntimeError(f"this benchmark needs {FILES_NEEDED} open files; the limit is {hard}")
    return {"soft_before": soft, "soft_now": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}


def _slow_upload(port: int) -> bytes:
    part = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="cars.csv"\r\n'
        "Content-Type: text/csv\r\n\r\nmake,model\r\nKia,E"
    )
    return (
        f"POST /api/car-batch HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: 100000\r\n\r\n{part}"
    ).encode()


def _slow_head(port: int) -> bytes:
    return f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Ag".encode()


class SlowClients:
    """Connections that send the start of a request and then nothing more."""

    def __init__(self, port: int, opening: bytes) -> None:
        self.port = port
        self.opening = opening
        self.held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def open(self, count: int) -> None:
        async def one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(self.opening)
            await writer.drain()
            return reader, writer

        # In batches, so the listen backlog never overflows into connect retries.
        for start in range(0, count, 100):
            self.held += await asyncio.gather(*(one() for _ in range(min(100, count - start))))

    def closed_by_server(self) -> int:
        return sum(reader.at_eof() for reader, _ in self.held)

    async def answers(self, timeout: float) -> list[bytes]:
        """What the server sent each of them before it hung up (b"" if it did not within
        `timeout` seconds)."""

        async def read(reader: asyncio.StreamReader) -> bytes:
            try:
                return await asyncio.wait_for(reader.read(), timeout)
            except (TimeoutError, ConnectionError):
                return b""

        return list(await asyncio.gather(*(read(reader) for reader, _ in self.held)))

    async def close(self) -> None:
        for _, writer in self.held:
            writer.close()
        for _, writer in self.held:
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        self.held = []


async def _healthz_round(probe: RawConnection, seconds: float) -> list[float]:
    """Requests one after another for `seconds`; each one's latency."""
    latencies: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sent = time.perf_counter()
        status = await probe.get("/healthz")
        latencies.append(time.perf_counter() - sent)
        if status != 200:
            raise RuntimeError(f"/healthz answered {status} to the normal client")
    return latencies


def _summary(latencies: list[float]) -> dict[str, float]:
    return {
        "requests": len(latencies),
        "p50_ms": median(latencies) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies) * 1000,
    }


async def _side_by_side(port: int) -> dict[str, Any]:
    """Alternating rounds, unloaded and with each kind of slow client, on one server."""
    kinds = {"slow_uploads": _slow_upload(port), "slow_heads": _slow_head(port)}
    latencies: dict[str, list[float]] = {"unloaded": []}
    for kind in kinds:
        latencies |= {kind: [], f"{kind}_opening": []}
    held_throughout: dict[str, bool] = {kind: True for kind in kinds}
    open_seconds: dict[str, float] = {}
    probe = RawConnection("127.0.0.1", port)
    try:
        await _healthz_round(probe, 1.0)  # warm up
        for _ in range(ROUNDS):
            for kind, opening in kinds.items():
                latencies["unloaded"] += await _healthz_round(probe, ROUND_SECONDS)
                slow = SlowClients(port, opening)
                began = time.perf_counter()
                await slow.open(SLOW_CLIENTS)
                open_seconds[kind] = time.perf_counter() - began
                try:
                    # Accepting 1,000 requests at once is a burst of work of its own; it is
                    # measured apart from the time they are only held.
                    latencies[f"{kind}_opening"] += await _healthz_round(probe, SETTLE_SECONDS)
                    latencies[kind] += await _healthz_round(probe, ROUND_SECONDS)
                    held_throughout[kind] &= slow.closed_by_server() == 0
                finally:
                    await slow.close()
    finally:
        probe.close()
    return {
        "latency": {name: _summary(values) for name, values in latencies.items()},
        "held_throughout": held_throughout,
        "seconds_to_open_1000": {k: round(v, 2) for k, v in open_seconds.items()},
    }


async def _cut_off(port: int, opening: bytes) -> dict[str, Any]:
    """1,000 slow clients left alone on a server with short body and head timeouts."""
    slow = SlowClients(port, opening)
    began = time.perf_counter()
    await slow.open(SLOW_CLIENTS)
    answers = await slow.answers(timeout=CUT_TIMEOUT_S * 10)
    elapsed = time.perf_counter() - began
    await slow.close()
    probe = RawConnection("127.0.0.1", port)
    try:
        after = await probe.get("/healthz")
    finally:
        probe.close()
    return {
        "answered_408": sum(answer.startswith(b"HTTP/1.1 408") for answer in answers),
        "seconds_until_all_answered": round(elapsed, 2),
        "healthz_after": after,
    }


async def _large_bodies(port: int, pid: int) -> dict[str, Any]:
    """Peak memory (VmHWM) before and after a 200 MB JSON body, declared and then chunked."""
    before = proc_status_kb(pid, "VmHWM")
    head = (
        f"POST /api/car-image HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\n"
    )
    statuses = []
    # Declared: the head alone must bring the 413 (the body is never asked for).
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{head}Content-Length: {LARGE_BODY}\r\n\r\n".encode())
    statuses.append((await asyncio.wait_for(reader.read(), 10))[:12].decode("latin-1"))
    writer.close()
    # Chunked: sent until the server stops reading it.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{head}Transfer-Encoding: chunked\r\n\r\n1\r\n{{\r\n".encode())
    chunk = b"x" * (64 * 1024)
    sent = 0
    try:
        while sent < LARGE_BODY:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            sent += len(chunk)
    except ConnectionError:
        pass  # refused and closed: the rest of the body is never read
    try:
        answer = await asyncio.wait_for(reader.read(), 10)
    except ConnectionError:
        answer = b""
    statuses.append(answer[:12].decode("latin-1") or "(reset before the answer was read)")
    writer.close()
    after = proc_status_kb(pid, "VmHWM")
    return {
        "hwm_before_mb": before / 1024,
        "hwm_after_mb": after / 1024,
        "growth_mb": (after - before) / 1024,
        "answers": statuses,
        "chunked_bytes_sent_before_refusal": sent,
    }


def _serve(work: Path, name: str, **settings: str) -> tuple[Any, int]:
    port = free_port()
    env = clean_env(
        CARSTUDIO_DATA_DIR=str(work / name / "data"),
        CARSTUDIO_PROVIDER="preview",
        CARSTUDIO_PORT=str(port),
        **settings,
    )
    (work / name).mkdir(parents=True, exist_ok=True)
    log = work / name / "server.log"
    server = spawn([PYTHON, "-m", "carstudio", "serve"], env=env, cwd=work / name, log=log)
    wait_http_ok(f"http://127.0.0.1:{port}/healthz", server, log)
    return server, port


def run(work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    files = _raise_open_file_limit()
    server, port = _serve(
        work,
        "held",
        CARSTUDIO_MAX_CONNECTIONS=str(SLOW_CLIENTS + 100),
        CARSTUDIO_BODY_TIMEOUT="600",
        CARSTUDIO_HEAD_TIMEOUT="600",
    )
    try:
        measured = asyncio.run(_side_by_side(port))
        large = asyncio.run(_large_bodies(port, server.pid))
    finally:
        stop(server)
    log = (work / "held" / "server.log").read_text(errors="replace")
    server, port = _serve(
        work,
        "cut",
        CARSTUDIO_MAX_CONNECTIONS=str(SLOW_CLIENTS + 100),
        CARSTUDIO_BODY_TIMEOUT=str(CUT_TIMEOUT_S),
        CARSTUDIO_HEAD_TIMEOUT=str(CUT_TIMEOUT_S),
    )
    try:
        cut = asyncio.run(_cut_off(port, _slow_upload(port)))
        cut_heads = asyncio.run(_cut_off(port, _slow_head(port)))
    finally:
        stop(server)
    log += (work / "cut" / "server.log").read_text(errors="replace")

    latency = measured["latency"]
    unloaded = latency["unloaded"]
    figures: dict[str, Any] = {
        "healthz_p99_ms_unloaded": unloaded["p99_ms"],
        "healthz_p50_ms_unloaded": unloaded["p50_ms"],
    }
    for kind in ("slow_uploads", "slow_heads"):
        figures[f"healthz_p99_ms_{kind}"] = latency[kind]["p99_ms"]
        figures[f"healthz_p50_ms_{kind}"] = latency[kind]["p50_ms"]
        figures[f"healthz_p99_ratio_{kind}"] = latency[kind]["p99_ms"] / unloaded["p99_ms"]
        figures[f"healthz_p99_ms_{kind}_opening"] = latency[f"{kind}_opening"]["p99_ms"]
    figures["slow_uploads_cut_408"] = cut["answered_408"]
    figures["slow_heads_cut_408"] = cut_heads["answered_408"]
    figures["large_body_hwm_growth_mb"] = large["growth_mb"]
    figures["details"] = {
        "slow_clients": SLOW_CLIENTS,
        "rounds": ROUNDS,
        "round_seconds": ROUND_SECONDS,
        "latency": latency,
        "slow_clients_held_throughout": measured["held_throughout"],
        "seconds_to_open_1000": measured["seconds_to_open_1000"],
        "cut_off": cut | {"body_timeout_s": CUT_TIMEOUT_S},
        "cut_off_heads": cut_heads | {"head_timeout_s": CUT_TIMEOUT_S},
        "large_body": large,
        "open_files": files,
        "tracebacks_in_server_logs": log.count("Traceback"),
    }
    return figures
