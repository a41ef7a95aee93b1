"""Crash trials: `carstudio serve` killed with SIGKILL at chosen moments of a batch, then
started again on the same data directory.

Each trial holds the batch at its moment on purpose (a create Replicate has not answered, a
prediction still running, a download between its two tries, a ZIP build that cannot finish)
and checks that the moment was reached before the kill. Whatever the moment, after the
restart every job completes, every row has its image in the ZIP, and no prediction is
created twice.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.batch_helpers import numbered_cars, read_zip
from tests.fakes.replicate import FakeReplicate
from tests.server_process import ServerProcess
from tests.waiting import wait_until

CARS = 7
"""Three rows in flight (the concurrency) and more rows than that still queued."""


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def server(
    data_dir: Path, fake_replicate: FakeReplicate, server_process
) -> Callable[..., ServerProcess]:
    """Start `carstudio serve` against the fake; every start shares the data directory."""

    def start(**env: str) -> ServerProcess:
        values = {
            "CARSTUDIO_DATA_DIR": str(data_dir),
            "REPLICATE_API_TOKEN": fake_replicate.token,
            "REPLICATE_BASE_URL": fake_replicate.base_url,
            "CARSTUDIO_POLL_INTERVAL": "0.05",
            "CARSTUDIO_WAIT_SECONDS": "1",
            "CARSTUDIO_LEASE_SECONDS": "30",
        }
        return server_process(values | env).start()

    return start


def get_json(url: str) -> Any:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, f"{response.status_code}: {response.text}"
    return response.json()


def submit(url: str, data: bytes) -> str:
    response = httpx.post(f"{url}/api/car-batch", files={"file": ("cars.csv", data)}, timeout=10)
    assert response.status_code == 202, response.text
    return str(response.json()["jobId"])


def row_states(url: str, job_id: str) -> dict[int, str]:
    return {row["row"]: row["state"] for row in get_json(f"{url}/api/batch/{job_id}")["rows"]}


def image_name(n: int) -> str:
    return f"carmaker-model-{n}-2024-white.png"


def finishes_whole_after_restart(
    process: ServerProcess, fake: FakeReplicate, job_id: str, data_dir: Path
) -> None:
    """The restarted server completes the job: every row done, in the ZIP, paid for once."""
    body = wait_until(
        lambda: (s := get_json(f"{process.url}/api/batch/{job_id}"))["zipUrl"] and s, timeout=30
    )
    assert (body["total"], body["done"], body["failed"], body["state"]) == (CARS, CARS, 0, "ready")
    for n in range(1, CARS + 1):
        assert fake.creation_count(f"Model-{n},") == 1, f"row {n + 1} was created twice"
    assert fake.creation_count() == CARS

    archive = httpx.get(process.url + body["zipUrl"], timeout=10)
    assert archive.status_code == 200
    images, manifest, failed = read_zip(archive.content)
    assert sorted(images) == [image_name(n) for n in range(1, CARS + 1)]
    assert failed is None
    assert [(e["row"], e["status"], e["file"]) for e in manifest["rows"]] == [
        (n + 1, "done", image_name(n)) for n in range(1, CARS + 1)
    ]
    prediction_ids = [e["predictionId"] for e in manifest["rows"]]
    assert sorted(prediction_ids) == sorted(fake.predictions), "each row kept its own prediction"

    leftovers = [p.name for p in (data_dir / "images").rglob("*.part")]
    assert leftovers == [], "no half-written image is left behind"


def assert_no_server_errors(process: ServerProcess) -> None:
    log = process.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]
    assert '" 500' not in log, log[-4000:]


def test_killed_before_any_create_was_made(
    server, fake_replicate: FakeReplicate, data_dir: Path
) -> None:
    """Rows queued, and creates sent that Replicate has not made yet (it holds them)."""
    holding = threading.Event()
    holding.set()
    fake_replicate.add_fault("stall", when=lambda _input: holding.is_set(), times=1000, stall=10.0)
    first = server()
    job_id = submit(first.url, numbered_cars(CARS))

    def creates_held() -> bool:
        held = [r for r in fake_replicate.requests if r.method == "POST" and r.status is None]
        return len(held) == 3

    wait_until(creates_held, timeout=10)
    states = row_states(first.url, job_id)
    first.kill()
    holding.clear()
    assert fake_replicate.creation_count() == 0
    assert sorted(states.values()) == ["creating"] * 3 + ["queued"] * (CARS - 3), states

    second = server()
    finishes_whole_after_restart(second, fake_replicate, job_id, data_dir)
    assert_no_server_errors(second)


def test_killed_while_replicate_holds_the_create_answer(
    server, fake_replicate: FakeReplicate, data_dir: Path
) -> None:
    """Predictions made at Replicate, but the create answers (held by Prefer: wait) never
    reached Car Studio: the restart must find them, not pay for them again."""
    fake_replicate.latency = 2.5
    first = server(CARSTUDIO_WAIT_SECONDS="60")
    job_id = submit(first.url, numbered_cars(CARS))
    wait_until(lambda: fake_replicate.creation_count() == 3, timeout=10)
    states = row_states(first.url, job_id)
    first.kill()
    assert sorted(states.values()) == ["creating"] * 3 + ["queued"] * (CARS - 3), states
    fake_replicate.latency = 0.05  # the queued rows need not take as long

    second = server(CARSTUDIO_WAIT_SECONDS="60")
    finishes_whole_after_restart(second, fake_replicate, job_id, data_dir)
    assert_no_server_errors(second)


def test_killed_while_rows_wait_for_replicate(
    server, fake_replicate: FakeReplicate, data_dir: Path
) -> None:
    """Prediction ids stored, predictions still running at Replicate."""
    fake_replicate.latency = 2.5  # longer than the 1 s create hold: the rows wait and poll
    first = server()
    job_id = submit(first.url, numbered_cars(CARS))
    wait_until(
        lambda: sorted(row_states(first.url, job_id).values()).count("waiting") == 3, timeout=10
    )
    first.kill()
    still_running = fake_replicate.in_flight
    assert fake_replicate.creation_count() == 3
    fake_replicate.latency = 0.05  # the queued rows need not take as long

    second = server()
    finishes_whole_after_restart(second, fake_replicate, job_id, data_dir)
    assert_no_server_errors(second)
    if still_running != 3:
        pytest.skip("the kill came after Replicate had finished some of the rows")


def test_killed_while_downloading(server, fake_replicate: FakeReplicate, data_dir: Path) -> None:
    """A download cut short, and the kill during the client's wait before its second try."""
    fake_replicate.add_fault("truncated", when="Model-2,")
    first = server()
    job_id = submit(first.url, numbered_cars(CARS))

    def truncated_download_served() -> bool:
        return "truncated" not in fake_replicate.pending_faults

    wait_until(truncated_download_served, timeout=10, interval=0.005)
    states = row_states(first.url, job_id)  # within the client's 1 s wait before retrying
    first.kill()
    assert fake_replicate.creation_count("Model-2,") == 1

    second = server()
    finishes_whole_after_restart(second, fake_replicate, job_id, data_dir)
    assert_no_server_errors(second)
    if states[3] != "downloading":
        pytest.skip(f"the kill missed the download (row 3 was {states[3]})")


def test_killed_while_building_the_zip(
    server, fake_replicate: FakeReplicate, data_dir: Path
) -> None:
    """Every row done and the ZIP half written when the process dies.

    One finished image is swapped for a named pipe, so the ZIP build blocks on it for as
    long as the test likes; the real image goes back before the restart.
    """
    fake_replicate.add_fault("rate_limit", when=f"Model-{CARS},", retry_after=2.5)
    first = server()
    job_id = submit(first.url, numbered_cars(CARS))

    def others_done_and_last_row_throttled() -> bool:
        states = row_states(first.url, job_id)
        return "rate_limit" not in fake_replicate.pending_faults and all(
            states[n + 1] == "done" for n in range(1, CARS)
        )

    wait_until(others_done_and_last_row_throttled, timeout=10)
    downloads = data_dir / "downloads"
    image = data_dir / "images" / "batches" / job_id / image_name(1)
    real_bytes = image.read_bytes()
    image.unlink()
    os.mkfifo(image)
    try:
        state = wait_until(
            lambda: (s := get_json(f"{first.url}/api/batch/{job_id}")["state"]) != "running" and s,
            timeout=10,
        )
        if state == "archiving":
            # The ZIP build has started writing its output and is blocked on the pipe.
            wait_until(lambda: any(downloads.iterdir()), timeout=10)
        first.kill()
    finally:
        image.unlink()
        image.write_bytes(real_bytes)

    second = server()
    finishes_whole_after_restart(second, fake_replicate, job_id, data_dir)
    assert_no_server_errors(second)
    if state != "archiving":
        pytest.skip("the ZIP was finished before the image could be held back")
    assert sorted(p.name for p in downloads.iterdir()) == [f"{job_id}.zip"], (
        "a ZIP half-written when the process died is removed, not left in downloads forever"
    )
