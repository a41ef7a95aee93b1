"""Car Studio's server as a separate process, for tests that kill it or interrupt it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.waiting import wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """`carstudio serve` (or `worker`) in a child process with its settings in the environment."""

    def __init__(
        self, env: dict[str, str], log: Path, command: tuple[str, ...] = ("serve",)
    ) -> None:
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CARSTUDIO_")}
        self.env.pop("REPLICATE_API_TOKEN", None)
        self.env |= env | {"CARSTUDIO_PORT": str(self.port), "PYTHONUNBUFFERED": "1"}
        self.command = command
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> ServerProcess:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "carstudio", *self.command],
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        handle.close()
        if wait and self.command[0] == "serve":
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        proc = self.proc
        assert proc is not None

        def answering_or_exited() -> bool:
            if proc.poll() is not None:
                return True
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            return False

        try:
            wait_until(answering_or_exited, timeout=timeout, interval=0.05)
        except AssertionError as exc:
            raise AssertionError(f"server did not start: {exc}\n{self.log.read_text()}") from None
        if proc.poll() is not None:
            raise AssertionError(f"server exited early:\n{self.log.read_text()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def interrupt(self, timeout: float = 30.0) -> None:
        """Ctrl-C, then wait for the process to exit."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the server was still running {timeout:g} s after Ctrl-C:\n{self.log.read_text()}"
            ) from None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
