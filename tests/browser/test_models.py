"""Choosing the image model on both tabs, and a batch moving off a model Replicate retired."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from carstudio.providers.models import MODELS
from tests.batch_helpers import numbered_cars
from tests.browser.batch_page import (
    THREE_CARS,
    CheckAccessibility,
    MakeSettings,
    ServeApp,
    batch_posts,
    choose_file,
    open_batch_tab,
    record_requests,
    shoot,
    start_batch,
    stat,
    wait_until_finished,
)
from tests.browser.test_single import fill_corolla, open_page
from tests.fakes.replicate import FakeReplicate

pytestmark = pytest.mark.browser

REPLACEMENT = "google/nano-banana-2"
REPLACEMENT_LABEL = MODELS[REPLACEMENT].label  # "Nano Banana 2 (Gemini 3.1 Flash Image)"
MOVED_NOTE = (
    "Imagen 3 is no longer available at Replicate; the remaining rows were made with "
    f"{REPLACEMENT_LABEL}."
)


def create_path(model: str) -> str:
    return f"/v1/models/{model}/predictions"


def creates(fake: FakeReplicate) -> list[str]:
    """The path of every prediction create the fake received, in order."""
    return [
        r.path for r in fake.requests if r.method == "POST" and r.path.startswith("/v1/models/")
    ]


def test_the_single_tab_makes_the_image_with_the_chosen_model(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    fake_replicate: FakeReplicate,
    check_accessibility: CheckAccessibility,
    tmp_path: Path,
) -> None:
    open_page(page, serve_app(make_settings(fake=fake_replicate)))
    select = page.get_by_role("tabpanel", name="Single").get_by_label("Image model")
    # The server's own model is chosen until the person picks another.
    expect(select).to_have_value("google/imagen-3")
    expect(select.locator("option:checked")).to_have_text("Imagen 3 (retiring) · price unknown")
    expect(select.locator(f'option[value="{REPLACEMENT}"]')).to_have_text(
        f"{REPLACEMENT_LABEL} · $0.067 per image"
    )
    check_accessibility(page, "the Single tab with its model select")
    shoot(page, tmp_path / "single-model-select.png")

    fill_corolla(page)
    select.select_option(label="Imagen 4 (retiring) · $0.04 per image")
    with page.expect_response("**/api/car-image") as answer:
        page.get_by_role("button", name="Generate").click()
    assert answer.value.status == 200, answer.value.text()
    assert answer.value.request.post_data_json["image_model"] == "google/imagen-4"
    assert answer.value.json()["model"] == "google/imagen-4"

    card = page.locator("image-card")
    expect(card).to_have_attribute("data-state", "ready")
    expect(card.locator("[data-part=model]")).to_have_text("google/imagen-4")
    assert creates(fake_replicate) == [create_path("google/imagen-4")]
    assert "Corolla" in fake_replicate.creations[0]["prompt"]


def test_a_batch_runs_on_the_model_chosen_beside_start_batch(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    fake_replicate: FakeReplicate,
    check_accessibility: CheckAccessibility,
    tmp_path: Path,
) -> None:
    base_url = serve_app(make_settings(fake=fake_replicate))
    open_batch_tab(page, base_url)
    sent = record_requests(page)
    choose_file(page, THREE_CARS)
    select = page.get_by_role("tabpanel", name="Batch").get_by_label("Image model")
    expect(select).to_have_value("google/imagen-3")
    select.select_option(label="Imagen 4 Fast (retiring) · $0.02 per image")
    check_accessibility(page, "the Batch tab with its model select")
    shoot(page, tmp_path / "batch-model-select.png")

    job_id = start_batch(page)
    post = batch_posts(sent)[0].post_data or ""
    assert re.search(r'name="imageModel"\r\n\r\ngoogle/imagen-4-fast\r\n', post), post

    progress = wait_until_finished(page)
    expect(stat(progress, "done")).to_have_text("3")
    expect(progress.locator("[data-part=subtitle]")).to_contain_text("Imagen 4 Fast")
    expect(progress.locator("[data-part=model-note]")).to_be_hidden()
    assert creates(fake_replicate) == [create_path("google/imagen-4-fast")] * 3
    status = page.request.get(f"{base_url}/api/batch/{job_id}").json()
    assert status["model"] == "google/imagen-4-fast"


def test_a_batch_a_retired_model_stopped_finishes_on_the_offered_model(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    fake_replicate: FakeReplicate,
    check_accessibility: CheckAccessibility,
    tmp_path: Path,
) -> None:
    # One row at a time, so the first car is made before the second meets the retired model.
    fake_replicate.add_fault("model_gone", when="Model-2,")
    open_batch_tab(page, serve_app(make_settings(fake=fake_replicate, concurrency=1)))
    choose_file(page, numbered_cars(4).decode())
    start_batch(page)

    progress = wait_until_finished(page)
    expect(progress.locator("[data-part=badge]")).to_have_text("Stopped")
    expect(progress.locator("[data-part=batch-error]")).to_contain_text("The batch stopped:")
    expect(stat(progress, "done")).to_have_text("1")
    expect(stat(progress, "failed")).to_have_text("3")
    switch = progress.get_by_role("button", name=f"Run the remaining rows with {REPLACEMENT_LABEL}")
    expect(switch).to_be_visible()
    expect(switch).to_have_class(re.compile(r"\bbutton--primary\b"))
    # Retrying would only ask the retired model again.
    expect(progress.get_by_role("button", name="Retry failed rows")).to_be_hidden()
    check_accessibility(page, "a batch a retired model stopped, with its switch button")
    shoot(page, tmp_path / "batch-stopped-by-retired-model.png")
    before_switch = len(creates(fake_replicate))
    assert creates(fake_replicate) == [create_path("google/imagen-3")] * before_switch

    with page.expect_response(lambda r: r.url.endswith("/switch-model")) as answer:
        switch.click()
    assert answer.value.status == 200, answer.value.text()
    assert answer.value.request.post_data_json == {"model": REPLACEMENT}
    assert answer.value.json()["state"] == "running"

    expect(stat(progress, "done")).to_have_text("4", timeout=20_000)
    wait_until_finished(page)
    expect(stat(progress, "failed")).to_have_text("0")
    expect(progress.locator('.bp-row[data-state="done"]')).to_have_count(4)
    expect(progress.locator("[data-part=badge]")).to_have_text("Finished")
    expect(progress.locator("[data-part=batch-error]")).to_be_hidden()
    expect(switch).to_be_hidden()
    expect(progress.locator("[data-part=model-note]")).to_have_text(MOVED_NOTE)
    expect(progress.locator("[data-part=subtitle]")).to_contain_text(REPLACEMENT_LABEL)
    expect(progress.get_by_role("link", name="Download ZIP")).to_be_visible()
    later = creates(fake_replicate)[before_switch:]
    assert later == [create_path(REPLACEMENT)] * 3
    assert fake_replicate.creation_count("Model-1,") == 1, "the finished image was kept"
    shoot(page, tmp_path / "batch-switched-model.png")


def test_a_batch_that_moved_to_the_fallback_model_says_so(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    fake_replicate: FakeReplicate,
    check_accessibility: CheckAccessibility,
    tmp_path: Path,
) -> None:
    # Every Imagen 3 create is refused as a retired model's is; the fallback sends a resolution.
    fake_replicate.add_fault("model_gone", when=lambda i: "resolution" not in i, times=50)
    settings = make_settings(fake=fake_replicate, fallback_model=REPLACEMENT)
    open_batch_tab(page, serve_app(settings))
    choose_file(page, THREE_CARS)
    start_batch(page)

    progress = wait_until_finished(page)
    expect(stat(progress, "done")).to_have_text("3")
    expect(stat(progress, "failed")).to_have_text("0")
    expect(progress.locator("[data-part=badge]")).to_have_text("Finished")
    note = progress.locator("[data-part=model-note]")
    expect(note).to_be_visible()
    expect(note).to_have_text(MOVED_NOTE)
    expect(progress.locator("[data-part=subtitle]")).to_contain_text(REPLACEMENT_LABEL)
    expect(progress.get_by_role("button", name=re.compile("Run the remaining rows"))).to_be_hidden()
    # Every image was made by the fallback (a row that had read the old model before the
    # move may still have asked the retired one, and been refused, later in the log).
    assert creates(fake_replicate).count(create_path(REPLACEMENT)) == 3
    assert fake_replicate.creation_count() == 3
    check_accessibility(page, "a finished batch that moved to the fallback model")
    shoot(page, tmp_path / "batch-moved-to-fallback.png")
