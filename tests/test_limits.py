"""Bounded requests: one slow or hostile client does not starve the others.

An upload the client abandons is one INFO line, not a traceback.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.batch_helpers import numbered_cars
from tests.server_process import ServerProcess
from tests.waiting import wait_until

# -- against `carstudio serve` ------------------------------------------------------------------


@pytest.fixture
def serve(
    tmp_path: Path, server_process: Callable[..., ServerProcess]
) -> Callable[..., ServerProcess]:
    def start(**env: str) -> ServerProcess:
        values = {"CARSTUDIO_DATA_DIR": str(tmp_path / "data"), "CARSTUDIO_PROVIDER": "preview"}
        return server_process(values | env).start()

    return start


def test_an_abandoned_upload_is_one_info_line_without_a_traceback(
    serve: Callable[..., ServerProcess],
) -> None:
    process = serve()
    part = numbered_cars(40)
    with socket.create_connection(("127.0.0.1", process.port), timeout=15) as sock:
        sock.sendall(
            f"POST /api/car-batch HTTP/1.1\r\nHost: 127.0.0.1:{process.port}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {len(part) * 10}\r\n\r\n".encode()
            + b'--b\r\nContent-Disposition: form-data; name="file"; filename="cars.csv"\r\n'
            + b"Content-Type: text/csv\r\n\r\n"
            + part
        )
    # The socket is closed with most of the body unsent: the person closed the tab.
    gone = "client went away during upload (POST /api/car-batch)"
    wait_until(lambda: gone in process.log.read_text())
    assert httpx.get(f"{process.url}/healthz", timeout=10).status_code == 200
    log = process.log.read_text()
    assert log.count(gone) == 1
    line = next(line for line in log.splitlines() if gone in line)
    assert " INFO " in line
    assert "Traceback" not in log and " ERROR " not in log and "unexpected error" not in log
