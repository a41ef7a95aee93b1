"""The batch engine against the fake Replicate: rows, faults, limits, cancel, retry, resume."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import httpx
import pytest
from sqlalchemy import func, select, update

from carstudio.config import Settings
from carstudio.errors import ConfigurationError, Conflict, Expired, InvalidInput, NotFound
from carstudio.generation import Studio
from carstudio.jobs import archive
from carstudio.jobs.models import Job, Row
from carstudio.jobs.options import BatchOptions
from carstudio.jobs.progress import StatusCache
from carstudio.jobs.service import BatchService
from carstudio.jobs.states import RowState
from carstudio.spec import CarSpec
from tests.batch_helpers import CARS, csv_of, numbered_cars, read_zip, wait_finished, wait_until
from tests.fakes.replicate import FakeReplicate
from tests.waiting import Sleeps


@pytest.fixture
def start_batches(make_settings) -> Iterator[Callable[..., BatchService]]:
    running: list[tuple[BatchService, Studio]] = []

    def start(settings: Settings | None = None, *, workers: bool = True, **kw: Any) -> BatchService:
        settings = settings or make_settings(**kw)
        studio = Studio(settings)
        batches = BatchService(settings, studio)
        batches.start(workers=workers, periodic=False)
        running.append((batches, studio))
        return batches

    yield start
    for batches, studio in running:
        batches.stop()
        studio.close()


def test_three_rows_give_three_images_in_the_zip(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    batches = start_batches(make_settings(fake=fake_replicate))
    job_id = batches.submit(csv_of(CARS[:3]), BatchOptions(source_name="cars.csv"))
    status = wait_finished(batches, job_id)
    assert (status.total, status.done, status.failed, status.percent) == (3, 3, 0, 100)
    images, manifest, failed = read_zip(batches.zip_path(job_id))
    assert sorted(images) == [
        "ford-mustang-2023-coupe-gt-hub.png",
        "honda-civic-2022-hatchback-sport-white.png",
        "toyota-corolla-2024-sedan-xse-white.png",
    ]
    assert failed is None
    assert [r["row"] for r in manifest["rows"]] == [2, 3, 4]
    first = manifest["rows"][0]
    assert first["status"] == "done" and first["model"] == "google/imagen-3"
    assert first["predictionId"] in fake_replicate.predictions
    assert "Toyota Corolla" in first["prompt"] and first["seconds"] > 0
    assert fake_replicate.creation_count() == 3


def test_55_rows_are_rejected_and_nothing_is_queued(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    batches = start_batches(make_settings(fake=fake_replicate))
    with pytest.raises(InvalidInput, match="55 car rows"):
        batches.submit(numbered_cars(55))
    assert batches.huey.pending_count() == 0
    with batches.store.session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
    assert fake_replicate.creation_count() == 0


def test_a_safety_refusal_fails_only_its_row(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    fake_replicate.add_fault("safety", when="Mustang")
    batches = start_batches(make_settings(fake=fake_replicate))
    job_id = batches.submit(csv_of(CARS[:3]))
    status = wait_finished(batches, job_id)
    assert (status.done, status.failed) == (2, 1)
    images, manifest, failed = read_zip(batches.zip_path(job_id))
    assert len(images) == 2
    assert failed is not None and [f["row"] for f in failed] == [3]
    assert "safety filter" in failed[0]["reason"] and failed[0]["model"] == "Mustang"
    assert fake_replicate.creation_count("Mustang") == 1, "a refusal is not paid for again"


def test_a_network_error_is_retried_once_then_succeeds(
    start_batches, fake_replicate: FakeReplicate, make_settings, provider_sleeps: Sleeps
) -> None:
    fake_replicate.add_fault("reset", when="Corolla")
    batches = start_batches(make_settings(fake=fake_replicate))
    status = wait_finished(batches, batches.submit(csv_of(CARS[:1])))
    assert status.done == 1
    assert fake_replicate.creation_count("Corolla") == 1
    assert provider_sleeps == [1.0], "one second before the one retry"


def test_two_network_errors_in_a_row_fail_the_row(
    start_batches, fake_replicate: FakeReplicate, make_settings, provider_sleeps: Sleeps
) -> None:
    fake_replicate.add_fault("reset", when="Corolla", times=2)
    batches = start_batches(make_settings(fake=fake_replicate))
    job_id = batches.submit(csv_of(CARS[:2]))
    status = wait_finished(batches, job_id)
    assert (status.done, status.failed) == (1, 1)
    failed = batches.failed_rows(job_id)
    assert failed[0]["row"] == 2 and "did not answer" in failed[0]["reason"]


def test_never_more_than_three_predictions_in_flight(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    fake_replicate.latency = 0.15
    batches = start_batches(make_settings(fake=fake_replicate))
    status = wait_finished(batches, batches.submit(numbered_cars(12)))
    assert status.done == 12
    assert fake_replicate.peak_in_flight == 3
    assert fake_replicate.creation_count() == 12


def test_concurrency_is_a_setting(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    fake_replicate.latency = 0.15
    batches = start_batches(make_settings(fake=fake_replicate, concurrency=2))
    wait_finished(batches, batches.submit(numbered_cars(6)))
    assert fake_replicate.peak_in_flight == 2


def test_a_bad_token_fails_the_remaining_rows_at_once(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    settings = make_settings(fake=fake_replicate, replicate_api_token="r8_not_the_right_one")
    batches = start_batches(settings)
    job_id = batches.submit(numbered_cars(20))
    status = wait_finished(batches, job_id)
    assert status.failed == 20
    create_calls = [r for r in fake_replicate.requests if r.method == "POST"]
    assert len(create_calls) <= 3, "rows that had not started must not try again"
    reasons = {row.error for row in status.rows}
    assert reasons == {next(iter(reasons))} and "REPLICATE_API_TOKEN" in next(iter(reasons))
    assert status.fatal_error


def test_a_row_past_its_deadline_is_cancelled_and_failed(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    fake_replicate.add_fault("never_finishes", when="Corolla")
    settings = make_settings(fake=fake_replicate, prediction_deadline=0.5, wait_seconds=0)
    batches = start_batches(settings)
    job_id = batches.submit(csv_of(CARS[:2]))
    status = wait_finished(batches, job_id)
    assert (status.done, status.failed) == (1, 1)
    assert "cancelled at Replicate" in batches.failed_rows(job_id)[0]["reason"]
    assert any(r.path.endswith("/cancel") for r in fake_replicate.requests)


def test_the_finished_images_are_packed_while_the_last_one_is_made(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    """Once no row waits to start, the finished images are packed for the ZIP; the ZIP
    built when the last row ends takes the pack over."""
    fake_replicate.add_fault("never_finishes", when="Model-7,")
    batches = start_batches(make_settings(fake=fake_replicate, wait_seconds=0))
    job_id = batches.submit(numbered_cars(7))
    pack = archive.prepack_path(batches.settings.downloads_dir / f"{job_id}.zip")
    wait_until(pack.is_file, timeout=20)
    with zipfile.ZipFile(pack) as packed:
        # The images finished by the time no row waited to start: the rest join at the end.
        packed_names = set(packed.namelist())
    assert packed_names and packed_names <= {
        f"carmaker-model-{n}-2024-white.png" for n in range(1, 7)
    }

    _cancel_at_replicate(fake_replicate, "Model-7,")

    status = wait_finished(batches, job_id)
    assert (status.done, status.failed) == (6, 1)
    images, manifest, failed = read_zip(batches.zip_path(job_id))
    assert len(images) == 6 and len(manifest["rows"]) == 7
    assert failed is not None and [f["row"] for f in failed] == [8]
    assert not pack.exists()
    assert archive.leftover_parts(batches.settings.downloads_dir / f"{job_id}.zip") == []


def _cancel_at_replicate(fake: FakeReplicate, car: str) -> None:
    """Cancel, as someone at Replicate would, the prediction of the row whose prompt names
    `car` (its create may still be on its way)."""

    def its_prediction() -> str | None:
        made = fake.predictions.items()
        return next((p for p, v in made if car in v["input"]["prompt"]), None)

    found = wait_until(its_prediction, timeout=10)
    httpx.post(f"{fake.base_url}/v1/predictions/{found}/cancel", auth=_bearer(fake))


class _PackUnderWay(threading.Event):
    """A pack of a batch's images that this process is making: says when someone waits."""

    def __init__(self) -> None:
        super().__init__()
        self.awaited = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.awaited.set()
        return super().wait(timeout)


def test_the_zip_waits_for_the_pack_under_way_rather_than_start_anew_beside_it(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    fake_replicate.add_fault("never_finishes", when="Model-3,")
    batches = start_batches(make_settings(fake=fake_replicate, wait_seconds=0))
    job_id = batches.submit(numbered_cars(3))
    pack = archive.prepack_path(batches.settings.downloads_dir / f"{job_id}.zip")
    under_way = _PackUnderWay()

    def packs_done() -> bool:
        """The first two rows are done and packed, and no pass of theirs is still running:
        from here, only the pack this test says is under way is."""
        with batches._packing_lock:
            if job_id in batches._packing or not pack.is_file():
                return False
            if batches.status(job_id).done < 2:
                return False
            batches._packing[job_id] = under_way
            return True

    wait_until(packs_done, timeout=20)

    _cancel_at_replicate(fake_replicate, "Model-3,")
    wait_until(under_way.awaited.is_set, timeout=10)
    job = batches.store.job(job_id)
    assert job is not None and job.state == "running", "no ZIP is begun while the pack is made"
    assert pack.is_file()

    with batches._packing_lock:
        del batches._packing[job_id]
    under_way.set()
    status = wait_finished(batches, job_id)
    assert (status.done, status.failed) == (2, 1)
    images, _, _ = read_zip(batches.zip_path(job_id))
    assert len(images) == 2
    assert not pack.exists(), "the pack became the ZIP"


def _bearer(fake: FakeReplicate) -> Callable[[httpx.Request], httpx.Request]:
    def auth(request: httpx.Request) -> httpx.Request:
        request.headers["Authorization"] = f"Bearer {fake.token}"
        return request

    return auth


def test_invalid_rows_can_be_skipped_and_are_reported(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    data = csv_of(
        [CARS[0], ("", "", "", "", "", "red", "", ""), ("Kia", "EV6", "", "", "3024", "", "", "")]
    )
    batches = start_batches(make_settings(fake=fake_replicate))
    with pytest.raises(InvalidInput, match="2 rows are not valid") as caught:
        batches.submit(data)
    assert {d["row"] for d in caught.value.details} == {3, 4}
    job_id = batches.submit(data, BatchOptions(skip_invalid=True))
    status = wait_finished(batches, job_id)
    assert (status.total, status.done, status.failed) == (3, 1, 2)
    _, _, failed = read_zip(batches.zip_path(job_id))
    assert failed is not None
    assert [(f["row"], f["kind"]) for f in failed] == [(3, "invalid_row"), (4, "invalid_row")]
    assert "year" in failed[1]["reason"]
    assert fake_replicate.creation_count() == 1


def test_same_car_twice_gets_the_row_number_in_its_name(start_batches, make_settings) -> None:
    batches = start_batches()
    job_id = batches.submit(csv_of([CARS[0], CARS[1], CARS[0]]))
    wait_finished(batches, job_id)
    images, _, _ = read_zip(batches.zip_path(job_id))
    assert "toyota-corolla-2024-sedan-xse-white-row4.png" in images
    assert "toyota-corolla-2024-sedan-xse-white.png" in images


def test_cancel_keeps_finished_images_and_still_makes_a_zip(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    fake_replicate.latency = 0.3
    batches = start_batches(make_settings(fake=fake_replicate, concurrency=1))
    job_id = batches.submit(numbered_cars(8))
    wait_until(lambda: batches.status(job_id).done >= 1)
    status = batches.cancel(job_id)
    assert status.canceled >= 1
    final = wait_finished(batches, job_id)
    # One row generating and one claimed by a worker thread may still finish; none other.
    assert final.done + final.canceled == 8 and 1 <= final.done <= status.done + 2
    images, manifest, failed = read_zip(batches.zip_path(job_id))
    assert len(images) == final.done
    assert failed is not None and all(f["status"] == "canceled" for f in failed)
    # Whether the cancel reached a row first or a worker did, the row records one kind.
    assert {f["kind"] for f in failed} == {"canceled"}
    assert {f["reason"] for f in failed} == {"Cancelled before it started."}
    assert fake_replicate.creation_count() == final.done
    with pytest.raises(Conflict):
        batches.cancel(job_id)


def test_retry_failed_reruns_only_failed_rows_under_the_same_names(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    fake_replicate.add_fault("failed", when="Mustang", message="GPU hiccup")
    batches = start_batches(make_settings(fake=fake_replicate))
    job_id = batches.submit(csv_of(CARS[:3]))
    assert wait_finished(batches, job_id).failed == 1
    with pytest.raises(Conflict, match="already finished"):
        batches.cancel(job_id)
    batches.retry_failed(job_id)
    status = wait_finished(batches, job_id)
    assert (status.done, status.failed) == (3, 0)
    images, manifest, failed = read_zip(batches.zip_path(job_id))
    assert "ford-mustang-2023-coupe-gt-hub.png" in images and failed is None
    assert [r["row"] for r in manifest["rows"]] == [2, 3, 4]
    assert fake_replicate.creation_count("Corolla") == 1
    assert fake_replicate.creation_count("Mustang") == 2
    with pytest.raises(Conflict, match="no failed rows"):
        batches.retry_failed(job_id)


def test_a_row_whose_create_could_not_be_looked_up_is_adopted_on_retry_not_paid_again(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    fake_replicate.add_fault("created_then_502", when="Mustang")
    fake_replicate.add_fault("list_rate_limit", retry_after=0.05, times=3)
    batches = start_batches(make_settings(fake=fake_replicate))
    job_id = batches.submit(csv_of(CARS[:3]))
    status = wait_finished(batches, job_id)
    (row,) = [r for r in status.rows if r.state == "failed"]
    assert row.failure == "transient" and "looked up again" in (row.error or "")
    batches.retry_failed(job_id)
    assert wait_finished(batches, job_id).done == 3
    assert fake_replicate.creation_count("Mustang") == 1


def test_an_image_replicate_deleted_is_made_anew_by_retry_failed_for_that_row_only(
    start_batches, fake_replicate: FakeReplicate, make_settings, provider_sleeps: Sleeps
) -> None:
    # Long enough for the client's one download retry (its 1 s wait is recorded, not sat out)
    # to meet the second 404.
    fake_replicate.retention = 0.5
    fake_replicate.add_fault("output_404", when="Mustang", times=2)
    batches = start_batches(make_settings(fake=fake_replicate))
    job_id = batches.submit(csv_of(CARS[:3]))
    assert wait_finished(batches, job_id).failed == 1
    # The download failed twice; by the time the row is retried, Replicate has deleted it.
    (kept,) = [r for r in batches.store.rows(job_id) if r.state == "failed"]
    wait_until(lambda: fake_replicate.predictions[kept.prediction_id]["data_removed"], timeout=5)
    batches.retry_failed(job_id)
    status = wait_finished(batches, job_id)
    (row,) = [r for r in status.rows if r.state == "failed"]
    assert row.failure == "output_removed"
    assert row.error == (
        "Replicate deleted this image an hour after it was made; retry the row to make a new one."
    )
    assert fake_replicate.creation_count("Mustang") == 1, "resuming the deleted one paid nothing"
    assert 1.0 in provider_sleeps, "the download was tried again a second later"
    batches.retry_failed(job_id)
    final = wait_finished(batches, job_id)
    assert final.done == 3
    assert fake_replicate.creation_count("Mustang") == 2
    assert fake_replicate.creation_count("Corolla") == 1


def test_a_row_with_a_prediction_id_is_resumed_not_created_again(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    settings = make_settings(fake=fake_replicate)
    first = start_batches(settings, workers=False)  # a server that dies before working
    job_id = first.submit(csv_of(CARS[:2]))
    rows = first.store.rows(job_id)
    # Row 2 was created at Replicate and its id stored; then the process died.
    prediction = first.studio.provider.create(prompt=rows[0].prompt, spec=_spec(rows[0]))
    first.store.claim(rows[0].id, "deadhost/1/x", 60)
    first.store.advance(rows[0].id, "deadhost/1/x", state="waiting", prediction_id=prediction.id)
    with first.store.session() as session:  # the dead worker's lease has run out
        session.execute(update(Row).values(lease_expires=0.0))
    first.stop()
    second = start_batches(settings)
    status = wait_finished(second, job_id)
    assert status.done == 2
    assert fake_replicate.creation_count("Corolla") == 1
    assert second.store.rows(job_id)[0].prediction_id == prediction.id


def test_a_create_whose_answer_was_lost_is_found_not_paid_again(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    settings = make_settings(fake=fake_replicate)
    first = start_batches(settings, workers=False)
    job_id = first.submit(csv_of(CARS[:1]))
    row = first.store.rows(job_id)[0]
    owner = "deadhost/1/x"
    first.store.claim(row.id, owner, 0.0)
    first.store.advance(row.id, owner, state="creating", create_sent_at=time.time())
    first.studio.provider.create(prompt=row.prompt, spec=_spec(row))  # answer "lost"
    first.stop()
    second = start_batches(settings)
    assert wait_finished(second, job_id).done == 1
    assert fake_replicate.creation_count() == 1


def test_a_dead_local_worker_is_taken_over_without_waiting_for_its_lease(
    start_batches, make_settings
) -> None:
    settings = make_settings(lease_seconds=3600)
    first = start_batches(settings, workers=False)
    job_id = first.submit(csv_of(CARS[:1]))
    row = first.store.rows(job_id)[0]
    dead = f"{socket.gethostname()}/999999999/abc"  # a pid that cannot exist
    first.store.claim(row.id, dead, 3600)
    first.store.advance(row.id, dead, state="creating")
    first.stop()
    second = start_batches(settings)
    assert wait_finished(second, job_id, timeout=10).done == 1


def test_old_batches_expire_and_answer_with_a_sentence(start_batches, make_settings) -> None:
    batches = start_batches(make_settings(retention_hours=1))
    job_id = batches.submit(csv_of(CARS[:1]))
    wait_finished(batches, job_id)
    zip_path = batches.zip_path(job_id)
    assert batches.cleanup(now=time.time() + 1800) == 0
    assert batches.cleanup(now=time.time() + 7200) >= 1
    assert not zip_path.exists()
    assert not (batches.batch_images_dir / job_id).exists()
    with pytest.raises(Expired, match="removed"):
        batches.status(job_id)


def test_unknown_job_is_not_found(start_batches) -> None:
    batches = start_batches()
    for job_id in ("nope", "0" * 32, "../../etc/passwd"):
        with pytest.raises(NotFound):
            batches.status(job_id)


def test_row_states_move_in_order(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    fake_replicate.latency = 0.3
    # No create hold: the create answers at once and the row waits for its prediction.
    batches = start_batches(make_settings(fake=fake_replicate, wait_seconds=0))
    job_id = batches.submit(csv_of(CARS[:1]))
    seen: list[str] = []

    def look() -> bool:
        """Note the row's state when it changed; True once the batch is finished."""
        finished = batches.status(job_id).finished
        state = batches.store.rows(job_id)[0].state
        if not seen or seen[-1] != state:
            seen.append(state)
        return finished

    # A short interval: "waiting" lasts only while the prediction runs.
    wait_until(look, interval=0.005)
    order = [s.value for s in RowState]
    assert seen == sorted(seen, key=order.index)
    assert "waiting" in seen and seen[-1] == "done"


def _spec(row: Row) -> CarSpec:
    return CarSpec.model_validate(row.spec)


@pytest.mark.exhaustive  # a stress run: readers flat out while three batches finish
def test_status_stays_whole_while_many_threads_read_it_and_rows_change(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    """Request threads share the progress cache: readers, writers and its pruning race here."""
    rows_per_job = 4
    fake_replicate.latency = 0.05
    batches = start_batches(make_settings(fake=fake_replicate, concurrency=3))
    jobs = [
        batches.submit(
            csv_of(
                [
                    (f"Maker{n}", f"Model-{i}", "", "", "2024", "red", "white", "1:1")
                    for i in range(rows_per_job)
                ]
            )
        )
        for n in range(3)
    ]
    problems: list[BaseException] = []
    stop = threading.Event()

    def read(worker: int) -> None:
        seen = 0
        while not stop.is_set():
            job_id = jobs[seen % len(jobs)]
            seen += 1
            try:
                # Unknown ids make cache misses too, so entries come and go all the time.
                with contextlib.suppress(NotFound):
                    batches.status(f"{worker:04x}{seen:028x}")
                status = batches.status(job_id)
                states = [row.state for row in status.rows]
                assert len(states) == status.total == rows_per_job
                assert status.done == states.count("done")
                assert status.failed == states.count("failed") + states.count("canceled")
            except BaseException as exc:  # collected, so the main thread reports it
                problems.append(exc)
                return

    readers = [threading.Thread(target=read, args=(n,)) for n in range(4)]
    with mock.patch.object(StatusCache, "MAX_ENTRIES", 4):
        for thread in readers:
            thread.start()
        try:
            for job_id in jobs:
                wait_finished(batches, job_id)
        finally:
            stop.set()
            for thread in readers:
                thread.join()
    assert problems == []
    assert all(batches.status(job_id).done == rows_per_job for job_id in jobs)


# -- choosing a model, and moving off a retired one ------------------------------------------


def test_a_batch_runs_on_the_model_it_was_given(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    batches = start_batches(make_settings(fake=fake_replicate))
    job_id = batches.submit(numbered_cars(2), BatchOptions(model="google/nano-banana-2"))
    status = wait_finished(batches, job_id)
    assert status.model == "google/nano-banana-2" and status.done == 2
    creates = [r.path for r in fake_replicate.requests if r.method == "POST"]
    assert creates == ["/v1/models/google/nano-banana-2/predictions"] * 2
    _, manifest, _ = read_zip(batches.zip_path(job_id))
    assert manifest["model"] == "google/nano-banana-2"
    assert {row["model"] for row in manifest["rows"]} == {"google/nano-banana-2"}
    with pytest.raises(InvalidInput, match="not a model Car Studio supports.*nano-banana-2"):
        batches.submit(numbered_cars(2), BatchOptions(model="google/imagen-9"))


def test_a_batch_stopped_by_a_retired_model_moves_its_remaining_rows_to_another(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    fake_replicate.add_fault("model_gone", when="Model-2,")
    batches = start_batches(make_settings(fake=fake_replicate, concurrency=1))
    job_id = batches.submit(numbered_cars(4))
    stopped = wait_finished(batches, job_id)
    assert (stopped.done, stopped.failed) == (1, 3)
    assert stopped.stop_failure == "model_unavailable"
    assert stopped.switch_to == "google/nano-banana-2"
    with pytest.raises(InvalidInput, match="already uses"):
        batches.switch_model(job_id, "google/imagen-3")

    batches.switch_model(job_id, "google/nano-banana-2")
    status = wait_finished(batches, job_id)
    assert (status.done, status.failed) == (4, 0)
    assert status.model == "google/nano-banana-2" and status.replaced_model == "google/imagen-3"
    assert status.fatal_error is None and status.switch_to is None
    _, manifest, failed = read_zip(batches.zip_path(job_id))
    assert failed is None
    assert manifest["models"] == ["google/imagen-3", "google/nano-banana-2"]
    assert [r["model"] for r in manifest["rows"]] == ["google/imagen-3"] + [
        "google/nano-banana-2"
    ] * 3
    assert fake_replicate.creation_count("Model-1,") == 1, "the finished image was kept"
    with pytest.raises(Conflict, match="stopped because its model"):
        batches.switch_model(job_id, "google/nano-banana")


def test_a_fallback_model_takes_over_when_the_batch_model_is_gone(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    fake_replicate.add_fault("model_gone", when=lambda i: "resolution" not in i, times=50)
    settings = make_settings(fake=fake_replicate, fallback_model="google/nano-banana-2")
    batches = start_batches(settings)
    job_id = batches.submit(numbered_cars(5))
    status = wait_finished(batches, job_id)
    assert (status.done, status.failed) == (5, 0)
    assert status.model == "google/nano-banana-2" and status.replaced_model == "google/imagen-3"
    # Every image was made by the fallback; the retired model made none and cost nothing.
    assert fake_replicate.creation_count() == 5
    assert all(created.get("resolution") == "1K" for created in fake_replicate.creations)


def test_an_unknown_fallback_model_names_its_setting(make_settings) -> None:
    settings = make_settings(fallback_model="google/imagen-9")
    with pytest.raises(ConfigurationError, match="CARSTUDIO_FALLBACK_MODEL"):
        BatchService(settings, Studio(settings))


def test_rows_whose_queue_task_was_lost_or_whose_worker_died_waiting_still_finish(
    make_settings, fake_replicate: FakeReplicate
) -> None:
    """No restart needed: the periodic sweep finds queued rows nobody is working on."""
    settings = make_settings(fake=fake_replicate, lease_seconds=0.6)
    batches = BatchService(settings, Studio(settings))
    try:
        batches.start(workers=True, periodic=True)
        real_task = batches._row_task
        batches._row_task = lambda row_id: None  # every queue task of this batch is lost
        job_id = batches.submit(numbered_cars(4))
        batches._row_task = real_task
        rows = batches.store.rows(job_id)
        # Row 2 was claimed by a worker on another machine that died while it waited for a
        # slot: its lease runs out, nobody renews it, and its state is still queued.
        assert batches.store.claim(rows[0].id, "otherhost/4242/gone", 0.6)
        status = wait_finished(batches, job_id, timeout=15)
        assert (status.done, status.failed) == (4, 0)
        for n in range(1, 5):
            assert fake_replicate.creation_count(f"Model-{n},") == 1
    finally:
        batches.stop()
        batches.studio.close()


def test_a_slot_is_given_back_when_replicate_is_done_not_after_the_download(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    """One slot, slow downloads: the next prediction starts while the last image downloads."""
    fake_replicate.latency = 0.1
    fake_replicate.download_delay = 0.3
    batches = start_batches(make_settings(fake=fake_replicate, concurrency=1))
    job_id = batches.submit(numbered_cars(2))
    assert wait_finished(batches, job_id).done == 2
    creates = [r.time for r in fake_replicate.requests if r.method == "POST"]
    downloads = [r.time for r in fake_replicate.requests if r.path.startswith("/files/")]
    assert len(creates) == 2 and downloads
    # Row 3's create arrived while row 2's file was still on its way (the fake holds each
    # download for 0.3 s); with the slot held through the download it could not have.
    assert creates[1] < downloads[0] + fake_replicate.download_delay
    assert fake_replicate.peak_in_flight == 1


def test_rows_drawn_here_take_a_thread_per_slot_and_fetched_ones_two(
    make_settings, fake_replicate: FakeReplicate
) -> None:
    for settings, threads in (
        (make_settings(concurrency=3), 3),  # preview: every step is this process's work
        (make_settings(fake=fake_replicate, concurrency=3), 6),  # downloads overlap creates
    ):
        studio = Studio(settings)
        try:
            assert BatchService(settings, studio).worker_threads == threads
        finally:
            studio.close()


def test_a_task_taken_as_its_service_stops_goes_back_to_the_queue(
    start_batches, fake_replicate: FakeReplicate, make_settings
) -> None:
    """A worker thread that was waiting for a task when its service stopped may still take
    one; the task goes back to the queue, and the next service runs it, once."""
    settings = make_settings(fake=fake_replicate)
    first = start_batches(settings, workers=False)
    job_id = first.submit(numbered_cars(1))
    assert first.huey.pending_count() == 1
    first.stop()

    taken = first.huey.dequeue()  # as a worker thread does, just as the service stopped
    assert taken is not None and first.huey.pending_count() == 0
    first.huey.execute(taken)
    assert first.huey.pending_count() == 1
    assert fake_replicate.creation_count("Model-1,") == 0

    second = start_batches(settings)
    status = wait_finished(second, job_id)
    assert (status.done, status.failed) == (1, 0)
    assert fake_replicate.creation_count("Model-1,") == 1
