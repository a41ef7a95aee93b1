"""Every fault the fake Replicate can script, injected into one row of a batch.

Read the table as "fault -> what happens to that row": retried once and done, failed with a
sentence naming the cause, or (for faults every row would meet) the rest of the batch
stopped with that sentence. Whatever the fault, the other rows finish, the job ends ready,
and the ZIP, manifest.json and failed_rows.json say exactly what happened.

The client's waits before a retry are recorded and shortened, so the table runs in seconds
while still checking that the client asked for the right wait (Retry-After, the "~Ns" hint,
or its 1 s default).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from carstudio.config import Settings
from carstudio.generation import Studio
from carstudio.jobs.options import BatchOptions
from carstudio.jobs.service import BatchService
from tests.batch_helpers import numbered_cars, read_zip
from tests.fakes.replicate import FAULT_KINDS, FakeReplicate
from tests.waiting import Sleeps, wait_until

DONE = "done"
FAILED = "failed"
STOPS_BATCH = "stops the batch"


@dataclass(frozen=True)
class Fault:
    """One line of the table: a fault scripted `times` times into row 3 (car "Model-2")."""

    kind: str
    times: int
    outcome: str
    words: str = ""
    """Words the failed row's reason must contain."""
    failure: str | None = None
    """The `kind` failed_rows.json gives the row."""
    creations: int = 1
    """Predictions created (and paid for) for the faulty row."""
    retry_wait: float | None = None
    """The wait the client asked for before its one retry."""
    add: dict[str, Any] = field(default_factory=dict)
    """Extra arguments for `add_fault`."""
    settings: dict[str, Any] = field(default_factory=dict)
    latency: float | None = None
    after: str | None = None
    """A create fault scripted into the row first, so that a lookup fault has a lookup to
    meet (lookups carry no car, so lookup faults match any lookup)."""
    create_posts: int | None = None
    """Creates sent for the faulty row, when not what the phase implies."""
    id_known: bool | None = None
    """Whether the failed row knows its prediction id (default: when one was created)."""

    @property
    def id(self) -> str:
        suffix = "-retry_after" if "retry_after" in self.add else ""
        after = f"-after-{self.after}" if self.after else ""
        return f"{self.kind}{suffix}{after}-x{self.times}"


SHORT_CLOCK = {"http_timeout": 0.5, "wait_seconds": 0, "prediction_deadline": 1.5}
# Creates are not held, so the client polls the prediction and poll faults fire.
POLLED = {"latency": 0.3, "settings": {"wait_seconds": 0}}
QUICK_RETRY = {"retry_after": 0.2}


def retried(
    kind: str, *, wait: float, twice: str, failure: str, paid: int, **extra: Any
) -> list[Fault]:
    """A transient fault: once, the client waits `wait` s, retries and the row is done;
    twice in a row, the row fails with a reason containing `twice`, `paid` predictions made."""
    return [
        Fault(kind, 1, DONE, retry_wait=wait, **extra),
        Fault(kind, 2, FAILED, twice, failure, creations=paid, retry_wait=wait, **extra),
    ]


TABLE: list[Fault] = [
    # -- create: transient, retried once, never paid twice ------------------------------------
    *retried(
        "rate_limit",
        wait=0.2,
        twice="rate limiting",
        failure="rate_limited",
        paid=0,
        add=QUICK_RETRY,
    ),
    *retried("rate_limit", wait=1.0, twice="rate limiting", failure="rate_limited", paid=0),
    *retried("server_error_500", wait=1, twice="server error (500)", failure="transient", paid=0),
    *retried("server_error_502", wait=1, twice="server error (502)", failure="transient", paid=0),
    *retried("server_error_503", wait=1, twice="server error (503)", failure="transient", paid=0),
    *retried("server_error_504", wait=1, twice="server error (504)", failure="transient", paid=0),
    *retried("non_json_5xx", wait=1, twice="server error (502)", failure="transient", paid=0),
    *retried("reset", wait=1, twice="did not answer", failure="transient", paid=0),
    *retried(
        "stall",
        wait=1,
        twice="did not answer (no answer in time)",
        failure="transient",
        paid=0,
        add={"stall": 1.0},  # twice the read timeout of SHORT_CLOCK
        settings=SHORT_CLOCK,
    ),
    # -- create: fatal for the whole batch, never retried -------------------------------------
    Fault("unauthenticated", 1, STOPS_BATCH, "REPLICATE_API_TOKEN", "unauthenticated", 0),
    Fault("insufficient_credit", 1, STOPS_BATCH, "out of credit", "insufficient_credit", 0),
    Fault("model_gone", 1, STOPS_BATCH, "CARSTUDIO_MODEL", "model_unavailable", 0),
    # -- outcome: the model's answer; recorded as it is, never paid for twice -----------------
    Fault("safety", 1, FAILED, "safety filter", "safety"),
    Fault("failed", 1, FAILED, "could not make this image", "model_failed"),
    Fault("canceled", 1, FAILED, "cancelled at Replicate", "prediction_canceled"),
    Fault("aborted", 1, FAILED, "aborted before it started", "prediction_canceled"),
    Fault("never_finishes", 1, FAILED, "not finished in time", "deadline", settings=SHORT_CLOCK),
    Fault("processing_with_output", 1, DONE),
    Fault("data_uri", 1, DONE),
    # -- create made, answer lost behind a 5xx: looked up, never sent again --------------------
    Fault("created_then_502", 1, DONE, create_posts=1),
    Fault("created_then_504", 1, DONE, create_posts=1),
    # -- the lookup itself throttled or failing: asked again, never taken for "not found" -----
    Fault("list_rate_limit", 1, DONE, retry_wait=0.2, add=QUICK_RETRY, after="created_then_502"),
    Fault("list_500", 1, DONE, retry_wait=1.0, after="created_then_504"),
    Fault(
        "list_500",
        3,
        FAILED,
        "could not say whether this image was already started",
        "transient",
        after="created_then_502",
        create_posts=1,
        id_known=False,
    ),
    # -- poll: transient, retried once; the prediction was made, so it is paid for once -------
    *retried("poll_500", wait=1, twice="server error (500)", failure="transient", paid=1, **POLLED),
    *retried("poll_reset", wait=1, twice="did not answer", failure="transient", paid=1, **POLLED),
    # -- file: the download, retried once -----------------------------------------------------
    *retried("output_404", wait=1, twice="gone (404)", failure="bad_output", paid=1),
    *retried("truncated", wait=1, twice="interrupted", failure="bad_output", paid=1),
    *retried("not_image", wait=1, twice="not a PNG, JPEG or WebP", failure="bad_output", paid=1),
]

FAULTY = "Model-2,"  # car 2, spreadsheet row 3
FAULTY_ROW = 3


def image_name(n: int) -> str:
    return f"carmaker-model-{n}-2024-white.png"


@pytest.fixture
def start_batches() -> Iterator[Callable[[Settings], BatchService]]:
    running: list[BatchService] = []

    def start(settings: Settings) -> BatchService:
        batches = BatchService(settings, Studio(settings))
        batches.start(workers=True, periodic=False)
        running.append(batches)
        return batches

    yield start
    for batches in running:
        batches.stop()
        batches.studio.close()


# One line of each part of the table runs in `make check`; `make test` runs every line.
SAMPLED = {
    "rate_limit-retry_after-x1",
    "server_error_502-x2",
    "unauthenticated-x1",
    "safety-x1",
    "created_then_502-x1",
    "list_500-after-created_then_502-x3",
    "poll_500-x1",
    "truncated-x2",
}


def test_the_table_covers_every_fault_the_fake_can_script() -> None:
    assert {fault.kind for fault in TABLE} == set(FAULT_KINDS)
    assert len({fault.id for fault in TABLE}) == len(TABLE)
    assert {fault.id for fault in TABLE} >= SAMPLED


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(
            fault, id=fault.id, marks=() if fault.id in SAMPLED else pytest.mark.exhaustive
        )
        for fault in TABLE
    ],
)
def test_a_fault_in_one_row(
    fault: Fault,
    fake_replicate: FakeReplicate,
    make_settings: Callable[..., Settings],
    start_batches: Callable[[Settings], BatchService],
    provider_sleeps: Sleeps,
) -> None:
    stops_batch = fault.outcome == STOPS_BATCH
    # One row at a time makes "the rows after it" well defined for a fault that stops a batch.
    cars = 4 if stops_batch else 3
    concurrency = 1 if stops_batch else 3
    if fault.latency is not None:
        fake_replicate.latency = fault.latency
    if fault.after is not None:
        fake_replicate.add_fault(fault.after, when=FAULTY)
    lookup = FAULT_KINDS[fault.kind] == "list"
    when = None if lookup else FAULTY
    fake_replicate.add_fault(fault.kind, when=when, times=fault.times, **fault.add)
    settings = make_settings(fake=fake_replicate, concurrency=concurrency, **fault.settings)
    batches = start_batches(settings)

    job_id = batches.submit(numbered_cars(cars), BatchOptions(source_name="cars.csv"))
    # Watch the job in the store: progress answers are reused for a moment, the store is not.
    wait_until(lambda: batches.store.job(job_id).state == "ready", timeout=20, interval=0.05)
    status = batches.status(job_id)

    # Which rows end how: row 3 as the table says; row 2 always done; rows after it done,
    # or stopped with the same reason when the fault is one every row would meet.
    rows = {n + 1: f"Model-{n}," for n in range(1, cars + 1)}
    expected_state = {row: DONE for row in rows}
    if fault.outcome != DONE:
        expected_state[FAULTY_ROW] = FAILED
    if stops_batch:
        expected_state |= {row: FAILED for row in rows if row > FAULTY_ROW}
    done_rows = [row for row, state in expected_state.items() if state == DONE]
    failed_rows = [row for row, state in expected_state.items() if state == FAILED]

    assert status.state == "ready" and status.zip_ready
    assert (status.total, status.done, status.failed) == (cars, len(done_rows), len(failed_rows))
    assert {r.row: r.state for r in status.rows} == expected_state
    assert fake_replicate.pending_faults == [], "every scripted fault was met"

    # Paid once per finished row; the faulty row as many times as the table says.
    for row, words in rows.items():
        expected = (
            fault.creations if row == FAULTY_ROW else int(row < FAULTY_ROW or not stops_batch)
        )
        assert fake_replicate.creation_count(words) == expected, f"row {row}"
    # A create is sent again only after a transient create fault, and at most once.
    create_posts = [
        r
        for r in fake_replicate.requests
        if r.method == "POST"
        and r.path.endswith("/predictions")
        and FAULTY in str((r.body or {}).get("input", {}).get("prompt", ""))
    ]
    if fault.create_posts is not None:
        assert len(create_posts) == fault.create_posts
    elif FAULT_KINDS[fault.kind] == "create":
        assert len(create_posts) == fault.times + (fault.outcome == DONE)
    else:
        assert len(create_posts) == 1
    if fault.retry_wait is not None:
        assert fault.retry_wait in provider_sleeps, f"the client waited {provider_sleeps}"

    # The ZIP: exactly the finished images, stored, plus the manifest and the failures.
    zip_path = batches.zip_path(job_id)
    images, manifest, failed = read_zip(zip_path)
    assert sorted(images) == sorted(image_name(row - 1) for row in done_rows)
    with zipfile.ZipFile(zip_path) as zf:
        failed_lists = {"failed_rows.json", "failed_rows.csv"} if failed else set()
        expected_entries = {*images, "manifest.json"} | failed_lists
        assert set(zf.namelist()) == expected_entries
        assert len(zf.namelist()) == len(expected_entries), "no entry twice"

    assert (manifest["total"], manifest["done"], manifest["failed"]) == (
        cars,
        len(done_rows),
        len(failed_rows),
    )
    assert manifest["source"] == "cars.csv" and manifest["model"] == "google/imagen-3"
    assert [entry["row"] for entry in manifest["rows"]] == list(rows)
    for entry in manifest["rows"]:
        assert entry["status"] == expected_state[entry["row"]]
        if entry["status"] == DONE:
            assert entry["file"] == image_name(entry["row"] - 1)
            assert entry["reason"] is None
            assert entry["predictionId"] in fake_replicate.predictions
        else:
            assert entry["file"] is None
            assert_is_a_sentence(entry["reason"], fake_replicate.token)

    if not failed_rows:
        assert failed is None
        assert batches.failed_rows(job_id) == []
        return
    assert failed == json.loads(json.dumps(batches.failed_rows(job_id)))
    assert [item["row"] for item in failed] == failed_rows
    by_row = {item["row"]: item for item in failed}
    faulty = by_row[FAULTY_ROW]
    assert faulty["status"] == FAILED and faulty["kind"] == fault.failure
    assert fault.words in faulty["reason"], faulty["reason"]
    assert (faulty["make"], faulty["model"], faulty["year"]) == ("Carmaker", "Model-2", "2024")
    if fault.id_known if fault.id_known is not None else fault.creations:
        assert faulty["predictionId"] in fake_replicate.predictions
    else:
        assert "predictionId" not in faulty
    for row in failed_rows:
        assert_is_a_sentence(by_row[row]["reason"], fake_replicate.token)
        if row != FAULTY_ROW:  # stopped: the same sentence, and no prediction made
            assert by_row[row]["reason"] == faulty["reason"]
            assert by_row[row]["kind"] == "batch_stopped" and by_row[row]["status"] == FAILED
            assert "predictionId" not in by_row[row]
    assert status.fatal_error == (faulty["reason"] if stops_batch else None)
    assert {r.row: r.error for r in status.rows if r.state == FAILED} == {
        row: by_row[row]["reason"] for row in failed_rows
    }

    if fault.kind == "never_finishes":
        cancels = [r for r in fake_replicate.requests if r.path.endswith("/cancel")]
        assert [r.path for r in cancels] == [f"/v1/predictions/{faulty['predictionId']}/cancel"]
    leftovers = [p.name for p in batches.batch_images_dir.rglob("*") if p.suffix == ".part"]
    assert leftovers == [], "a failed download leaves no partial file"


def assert_is_a_sentence(reason: str, token: str) -> None:
    """A reason a person can read: a capitalised sentence, no stack trace, no secret."""
    assert reason and reason[0].isupper(), reason
    assert reason.endswith((".", ")")), reason
    assert not reason.endswith(".."), f"doubled full stop: {reason!r}"
    assert "Traceback" not in reason and "Error(" not in reason, reason
    assert token not in reason
