"""What the benchmarks share: child processes that never outlive the run, the fake Replicate
as a separate process, clean environments, and small statistics."""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import os
import platform
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TOKEN = "r8_bench_token_0123456789abcdef"
MB = 1_000_000

_children: list[subprocess.Popen[bytes]] = []


# -- child processes ------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM to the child if the benchmark itself is killed."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any Car Studio or Replicate setting, plus `extra`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CARSTUDIO_", "REPLICATE_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if part
    )
    return env | extra


def carstudio_env(data_dir: Path, fake_url: str, **extra: str) -> dict[str, str]:
    """Settings for a Car Studio process run against the fake Replicate, 3 images at a time."""
    settings = {
        "CARSTUDIO_DATA_DIR": str(data_dir),
        "CARSTUDIO_CONCURRENCY": "3",
        "REPLICATE_API_TOKEN": TOKEN,
        "REPLICATE_BASE_URL": fake_url,
    }
    return clean_env(**(settings | extra))


def spawn(
    args: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log: Path,
    stdout_pipe: bool = False,
) -> subprocess.Popen[bytes]:
    """Start a child that is stopped when the benchmark ends, however it ends."""
    handle: BinaryIO = log.open("ab")
    try:
        proc = subprocess.Popen(
            list(args),
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE if stdout_pipe else handle,
            stderr=handle,
            preexec_fn=_die_with_parent,
        )
    finally:
        handle.close()
    _children.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if the child does not exit in time."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    if proc.stdout is not None:
        proc.stdout.close()
    with contextlib.suppress(ValueError):
        _children.remove(proc)


def stop_all() -> None:
    for proc in list(_children):
        stop(proc, timeout=5.0)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so every `finally` (and child clean-up) runs."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def read_first_line(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise RuntimeError(f"{proc.args!r} printed nothing within {timeout} s")
    line = proc.stdout.readline().decode().strip()
    if not line:
        raise RuntimeError(f"{proc.args!r} exited with status {proc.wait()}")
    return line


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http_ok(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited early:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


# -- the fake Replicate, in its own process -------------------------------------------------


class FakeProcess:
    """The fake Replicate served by a child process, so serving images costs this process nothing.

    Read and scripted over its `/_fake/*` control routes.
    """

    def __init__(
        self, work: Path, *, latency: float, image_bytes: int, download_delay: float = 0.0
    ) -> None:
        self.work = work
        self.latency = latency
        self.image_bytes = image_bytes
        self.download_delay = download_delay
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        self._http: httpx.Client | None = None

    def __enter__(self) -> FakeProcess:
        self.proc = spawn(
            [
                PYTHON,
                "-m",
                "tests.fakes.replicate",
                "--port",
                "0",
                "--latency",
                str(self.latency),
                "--token",
                TOKEN,
                "--image-bytes",
                str(self.image_bytes),
                "--download-delay",
                str(self.download_delay),
            ],
            env=clean_env(),
            cwd=REPO_ROOT,
            log=self.work / "fake.log",
            stdout_pipe=True,
        )
        self.base_url = read_first_line(self.proc)
        self._http = httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._http is not None:
            self._http.close()
        if self.proc is not None:
            stop(self.proc)

    @property
    def http(self) -> httpx.Client:
        assert self._http is not None, "use the fake as a context manager"
        return self._http

    def state(self) -> dict[str, Any]:
        response = self.http.get("/_fake/state")
        response.raise_for_status()
        return dict(response.json())

    def set_latency(self, seconds: float) -> None:
        self.http.post("/_fake/config", json={"latency": seconds}).raise_for_status()
        self.latency = seconds

    def reset(self) -> None:
        self.http.post("/_fake/reset").raise_for_status()

    def create(self, prompt: str, aspect_ratio: str = "1:1") -> dict[str, Any]:
        """One prediction, held open until it has its output (as Car Studio asks)."""
        response = self.http.post(
            "/v1/models/google/imagen-3/predictions",
            json={"input": {"prompt": prompt, "aspect_ratio": aspect_ratio}},
            headers={"Prefer": "wait=60"},
        )
        response.raise_for_status()
        return dict(response.json())

    def warm(self, aspect_ratio: str = "1:1") -> None:
        """Have the fake render its (large) image once, then forget that prediction."""
        latency, delay = self.latency, self.download_delay
        self.http.post("/_fake/config", json={"latency": 0, "download_delay": 0})
        body = self.create("warm-up", aspect_ratio)
        self.http.get(body["output"]).raise_for_status()
        self.http.post("/_fake/config", json={"latency": latency, "download_delay": delay})
        self.reset()


def cars_csv(rows: int, tag: str) -> bytes:
    """`rows` cars no other batch tagged otherwise has, so none comes from the image cache."""
    lines = ["make,model,year,color,background,aspect_ratio"]
    lines += [f"Carmaker,{tag} Model-{n},2024,red,white,1:1" for n in range(1, rows + 1)]
    return ("\n".join(lines) + "\n").encode()


# -- measurement helpers ------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """The `share` quantile (0..1), linear between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * share
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def handover_ms(timeline: Sequence[Sequence[float | None]], slots: int) -> list[float]:
    """Milliseconds from a prediction's output being ready at the fake to the next create,
    from the fake's `timeline` ((created, output ready) per prediction) while `slots` images
    run at once and rows wait: the n-th create takes the slot the (n - slots)-th output freed."""
    creates = sorted(float(t[0]) for t in timeline if t[0] is not None)
    outputs = sorted(float(t[1]) for t in timeline if t[1] is not None)
    return [(creates[n] - outputs[n - slots]) * 1000 for n in range(slots, len(creates))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def proc_status_kb(pid: int, key: str) -> int:
    """A `kB` figure (VmHWM, VmRSS, ...) from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """`with timed() as t: ...` then `t[0]` is the seconds the block took."""
    box: list[float] = []
    started = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - started)


def machine() -> dict[str, Any]:
    """Enough about this machine to read the figures in context."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_mb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        memory_mb = round(int(first.split()[1]) / 1024)
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": model or platform.processor(),
        "memory_mb": memory_mb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
