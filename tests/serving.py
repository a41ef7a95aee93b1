"""Serving an ASGI app (Car Studio, or a stand-in) with uvicorn on a free loopback port, in a
thread of the test process, for tests that need a real socket."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from tests.waiting import wait_until

STARTUP_SECONDS = 15.0


def free_socket() -> socket.socket:
    """A socket bound to a free port on 127.0.0.1 (not yet listening)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class Servers:
    """Starts apps on request and stops them all at the end."""

    def __init__(self) -> None:
        self._running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(self, app: ASGIApp, **options: Any) -> str:
        """Serve `app` (with uvicorn `options`, such as `carstudio serve`'s); return its address
        once it answers, e.g. http://127.0.0.1:40123."""
        sock = free_socket()
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="auto", **options)
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"server-{port}", daemon=True
        )
        thread.start()
        self._running.append((server, thread))

        def server_started() -> bool:
            if not thread.is_alive():
                raise AssertionError("The server stopped while starting; see the log above.")
            return bool(server.started)

        wait_until(server_started, timeout=STARTUP_SECONDS, interval=0.02)
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        for server, _ in self._running:
            server.should_exit = True
        for _, thread in self._running:
            thread.join(timeout=10)
        self._running.clear()


@contextmanager
def servers() -> Iterator[Servers]:
    running = Servers()
    try:
        yield running
    finally:
        running.stop()
