"""The image cache on the Car Creation page: an identical image made before is reused for
free and said so, unless "Make new images" is ticked, on both tabs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.batch_page import (
    THREE_CARS,
    CheckAccessibility,
    MakeSettings,
    ServeApp,
    choose_file,
    open_batch_tab,
    record_requests,
    shoot,
    start_batch,
    wait_until_finished,
)
from tests.browser.test_prices import estimate, model_select, validate_posts
from tests.browser.test_single import fill_corolla, open_page
from tests.fakes.replicate import FakeReplicate

pytestmark = pytest.mark.browser

HINT = "Identical images made before are reused for free unless this is ticked."


def fresh_box(page: Page, tab: str) -> Locator:
    return page.get_by_role("tabpanel", name=tab).get_by_role("checkbox", name="Make new images")


def generate(page: Page, *, fresh: bool = False) -> dict[str, object]:
    """Press Generate; return the API answer once the card shows the image."""
    with (
        page.expect_request("**/api/car-image") as sent,
        page.expect_response("**/api/car-image") as answer,
    ):
        page.get_by_role("button", name="Generate").click()
    body = sent.value.post_data_json
    assert body.get("fresh", False) is fresh, body
    result: dict[str, object] = answer.value.json()
    assert answer.value.status == 200, result
    expect(page.locator("image-card")).to_have_attribute("data-state", "ready")
    return result


def test_the_same_car_again_comes_from_earlier_unless_new_images_are_asked_for(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    fake_replicate: FakeReplicate,
    check_accessibility: CheckAccessibility,
    tmp_path: Path,
) -> None:
    open_page(page, serve_app(make_settings(fake=fake_replicate)))
    box = fresh_box(page, "Single")
    expect(box).not_to_be_checked()
    expect(box).to_have_accessible_description(HINT)
    note = page.locator("image-card").get_by_text("From earlier, no charge")
    fill_corolla(page)

    assert generate(page)["cached"] is False
    expect(note).to_be_hidden()
    assert fake_replicate.creation_count() == 1

    assert generate(page)["cached"] is True
    expect(note).to_be_visible()
    assert fake_replicate.creation_count() == 1
    check_accessibility(page, "the Single tab with an image from earlier")
    shoot(page, tmp_path / "single-from-earlier.png")

    box.check()
    assert generate(page, fresh=True)["cached"] is False
    expect(note).to_be_hidden()
    assert fake_replicate.creation_count() == 2
    check_accessibility(page, "the Single tab with Make new images ticked")


def test_the_batch_estimate_counts_images_made_before_unless_new_ones_are_asked_for(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    fake_replicate: FakeReplicate,
    check_accessibility: CheckAccessibility,
    tmp_path: Path,
) -> None:
    open_batch_tab(page, serve_app(make_settings(fake=fake_replicate)))
    model_select(page, "Batch").select_option("google/imagen-4")
    box = fresh_box(page, "Batch")
    expect(box).not_to_be_checked()
    expect(box).to_have_accessible_description(HINT)
    full_price = "3 images · about $0.12 with Imagen 4"
    choose_file(page, THREE_CARS)
    expect(estimate(page)).to_have_text(full_price)
    start_batch(page)
    wait_until_finished(page).get_by_role("button", name="New batch").click()
    assert fake_replicate.creation_count() == 3

    sent = record_requests(page)
    upload = choose_file(page, THREE_CARS)
    expect(estimate(page)).to_have_text("3 images · 3 already made · $0.00 with Imagen 4")
    check_accessibility(page, "the Batch tab with images made before")

    # Ticking the box after the file was checked prices it again, without the cached images.
    box.check()
    expect(estimate(page)).to_have_text(full_price)
    expect(upload).to_have_attribute("data-state", "ready")
    check_accessibility(page, "the Batch tab with Make new images ticked")
    shoot(page, tmp_path / "batch-fresh.png")
    posts = validate_posts(sent)
    assert len(posts) == 2, posts
    assert 'name="fresh"' not in posts[0]
    assert re.search(r'name="fresh"\r\n\r\ntrue\r\n', posts[1]), posts[1]

    with page.expect_request("**/api/car-batch") as submitted:
        start_batch(page)
    assert re.search(r'name="fresh"\r\n\r\ntrue\r\n', submitted.value.post_data or "")
    wait_until_finished(page)
    assert fake_replicate.creation_count() == 6
