"""A full or unwritable disk is a state Car Studio waits out: nothing paid for is lost, nothing
is paid for twice, and people are told why in a sentence."""

from __future__ import annotations

import os

import pytest

from carstudio.generation import Studio
from carstudio.jobs import worker
from carstudio.jobs.service import BatchService
from tests.batch_helpers import numbered_cars, wait_finished, wait_until
from tests.fakes.replicate import FakeReplicate

UPLOAD = {"file": ("cars.csv", numbered_cars(3), "text/csv")}


@pytest.fixture(autouse=True)
def _short_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "STORAGE_PAUSE", 0.1)


def test_with_too_little_free_space_new_work_gets_507_with_a_sentence(client_for) -> None:
    client = client_for(min_free_mb=10**9)  # more than any disk here has free
    for answer in (
        client.post("/api/car-image", json={"make": "Kia"}),
        client.post("/api/car-batch", files=UPLOAD),
    ):
        assert answer.status_code == 507
        assert "cannot store images" in answer.json()["error"]
        assert "CARSTUDIO_MIN_FREE_MB" in answer.json()["error"]
    # Checking a file costs nothing and stores nothing: still allowed.
    assert client.post("/api/car-batch/validate", files=UPLOAD).status_code == 200


def test_a_batch_pauses_while_the_disk_is_full_and_goes_on_when_space_returns(
    client_for, fake_replicate: FakeReplicate
) -> None:
    fake_replicate.latency = 0.2
    client = client_for(fake=fake_replicate, concurrency=1)
    batches: BatchService = client.app.state.batches
    batches.storage.check_every = 0.0
    job = client.post("/api/car-batch", files={"file": ("c.csv", numbered_cars(6), "text/csv")})
    job_id = job.json()["jobId"]
    wait_until(lambda: fake_replicate.creation_count() >= 1)
    batches.storage.min_free_mb = 10**9  # the disk fills up mid-batch
    paused = wait_until(
        lambda: (b := client.get(f"/api/batch/{job_id}").json())["storageProblem"] and b
    )
    assert paused["state"] == "running" and paused["failed"] == 0
    made_while_full = fake_replicate.creation_count()
    wait_until(lambda: client.get(f"/api/batch/{job_id}").json()["done"] == made_while_full)
    assert fake_replicate.creation_count() == made_while_full, "nothing new is paid for"
    assert client.get(f"/api/batch/{job_id}").json()["failed"] == 0

    batches.storage.min_free_mb = 0  # space is freed
    status = wait_finished(batches, job_id)
    assert (status.done, status.failed) == (6, 0)
    assert fake_replicate.creation_count() == 6
    assert client.get(f"/api/batch/{job_id}").json()["storageProblem"] is None


def test_an_image_paid_for_but_not_writable_is_fetched_again_never_made_again(
    make_settings, fake_replicate: FakeReplicate
) -> None:
    settings = make_settings(fake=fake_replicate, concurrency=1)
    batches = BatchService(settings, Studio(settings))
    try:
        batches.start(workers=False, periodic=False)
        job_id = batches.submit(numbered_cars(2))
        row = next(r for r in batches.store.rows(job_id) if r.row == 3)
        folder = batches.batch_images_dir / job_id
        folder.mkdir(parents=True, exist_ok=True)
        # Row 3's image is written to /dev/full: the kernel answers ENOSPC, as a full disk
        # does, after the prediction was made and paid for.
        os.symlink("/dev/full", folder / f"{row.stem}.part")
        batches.start(workers=True, periodic=False)
        status = wait_finished(batches, job_id)
        assert (status.done, status.failed) == (2, 0)
        assert fake_replicate.creation_count("Model-2,") == 1, "fetched again, not made again"
        assert (folder / f"{row.stem}.png").stat().st_size > 0
        prediction_gets = [
            r for r in fake_replicate.requests if r.method == "GET" and "/predictions/" in r.path
        ]
        assert prediction_gets, "the paused row resumed its prediction"
    finally:
        batches.stop()
        batches.studio.close()


def test_retry_failed_resumes_a_row_whose_prediction_was_made(
    client_for, fake_replicate: FakeReplicate
) -> None:
    """A row that failed after its image was made (here: an internal error while storing)
    keeps its prediction: retrying fetches that image instead of paying for another."""
    client = client_for(fake=fake_replicate)
    batches: BatchService = client.app.state.batches
    job_id = batches.submit(numbered_cars(1))
    wait_finished(batches, job_id)
    (row,) = batches.store.rows(job_id)
    with batches.store.session() as s:
        stored = s.get(type(row), row.id)
        stored.state, stored.failure, stored.error = "failed", "internal", "internal error"
        stored.image_name = None
    batches._status_cache.forget(job_id)
    batches.retry_failed(job_id)
    assert wait_finished(batches, job_id).done == 1
    assert fake_replicate.creation_count() == 1
