"""Every image is checked against its row; a failing one is made once more, and the dealer
sees which images need a look: end to end, against the fake Replicate's scripted pictures."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from carstudio.cli import app
from carstudio.delivery import OutputPreset
from carstudio.errors import Failure
from carstudio.jobs.models import Row
from carstudio.jobs.states import RowState
from carstudio.providers.preview import render_placeholder
from carstudio.quality.checks import Inspection
from carstudio.quality.paints import paint_table
from carstudio.quality.review import MadeImage, Reviewer, duplicates_across
from carstudio.spec import CarSpec
from tests.batch_helpers import csv_of, read_zip
from tests.fakes.replicate import FakeReplicate
from tests.waiting import wait_until

# One car per scripted case; the model name tells the fake which prompt is which.
ROWS = [
    ("Audi", "Good", "", "", "2024", "Kings Red", "white", "1:1"),
    ("Audi", "Colour", "", "", "2024", "kings red", "white", "4:3"),
    ("Audi", "Grey", "", "", "2024", "Celestial Silver", "white", "1:1"),
    ("Audi", "Aspect", "", "", "2024", "blue", "white", "16:9"),
    ("Audi", "Blank", "", "", "2024", "agate black", "hub", "1:1"),
    ("Audi", "Copy", "", "", "2024", "pearl white", "white", "1:1"),
    ("Audi", "Refused", "", "", "2024", "red", "white", "1:1"),
    ("Audi", "Unsafe", "", "", "2024", "red", "white", "1:1"),
]


def nth(prompt_part: str, n: int) -> Callable[[dict[str, Any]], bool]:
    """A fault condition that matches the `n`th prediction (from 1) for one car only."""
    seen = [0]

    def matches(prediction_input: dict[str, Any]) -> bool:
        if prompt_part not in str(prediction_input.get("prompt", "")):
            return False
        seen[0] += 1
        return seen[0] == n

    return matches


def run_batch(client: TestClient, data: bytes, **form: str) -> dict[str, Any]:
    answer = client.post("/api/car-batch", files={"file": ("cars.csv", data)}, data=form)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["jobId"]
    status: dict[str, Any] = wait_until(
        lambda: (s := client.get(f"/api/batch/{job_id}").json())["state"] == "ready" and s,
        timeout=30,
    )
    return status


def test_a_batch_of_good_and_wrong_images_ends_with_each_wrong_one_made_again_or_flagged(
    client_for: Callable[..., TestClient], fake_replicate: FakeReplicate
) -> None:
    fake = fake_replicate
    fake.latency = 0.1  # each row's checks are stored before the next row's image arrives
    fake.add_fault("wrong_colour", when="Colour")
    fake.add_fault("grey_background", when="Grey", times=2)  # the re-roll is grey too
    fake.add_fault("wrong_aspect", when="Aspect")
    fake.add_fault("blank", when="Blank")
    fake.add_fault("duplicate", when="Copy")
    fake.add_fault("wrong_colour", when=nth("Refused", 1))
    fake.add_fault("safety", when=nth("Refused", 2))  # the re-roll is refused
    fake.add_fault("safety", when="Unsafe")
    client = client_for(fake=fake, concurrency=1, model="google/imagen-4")
    status = run_batch(client, csv_of(ROWS))

    rows = {row["row"] - 1: row for row in status["rows"]}  # 1: the first car
    verdicts = {n: (row["checks"] or {}).get("verdict") for n, row in rows.items()}
    assert verdicts == {
        1: "pass",
        2: "pass",  # wrong colour, made again
        3: "fail",  # grey twice: kept, and needs a look
        4: "pass",
        5: "pass",
        6: "pass",
        7: "fail",  # its re-roll was refused: the first image stays
        8: None,  # refused outright: no image, not made again
    }
    assert [rows[n]["rerolls"] for n in range(1, 9)] == [0, 1, 1, 1, 1, 1, 1, 0]
    assert rows[8]["state"] == "failed" and rows[8]["kind"] == "safety"
    assert (status["done"], status["failed"]) == (7, 1)
    assert status["needsReview"] == 2 and status["rerolls"] == 6
    assert rows[3]["needsReview"] and "border is near-white" in rows[3]["checks"]["sentence"]

    # One prediction per car, one more per re-roll; the refused re-roll was created too.
    creations = {row[1]: fake.creation_count(f"Audi {row[1]},") for row in ROWS}
    assert creations == {
        "Good": 1, "Colour": 2, "Grey": 2, "Aspect": 2, "Blank": 2, "Copy": 2,
        "Refused": 2, "Unsafe": 1,
    }  # fmt: skip
    usage = client.get("/api/usage").json()
    assert usage["images"] == sum(creations.values()) == 14  # every prediction in the ledger

    # The manifest holds every check, and the image not kept beside the kept one.
    zip_path = client.app.state.batches.zip_path(status["jobId"])
    images, manifest, failed = read_zip(zip_path)
    assert manifest["needsReview"] == 2 and manifest["rerolls"] == 6
    by_row = {row["row"] - 1: row for row in manifest["rows"]}
    colour = by_row[2]
    assert [c["name"] for c in colour["checks"]["checks"]] == [
        "shape", "background", "colour", "blank", "duplicate",
    ]  # fmt: skip
    assert all({"verdict", "score", "sentence"} <= set(c) for c in colour["checks"]["checks"])
    first = {c["name"]: c for c in colour["alternate"]["checks"]["checks"]}
    assert first["colour"]["verdict"] == "fail" and first["colour"]["score"] > 30
    assert colour["alternate"]["file"] in images
    copy = {c["name"]: c for c in by_row[6]["alternate"]["checks"]["checks"]}
    assert copy["duplicate"]["verdict"] == "fail" and "row " in copy["duplicate"]["sentence"]
    assert by_row[7]["alternate"] is None and by_row[7]["needsReview"]
    assert failed is not None and [f["row"] for f in failed] == [9]
    with zipfile.ZipFile(zip_path) as zf, Image.open(io.BytesIO(zf.read(colour["file"]))) as im:
        assert b"trainedAlgorithmicMedia" in _xmp(im)


def _xmp(image: Image.Image) -> bytes:
    xmp = image.info.get("xmp", b"")
    return xmp if isinstance(xmp, bytes) else str(xmp).encode()


def test_with_made_again_off_wrong_images_and_repeats_are_flagged_not_remade(
    client_for, fake_replicate: FakeReplicate
) -> None:
    fake_replicate.add_fault("blank", when="Blank")
    fake_replicate.add_fault("duplicate", when="Copy")
    client = client_for(fake=fake_replicate, concurrency=1, qc_rerolls=0)
    status = run_batch(client, csv_of([ROWS[0], ROWS[4], ROWS[5]]))
    assert status["rerolls"] == 0 and status["needsReview"] == 2
    assert fake_replicate.creation_count() == 3
    copy = next(row for row in status["rows"] if row["title"].endswith("Copy"))
    duplicate = next(c for c in copy["checks"]["checks"] if c["name"] == "duplicate")
    assert duplicate["verdict"] == "fail" and "row " in duplicate["sentence"]


def test_a_listing_preset_delivers_labelled_jpegs_named_so(client_for) -> None:
    client = client_for()
    refused = client.post(
        "/api/car-batch", files={"file": ("cars.csv", csv_of(ROWS[:1]))}, data={"output": "tiff"}
    )
    assert refused.status_code == 400
    assert "original, listing-jpeg, marketplace-4x3, webp" in refused.json()["error"]
    status = run_batch(client, csv_of(ROWS[:2]), output="listing-jpeg")
    names = [row["fileName"] for row in status["rows"]]
    assert all(name.endswith(".jpg") for name in names), names
    images, _, _ = read_zip(client.app.state.batches.zip_path(status["jobId"]))
    assert sorted(images) == sorted(names)
    answer = client.get(status["rows"][0]["imageUrl"])
    with Image.open(io.BytesIO(answer.content)) as image:
        assert image.format == "JPEG" and max(image.size) == 1600
        assert b"trainedAlgorithmicMedia" in _xmp(image)
    assert client.get(status["rows"][0]["thumbUrl"]).status_code == 200

    # A row queued for its re-roll keeps its first image when the batch is cancelled.
    batches = client.app.state.batches
    with batches.store.session() as s:
        for row in batches.store.rows(status["jobId"]):
            queued = s.get(Row, row.id)
            assert queued is not None
            queued.state = "queued"
            queued.alternate = {"file": "alternates/x.png"} if row.row == 2 else None
    settled = batches.store.settle_unstarted(
        status["jobId"], RowState.CANCELED, error="Cancelled.", failure=Failure.CANCELED
    )
    assert settled == 1
    states = {row.row: row.state for row in batches.store.rows(status["jobId"])}
    assert states == {2: "queued", 3: "canceled"}


def test_a_single_image_is_checked_made_again_and_delivered_in_its_preset(
    client_for, fake_replicate: FakeReplicate
) -> None:
    fake_replicate.add_fault("grey_background", when="Single")
    client = client_for(fake=fake_replicate)
    car = {"make": "Audi", "model": "Single", "color": "red", "output": "webp"}
    answer = client.post("/api/car-image", json=car)
    assert answer.status_code == 200, answer.text
    image = answer.json()
    assert image["fileName"].endswith(".webp") and image["rerolls"] == 1
    assert image["checks"]["verdict"] == "pass" and not image["needsReview"]
    assert fake_replicate.creation_count("Single") == 2
    served = client.get(image["imageUrl"])
    with Image.open(io.BytesIO(served.content)) as picture:
        assert picture.format == "WEBP" and b"google/imagen-3" in _xmp(picture)


def test_a_reroll_whose_create_answer_is_lost_is_found_not_paid_again(
    client_for, fake_replicate: FakeReplicate
) -> None:
    fake_replicate.add_fault("wrong_colour", when=nth("Lost", 1))
    # The re-roll's prediction is made, but its answer is lost behind a proxy's 502.
    fake_replicate.add_fault("created_then_502", when=nth("Lost", 2))
    client = client_for(fake=fake_replicate)
    status = run_batch(client, csv_of([("Audi", "Lost", "", "", "2024", "red", "white", "1:1")]))
    (row,) = status["rows"]
    assert row["state"] == "done" and row["rerolls"] == 1, row
    assert row["checks"]["verdict"] == "pass"
    assert fake_replicate.creation_count("Lost") == 2, "the lost re-roll was found, not remade"
    assert client.get("/api/usage").json()["images"] == 2


def test_carstudio_batch_sums_up_the_checks_and_lists_the_images_to_look_at(
    tmp_path: Path, fake_replicate: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", fake_replicate.token)
    monkeypatch.setenv("REPLICATE_BASE_URL", fake_replicate.base_url)
    fake_replicate.add_fault("grey_background", when="Grey", times=2)
    fake_replicate.add_fault("blank", when="Blank")
    source = tmp_path / "cars.csv"
    source.write_bytes(csv_of([ROWS[0], ROWS[2], ROWS[4]]))
    out = tmp_path / "cars.zip"
    result = CliRunner().invoke(app, ["batch", str(source), "-o", str(out), "--preset", "webp"])
    assert result.exit_code == 0, result.output
    assert "Checks: 2 of 3 images passed · 2 made again · 1 needs a look" in result.output
    assert "Images to look at" in result.output and "near-white" in result.output
    images, manifest, _ = read_zip(out)
    assert all(name.endswith(".webp") for name in images)
    assert manifest["needsReview"] == 1


def test_carstudio_generate_says_when_an_image_needs_a_look(
    tmp_path: Path, fake_replicate: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", fake_replicate.token)
    monkeypatch.setenv("REPLICATE_BASE_URL", fake_replicate.base_url)
    monkeypatch.setenv("CARSTUDIO_QC_REROLLS", "0")
    fake_replicate.add_fault("wrong_aspect")
    car = ["generate", "--make", "Audi", "--color", "red", "--aspect-ratio", "4:3"]
    result = CliRunner().invoke(app, [*car, "-o", str(tmp_path / "car.png")])
    assert result.exit_code == 0, result.output
    assert "Check this image: The image is 128×128 (about 1:1)" in result.output
    assert fake_replicate.creation_count() == 1


def test_a_reroll_refused_for_want_of_credit_keeps_the_first_image_and_stops_the_batch(
    client_for, fake_replicate: FakeReplicate
) -> None:
    fake_replicate.add_fault("wrong_colour", when=nth("Colour", 1))
    fake_replicate.add_fault("insufficient_credit", when=nth("Colour", 2))
    client = client_for(fake=fake_replicate, concurrency=1)
    status = run_batch(client, csv_of([ROWS[1]]))
    (row,) = status["rows"]
    # The re-roll's create was refused, so no image was made again (nor paid for).
    assert row["state"] == "done" and row["rerolls"] == 0 and row["needsReview"]
    assert row["checks"]["checks"][2]["verdict"] == "fail"  # the first image's own checks
    assert status["stopKind"] == "insufficient_credit"
    assert fake_replicate.creation_count("Colour") == 1  # the refused create made nothing


def test_rows_that_finished_side_by_side_are_compared_before_the_zip(tmp_path: Path) -> None:
    """The check across the batch: each image against every earlier one made for another car;
    an image checked before its twin was done is flagged then."""
    specs = [
        CarSpec(make="Audi", model="A4", color="red"),
        CarSpec(make="Audi", model="A6", color="red"),
        CarSpec(make="Audi", model="A8", color="red"),
    ]
    render_placeholder(specs[0]).save(tmp_path / "a.png")
    render_placeholder(specs[2]).save(tmp_path / "c.png")
    reviewer = Reviewer(rerolls=1, paints=paint_table())
    seen = [
        reviewer.inspect(tmp_path / name, spec=spec, model="preview", preset=OutputPreset.ORIGINAL)
        for name, spec in (("a.png", specs[0]), ("a.png", specs[1]), ("c.png", specs[2]))
    ]
    assert not any(inspection.failed for inspection in seen)  # each checked on its own
    made = [
        MadeImage(f"row {n + 2}", spec.model_dump(), inspection.as_json())
        for n, (spec, inspection) in enumerate(zip(specs, seen, strict=True))
    ]
    changed = duplicates_across(made)
    assert list(changed) == [1]  # the second is the first's picture; the third is its own
    flagged = Inspection.from_json(changed[1])
    assert flagged.failed and "row 2" in flagged.sentence
    same_car = [made[0], MadeImage("row 3", made[0].spec, made[1].checks)]
    assert duplicates_across(same_car) == {}  # the same car may share its picture
    # Two cars alike but for their stock number and VIN (two on one lot) are the same car.
    twin = specs[0].model_copy(update={"stock_number": "A18", "vin": "KNDPMCAC5J7312345"})
    on_the_lot = [made[0], MadeImage("row 3", twin.model_dump(), made[1].checks)]
    assert duplicates_across(on_the_lot) == {}
