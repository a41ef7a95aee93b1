"""The image cache: an identical request is answered by the image made before, for nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from carstudio.jobs.service import BatchService
from carstudio.quality.checks import Inspection
from carstudio.quality.paints import paint_table
from carstudio.quality.review import Reviewer
from carstudio.spec import CarSpec
from tests.batch_helpers import numbered_cars, read_zip, wait_finished
from tests.fakes.replicate import FakeReplicate

UPLOAD = {"file": ("cars.csv", numbered_cars(3), "text/csv")}


def run(client: TestClient, **form: str) -> dict:
    job = client.post("/api/car-batch", files=UPLOAD, data=form).json()["jobId"]
    batches: BatchService = client.app.state.batches
    wait_finished(batches, job)
    batches._status_cache.forget(job)
    return client.get(f"/api/batch/{job}").json()


def test_the_same_csv_again_is_made_entirely_from_the_cache(
    client_for, fake_replicate: FakeReplicate
) -> None:
    client = client_for(fake=fake_replicate, model="google/imagen-4")
    first = run(client)
    assert (first["done"], first["cached"]) == (3, 0)
    assert fake_replicate.creation_count() == 3

    estimate = client.post("/api/car-batch/validate", files=UPLOAD).json()["estimate"]
    assert (estimate["images"], estimate["cachedImages"], estimate["total"]) == (3, 3, 0.0)
    second = run(client)
    assert (second["done"], second["cached"]) == (3, 3)
    assert all(row["cached"] for row in second["rows"])
    assert fake_replicate.creation_count() == 3, "nothing was paid for again"
    images, manifest, _ = read_zip(client.app.state.batches.zip_path(second["jobId"]))
    assert len(images) == 3 and manifest["cached"] == 3
    assert all(row["cached"] for row in manifest["rows"])
    usage = client.get("/api/usage").json()
    assert usage["images"] == 6 and usage["usd"] == 0.12  # three paid, three from the cache


def test_make_new_images_skips_the_cache(client_for, fake_replicate: FakeReplicate) -> None:
    client = client_for(fake=fake_replicate)
    run(client)
    estimate = client.post("/api/car-batch/validate", files=UPLOAD, data={"fresh": "true"}).json()[
        "estimate"
    ]
    assert estimate["cachedImages"] == 0
    again = run(client, fresh="true")
    assert again["cached"] == 0
    assert fake_replicate.creation_count() == 6


def test_a_single_image_asked_for_again_comes_from_the_cache(
    client_for, fake_replicate: FakeReplicate
) -> None:
    client = client_for(fake=fake_replicate)
    car = {"make": "Kia", "model": "EV6", "color": "red"}
    first = client.post("/api/car-image", json=car).json()
    second = client.post("/api/car-image", json=car).json()
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["id"] != first["id"]
    assert client.get(second["imageUrl"]).content == client.get(first["imageUrl"]).content
    other_model = client.post("/api/car-image", json=car | {"image_model": "google/imagen-4"})
    fresh = client.post("/api/car-image", json=car | {"fresh": True}).json()
    assert other_model.json()["cached"] is False and fresh["cached"] is False
    assert fake_replicate.creation_count() == 3


def test_the_cache_outlives_a_batchs_retention_and_has_its_own(
    client_for, fake_replicate: FakeReplicate
) -> None:
    client = client_for(fake=fake_replicate, retention_hours=6, cache_days=30)
    batches: BatchService = client.app.state.batches
    first = run(client)
    batches.cleanup(now=time.time() + 7 * 3600)  # the batch's own files are gone
    assert client.get(f"/api/batch/{first['jobId']}").status_code == 410
    assert run(client)["cached"] == 3
    assert fake_replicate.creation_count() == 3
    batches.cache.clock = lambda: time.time() + 31 * 86400
    assert batches.cache.cleanup() == 3
    assert run(client)["cached"] == 0
    assert fake_replicate.creation_count() == 6


def _counting_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every whole check of an image (a decode of its pixels) from now on, by file name."""
    from carstudio.quality import review

    looked: list[str] = []
    inspect = review.inspect_image

    def counted(path: Path, **kwargs: Any) -> Any:
        looked.append(path.name)
        return inspect(path, **kwargs)

    monkeypatch.setattr(review, "inspect_image", counted)
    return looked


def test_a_cached_image_keeps_its_checks_and_is_not_decoded_again(
    client_for, fake_replicate: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_for(fake=fake_replicate, output="marketplace-4x3")
    looked = _counting_decodes(monkeypatch)
    first = run(client)
    assert len(looked) == 3
    second = run(client)
    assert second["cached"] == 3 and len(looked) == 3, "the cache's images were not decoded"
    assert [row["checks"] for row in second["rows"]] == [row["checks"] for row in first["rows"]]
    car = {"make": "Kia", "model": "EV6", "color": "red", "aspect_ratio": "1:1"}
    made = client.post("/api/car-image", json=car).json()
    again = client.post("/api/car-image", json=car | {"output": "original"}).json()
    assert again["cached"] and len(looked) == 4
    # The shape is judged again against the output asked for now: a square image stretched
    # to the marketplace's 4:3 warns, the original does not.
    shape = {"first": made["checks"]["checks"][0], "again": again["checks"]["checks"][0]}
    assert (shape["first"]["verdict"], shape["again"]["verdict"]) == ("warn", "pass"), shape


def test_a_cached_image_is_checked_again_when_its_standard_changed(
    client_for, fake_replicate: FakeReplicate, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from carstudio.quality import review

    looked = _counting_decodes(monkeypatch)
    client = client_for(fake=fake_replicate)
    run(client)
    assert len(looked) == 3
    # A later Car Studio with another threshold: the kept checks no longer stand.
    thresholds = review._THRESHOLDS | {"DUPLICATE_WARN_BITS": "13"}
    monkeypatch.setattr(review, "_THRESHOLDS", thresholds)
    again = run(client)
    assert again["cached"] == 3 and len(looked) == 6, "checked whole"
    # Nor do they when the operator's paint file gives the row's colour another paint.
    paints = tmp_path / "paints.toml"
    paints.write_text('[paints]\n"red" = "#D01010"\n', "utf-8")
    car = CarSpec(make="Kia", model="EV6", color="Metallic Red")
    made = Inspection(checks=(), fingerprint=None)
    standards = {
        Reviewer(rerolls=1, paints=table).kept_with_image(made, spec=car)["standard"]
        for table in (paint_table(), paint_table(paints))
    }
    assert len(standards) == 2
