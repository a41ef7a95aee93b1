"""Prices, estimates, the ledger and budgets: what a batch costs is known before it starts,
every prediction is booked once, and no budget is passed, even by workers racing."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from carstudio.billing.ledger import Ledger
from carstudio.billing.models import LedgerEntry
from carstudio.config import Settings
from carstudio.errors import BudgetReached, ConfigurationError
from carstudio.generation import Studio
from carstudio.jobs.service import BatchService
from carstudio.jobs.store import Store, database_url
from carstudio.providers.models import MODELS, get_model
from carstudio.providers.prices import LIST_PRICES, PriceBook
from tests.batch_helpers import CARS, csv_of, numbered_cars, wait_finished, wait_until
from tests.fakes.replicate import FakeReplicate
from tests.test_scale_out import postgres_url  # noqa: F401 - a fixture

EXPECTED = {
    "google/imagen-3": None,
    "google/imagen-3-fast": None,
    "google/imagen-4": "0.04",
    "google/imagen-4-fast": "0.02",
    "google/imagen-4-ultra": "0.06",
    "google/nano-banana": "0.039",
    "google/nano-banana-pro": "0.15",
    "google/nano-banana-2": "0.067",
    "google/nano-banana-2-lite": "0.034",
}


def test_every_model_has_a_price_or_says_it_is_unknown() -> None:
    assert set(EXPECTED) == set(MODELS)
    book = PriceBook()
    for name, usd in EXPECTED.items():
        price = book.price(get_model(name))
        assert price.usd == (None if usd is None else Decimal(usd)), name
        assert price.source, name
    assert book.per_image("preview") == 0
    assert all(price.source for price in LIST_PRICES.values())


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_validate_estimates_the_batch_for_each_model(
    client_for, fake_replicate: FakeReplicate, model: str
) -> None:
    client = client_for(fake=fake_replicate)
    data = csv_of(CARS[:3]) + b"Kia,,,,1800,,,\n"  # three valid rows, one invalid
    answer = client.post(
        "/api/car-batch/validate",
        files={"file": ("cars.csv", data, "text/csv")},
        data={"imageModel": model},
    ).json()["estimate"]
    per_image = EXPECTED[model]
    assert answer["images"] == 3 and answer["cachedImages"] == 0
    assert answer["currency"] == "USD" and answer["model"] == model
    assert answer["includesRerolls"] is False
    if per_image is None:
        assert answer["perImage"] is None and answer["total"] is None
    else:
        assert answer["perImage"] == float(per_image)
        assert answer["total"] == pytest.approx(3 * float(per_image))
    assert fake_replicate.creation_count() == 0


def test_the_preview_costs_nothing(client_for) -> None:
    client = client_for()
    answer = client.post(
        "/api/car-batch/validate", files={"file": ("c.csv", numbered_cars(5), "text/csv")}
    ).json()["estimate"]
    assert (answer["perImage"], answer["total"], answer["model"]) == (0.0, 0.0, "preview")


def test_an_operator_sets_prices_in_a_file(tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[prices]\n"google/imagen-3" = 0.03\n"google/nano-banana-2@1K" = 0.05\n')
    book = PriceBook(prices)
    assert book.per_image("google/imagen-3") == Decimal("0.03")
    assert book.per_image("google/nano-banana-2") == Decimal("0.05")
    assert book.price(get_model("google/imagen-3")).source == "set by the operator in prices.toml"
    bad = tmp_path / "bad.json"
    bad.write_text('{"prices": {"google/imagen-9": 1}}')
    with pytest.raises(ConfigurationError, match="CARSTUDIO_PRICES.*not a supported model"):
        PriceBook(bad)


@pytest.mark.parametrize(
    "settled",
    [True, False],
    ids=["settled-before-the-crash", "died-before-settling"],
)
def test_every_prediction_is_booked_once_even_when_its_row_resumes(
    make_settings, fake_replicate: FakeReplicate, settled: bool
) -> None:
    """Row 2 was created, booked and its prediction id stored; then the process died. The
    row stores its id (freeing its slot) before the ledger settles the booking with it, so
    a process may die in between: the row that resumes settles it, and a later prediction
    for the row would be booked anew, not on it."""
    settings = make_settings(fake=fake_replicate, model="google/imagen-4")
    first = BatchService(settings, Studio(settings))
    first.start(workers=False, periodic=False)
    job_id = first.submit(numbered_cars(3))
    rows = first.store.rows(job_id)
    booking = first._row_booking(first.store.job(job_id), rows[0], first.studio.provider)
    booking.before_create()
    made = first.studio.provider.create(prompt=rows[0].prompt, spec=_spec(rows[0]))
    first.store.claim(rows[0].id, "deadhost/1/x", 60)
    first.store.advance(rows[0].id, "deadhost/1/x", state="waiting", prediction_id=made.id)
    if settled:
        booking.created(made.id)
    first.stop()
    first.studio.close()

    second = BatchService(settings, Studio(settings))
    try:
        second.store.expire_leases(lambda owner: owner.startswith("deadhost"))
        second.start(workers=True, periodic=False)
        assert wait_finished(second, job_id).done == 3
        lines, month = second.usage(_anyone(), start=_today(), end=_today())
        assert [(line.model, line.images) for line in lines] == [("google/imagen-4", 3)]
        assert month == Decimal("0.12")
        with second.store.reading() as s:
            booked = s.execute(select(LedgerEntry.row, LedgerEntry.prediction_id)).all()
        made_by_rows = [(row.row, row.prediction_id) for row in second.store.rows(job_id)]
        assert sorted(booked) == sorted(made_by_rows)
        assert (rows[0].row, made.id) in booked
        assert fake_replicate.creation_count() == 3
    finally:
        second.stop()
        second.studio.close()


def test_a_batch_over_its_budget_is_refused_before_anything_is_spent(
    client_for, fake_replicate: FakeReplicate
) -> None:
    client = client_for(fake=fake_replicate, model="google/imagen-4", budget_per_batch=0.10)
    refused = client.post(
        "/api/car-batch", files={"file": ("cars.csv", numbered_cars(3), "text/csv")}
    )
    assert refused.status_code == 402
    assert (
        "$0.12" in refused.json()["error"]
        and "CARSTUDIO_BUDGET_PER_BATCH" in refused.json()["error"]
    )
    unknown = client_for(fake=fake_replicate, budget_per_batch=100)  # imagen-3: price unknown
    answer = unknown.post("/api/car-batch", files={"file": ("c.csv", numbered_cars(1), "text/csv")})
    assert (
        answer.status_code == 402
        and "price of google/imagen-3 is unknown" in answer.json()["error"]
    )
    two = client.post("/api/car-batch", files={"file": ("c.csv", numbered_cars(2), "text/csv")})
    assert two.status_code == 202
    assert fake_replicate.creation_count("Model-3") == 0


def test_a_re_roll_that_would_pass_the_batch_budget_is_not_made(
    client_for, fake_replicate: FakeReplicate
) -> None:
    """Three images fit the batch's $0.12 at submission; the fourth, a re-roll of a wrong
    colour, would pass it: the row keeps its first image, and nothing more is paid."""
    fake_replicate.add_fault("wrong_colour", when="Model-3,")
    client = client_for(fake=fake_replicate, model="google/imagen-4", budget_per_batch=0.12)
    batches: BatchService = client.app.state.batches
    job = client.post("/api/car-batch", files={"file": ("c.csv", numbered_cars(3), "text/csv")})
    assert job.status_code == 202
    status = wait_finished(batches, job.json()["jobId"])
    assert (status.done, status.failed, status.rerolls) == (3, 0, 0)
    assert status.needs_review == 1, "the wrong colour stays, for a person to look at"
    assert fake_replicate.creation_count() == 3
    assert batches.ledger.spent_this_month() == Decimal("0.12")


def test_the_batch_budget_holds_at_every_booking(make_settings) -> None:
    """Bookings of one batch stop at its cap, whoever makes them; another batch, single
    images and the cache's free images are not counted against it."""
    settings = make_settings()
    settings.ensure_dirs()
    store = Store(database_url(None, settings.data_dir))
    ledger = Ledger(store, monthly_cap=None)
    cap, price = Decimal("0.10"), Decimal("0.04")

    def book(job: str, row: int) -> None:
        ledger.reserve(
            model="google/imagen-4", usd=price, kind="batch", job_id=job, row=row, batch_cap=cap
        )

    try:
        ledger.record_cached(model="google/imagen-4", kind="batch", job_id="a" * 32, row=9)
        ledger.reserve(model="google/imagen-4", usd=price, kind="single", batch_cap=cap)
        book("a" * 32, 2)
        book("a" * 32, 3)
        with pytest.raises(BudgetReached) as refused:
            book("a" * 32, 4)
        assert refused.value.message.startswith(
            "This batch's spending would pass its budget: $0.08 of $0.10 is used"
        )
        assert "CARSTUDIO_BUDGET_PER_BATCH" in refused.value.message
        book("b" * 32, 2)  # another batch has its own
        assert ledger.spent_this_month() == Decimal("0.16")
        with pytest.raises(BudgetReached, match="price of google/imagen-3 is unknown"):
            ledger.reserve(
                model="google/imagen-3", usd=None, kind="batch", job_id="c" * 32, batch_cap=cap
            )
    finally:
        store.close()


def test_the_monthly_budget_stops_a_batch_at_the_cap_with_a_retryable_reason(
    client_for, fake_replicate: FakeReplicate
) -> None:
    client = client_for(
        fake=fake_replicate, model="google/imagen-4", budget_monthly=0.12, concurrency=1
    )
    batches: BatchService = client.app.state.batches
    batches.ledger.reserve(model="google/imagen-4", usd=Decimal("0.04"), kind="single")
    # $0.04 spent: two more images fit, a third would pass $0.12.
    job = client.post("/api/car-batch", files={"file": ("c.csv", numbered_cars(1), "text/csv")})
    assert job.status_code == 202
    assert wait_finished(batches, job.json()["jobId"]).done == 1
    over = client.post(
        "/api/car-batch",
        files={"file": ("c.csv", numbered_cars(2), "text/csv")},
        data={"fresh": "true"},  # no image from the cache: both would be paid for
    )
    assert over.status_code == 402 and "CARSTUDIO_BUDGET_MONTHLY" in over.json()["error"]
    single = client.post("/api/car-image", json={"make": "Kia", "model": "EV6"})
    assert single.status_code == 200  # the last $0.04 that fits
    third = client.post("/api/car-image", json={"make": "Kia", "model": "EV9"})
    assert third.status_code == 402 and "budget" in third.json()["error"]
    assert batches.ledger.spent_this_month() == Decimal("0.12")
    assert fake_replicate.creation_count() == 2


def test_two_workers_racing_never_pass_the_monthly_budget(
    make_settings, fake_replicate: FakeReplicate
) -> None:
    """Two services on one database, as two machines are: each books under the same cap."""
    _race_to_the_cap(
        make_settings(fake=fake_replicate, model="google/imagen-4", budget_monthly=0.20)
    )


@pytest.mark.scale
def test_two_workers_racing_never_pass_the_monthly_budget_on_postgresql(
    make_settings,
    fake_replicate: FakeReplicate,
    postgres_url: str,  # noqa: F811
) -> None:
    """The same race on PostgreSQL, where the bookings take turns under an advisory lock."""
    _race_to_the_cap(
        make_settings(
            fake=fake_replicate,
            model="google/imagen-4",
            budget_monthly=0.20,
            database_url=postgres_url,
        )
    )


def _race_to_the_cap(settings: Settings) -> None:
    """Eight bookings of $0.04 at once, from two services, under a cap of $0.20."""
    services = [BatchService(settings, Studio(settings)) for _ in range(2)]
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def book(ledger: Ledger) -> None:
        start.wait()
        try:
            ledger.reserve(model="google/imagen-4", usd=Decimal("0.04"), kind="single")
            outcomes.append("booked")
        except BudgetReached:
            outcomes.append("refused")

    threads = [threading.Thread(target=book, args=(services[n % 2].ledger,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert outcomes.count("booked") == 5 and outcomes.count("refused") == 3
        assert services[0].ledger.spent_this_month() == Decimal("0.20")
    finally:
        for service in services:
            service.stop()
            service.studio.close()


def test_a_batch_stopped_by_the_monthly_budget_says_why_and_retries_later(
    client_for, fake_replicate: FakeReplicate
) -> None:
    fake_replicate.latency = 0.5  # the second row cannot book before the first is done
    client = client_for(
        fake=fake_replicate, model="google/imagen-4", budget_monthly=0.10, concurrency=1
    )
    batches: BatchService = client.app.state.batches
    job_id = batches.submit(numbered_cars(2))  # $0.08: fits
    # While the first row is being made, $0.04 is spent elsewhere; the other no longer fits.
    wait_until(lambda: fake_replicate.creation_count() == 1)
    batches.ledger.reserve(model="google/imagen-4", usd=Decimal("0.04"), kind="single")
    status = wait_finished(batches, job_id)
    (failed,) = [row for row in status.rows if row.state == "failed"]
    assert status.done == 1 and failed.failure == "budget_reached" and failed.retryable
    assert "CARSTUDIO_BUDGET_MONTHLY" in (failed.error or "")
    assert "CARSTUDIO_BUDGET_MONTHLY" in (status.fatal_error or "")
    assert batches.ledger.spent_this_month() == Decimal("0.08")
    assert fake_replicate.creation_count() == 1


def test_usage_totals_by_day_and_model(client_for, fake_replicate: FakeReplicate) -> None:
    client: TestClient = client_for(fake=fake_replicate)
    for car, model in (
        ("EV6", "google/imagen-4"),
        ("EV9", "google/imagen-4"),
        ("EV6", "google/nano-banana-2"),
    ):
        image = client.post(
            "/api/car-image", json={"make": "Kia", "model": car, "image_model": model}
        )
        assert image.status_code == 200
    usage = client.get("/api/usage").json()
    assert usage["images"] == 3 and usage["currency"] == "USD"
    assert usage["usd"] == pytest.approx(0.04 * 2 + 0.067)
    assert [(line["model"], line["images"]) for line in usage["lines"]] == [
        ("google/imagen-4", 2),
        ("google/nano-banana-2", 1),
    ]
    assert usage["monthToDate"] == pytest.approx(usage["usd"])
    assert client.get("/api/usage?from=2026-02-01&to=2026-01-01").status_code == 400


def _spec(row):
    from carstudio.spec import CarSpec

    return CarSpec.model_validate(row.spec)


def _anyone():
    from carstudio.accounts.viewer import ANYONE

    return ANYONE


def _today():
    import datetime as dt

    return dt.datetime.now(dt.UTC).date()
