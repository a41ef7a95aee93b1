"""The server as a real process: killed mid-batch it resumes; Ctrl-C stops it; endless
uploads are cut off.

How fast Ctrl-C stops it is measured by `python -m bench shutdown`."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.batch_helpers import numbered_cars, read_zip
from tests.fakes.replicate import FakeReplicate
from tests.server_process import ServerProcess
from tests.waiting import wait_until


@pytest.fixture
def server(tmp_path: Path, server_process) -> Callable[..., ServerProcess]:
    def make(fake: FakeReplicate | None = None, **env: str) -> ServerProcess:
        values = {"CARSTUDIO_DATA_DIR": str(tmp_path / "data"), "CARSTUDIO_LEASE_SECONDS": "30"}
        if fake is not None:
            values |= {
                "REPLICATE_API_TOKEN": fake.token,
                "REPLICATE_BASE_URL": fake.base_url,
                "CARSTUDIO_POLL_INTERVAL": "0.05",
                "CARSTUDIO_WAIT_SECONDS": "1",
            }
        return server_process(values | env)

    return make


def submit(url: str, data: bytes) -> str:
    response = httpx.post(f"{url}/api/car-batch", files={"file": ("cars.csv", data)}, timeout=10)
    assert response.status_code == 202, response.text
    return str(response.json()["jobId"])


def status(url: str, job_id: str) -> dict:
    return httpx.get(f"{url}/api/batch/{job_id}", timeout=10).json()


def test_a_server_killed_mid_batch_finishes_the_job_on_restart_paying_once_per_row(
    server, fake_replicate: FakeReplicate
) -> None:
    fake_replicate.latency = 1.5
    first = server(fake_replicate).start()
    job_id = submit(first.url, numbered_cars(6))
    # Kill while the first three rows wait at Replicate and the rest are queued.
    wait_until(
        lambda: sum(r["state"] == "waiting" for r in status(first.url, job_id)["rows"]) == 3,
        timeout=20,
    )
    first.kill()
    assert fake_replicate.creation_count() == 3

    second = server(fake_replicate)
    second.port = first.port
    second.env["CARSTUDIO_PORT"] = str(first.port)
    second.start()
    body = wait_until(lambda: (s := status(second.url, job_id))["zipUrl"] and s, timeout=30)
    assert (body["done"], body["failed"]) == (6, 0)
    for n in range(1, 7):
        assert fake_replicate.creation_count(f"Model-{n},") == 1, f"row {n + 1} was paid for twice"
    archive = httpx.get(second.url + body["zipUrl"], timeout=10).content
    images, manifest, failed = read_zip(archive)
    assert len(images) == 6 and failed is None


def test_ctrl_c_stops_the_server_even_mid_batch(server, fake_replicate: FakeReplicate) -> None:
    fake_replicate.latency = 30  # rows are held inside Replicate calls when Ctrl-C comes
    process = server(fake_replicate, CARSTUDIO_WAIT_SECONDS="60").start()
    submit(process.url, numbered_cars(5))
    wait_until(lambda: fake_replicate.in_flight == 3, timeout=10)
    process.interrupt()


def test_an_endless_upload_is_cut_off_near_the_limit(server) -> None:
    process = server().start()
    head = (
        "POST /api/car-batch HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{process.port}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
    chunk = b"a" * 65536
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", process.port), timeout=10) as sock:
        sock.sendall(head + f"{len(part):x}\r\n".encode() + part + b"\r\n")
        try:
            for _ in range(400):  # offers 25 MiB
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(5)
        try:
            while data := sock.recv(65536):
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"5 MB" in answer
    assert sent < 12 * 1024 * 1024, f"the server read {sent} bytes before refusing"
    assert httpx.get(f"{process.url}/healthz", timeout=10).status_code == 200


def test_ctrl_c_stops_the_server_during_a_single_image(
    server, fake_replicate: FakeReplicate
) -> None:
    fake_replicate.latency = 30
    process = server(fake_replicate, CARSTUDIO_WAIT_SECONDS="60").start()
    request = threading.Thread(
        target=lambda: httpx.post(f"{process.url}/api/car-image", json={"make": "Kia"}, timeout=60),
        daemon=True,
    )
    request.start()
    wait_until(lambda: fake_replicate.in_flight == 1, timeout=10)
    process.interrupt()
