"""A full or unwritable disk is a state Car Studio waits out: nothing paid for is lost, nothing
is paid for twice, and people are told why in a sentence."""

from __future__ import annotations

import os
import time

import pytest

from carstudio.errors import Expired
from carstudio.generation import Studio
from carstudio.jobs import service, worker
from carstudio.jobs.service import BatchService
from tests.batch_helpers import numbered_cars, read_zip, wait_finished, wait_until
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


def test_a_zip_that_cannot_be_written_says_why_and_is_built_again_later(
    make_settings, fake_replicate: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "ARCHIVE_RETRY_FIRST", 0.2)
    settings = make_settings(fake=fake_replicate, lease_seconds=1.0)
    batches = BatchService(settings, Studio(settings))
    try:
        batches.start(workers=False, periodic=False)
        job_id = batches.submit(numbered_cars(2))
        # ZIPs go where nothing may be written (sysfs refuses even root: EACCES), as when the
        # downloads folder has lost its write permission.
        downloads = settings.downloads_dir
        downloads.rmdir()
        downloads.symlink_to("/sys/fs")
        batches.start(workers=True, periodic=True)
        waiting = wait_until(lambda: batches.store.job(job_id).archive_error, interval=0.01)
        assert "may not write to its data directory" in waiting
        assert "tried again in 0.2 seconds" in waiting
        assert batches.status(job_id).state == "archiving"
        downloads.unlink()  # write access returns
        downloads.mkdir()
        status = wait_finished(batches, job_id)
        assert status.zip_ready and status.archive_problem is None
        images, _, _ = read_zip(batches.zip_path(job_id))
        assert len(images) == 2
        assert batches.store.job(job_id).archive_error is None
    finally:
        batches.stop()
        batches.studio.close()


def test_cleanup_leaves_a_batch_retried_after_it_was_read_and_a_retry_after_it_sees_410(
    start_service, fake_replicate: FakeReplicate
) -> None:
    fake_replicate.add_fault("safety", when="Model-2,", times=2)
    batches = start_service(fake=fake_replicate)
    job_id = batches.submit(numbered_cars(2))
    assert wait_finished(batches, job_id).failed == 1
    later = time.time() + 7 * 3600  # past the six-hour retention

    # Cleanup reads the finished job; a retry starts before cleanup marks it expired.
    (seen,) = batches.store.inactive_jobs(later - 6 * 3600)
    batches.retry_failed(job_id)
    assert not batches.store.expire(seen), "changed since it was read: left alone"
    status = wait_finished(batches, job_id)
    assert batches.zip_path(job_id).is_file() and status.failed == 1

    # Activity counts from when it last finished, not when it was created.
    assert batches.cleanup(now=status.finished_at + 3600) == 0
    assert batches.cleanup(now=later + 3600) == 1
    with pytest.raises(Expired):
        batches.retry_failed(job_id)
    assert not (batches.batch_images_dir / job_id).exists()


@pytest.fixture
def start_service(make_settings):
    started: list[BatchService] = []

    def start(**overrides) -> BatchService:
        settings = make_settings(**overrides)
        batches = BatchService(settings, Studio(settings))
        batches.start(workers=True, periodic=False)
        started.append(batches)
        return batches

    yield start
    for batches in started:
        batches.stop()
        batches.studio.close()
