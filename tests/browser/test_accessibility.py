"""Every screen of the Car Creation page passes axe-core with no violations."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from carstudio.config import Settings
from tests.browser.batch_page import (
    FAST_POLL,
    FINISH_TIMEOUT,
    THREE_CARS,
    CheckAccessibility,
    MakeSettings,
    ServeApp,
    cars,
    choose_file,
    drop_file,
    open_batch_tab,
    start_batch,
    stat,
    wait_until_finished,
)
from tests.browser.test_single import fill_corolla, open_page
from tests.fakes.replicate import FakeReplicate

pytestmark = pytest.mark.browser

STOCK_WITH_PROBLEMS = (
    "Make,Model,Colour,Model Year,Dealer Notes\n"
    "Toyota,Corolla,red,2024,front row\n"
    "Honda,Civic,blue,1800,back lot\n"
    "Ford,Focus,grey,2021,\n"
)


def test_the_single_tab_is_accessible_empty_with_a_result_and_with_a_problem(
    page: Page,
    serve_app: ServeApp,
    preview_settings: Settings,
    check_accessibility: CheckAccessibility,
) -> None:
    open_page(page, serve_app(preview_settings))
    check_accessibility(page, "the empty Single tab")

    page.get_by_label("Colour").fill("red")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#field-make-error")).to_have_text(re.compile("make or a model"))
    check_accessibility(page, "the Single tab with a field problem")

    fill_corolla(page)
    page.get_by_role("button", name="Generate").click()
    card = page.locator("image-card")
    expect(card).to_have_attribute("data-state", "ready")
    expect(card).to_have_attribute("data-image", "loaded")
    card.get_by_text("Prompt", exact=True).click()
    check_accessibility(page, "the Single tab with an image")


def test_the_batch_intake_is_accessible_empty_previewed_and_refused(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    check_accessibility: CheckAccessibility,
) -> None:
    base_url = serve_app(make_settings())
    open_batch_tab(page, base_url)
    check_accessibility(page, "the empty Batch tab")

    upload = drop_file(page, STOCK_WITH_PROBLEMS, "stock.csv")
    expect(upload).to_have_attribute("data-state", "blocked")
    expect(upload.locator("[data-part=cell-error]")).to_be_visible()
    check_accessibility(page, "a preview with an unknown column and an invalid row")

    page.get_by_label("Skip invalid rows").check()
    expect(upload).to_have_attribute("data-state", "ready")
    check_accessibility(page, "a preview ready to start, skipping the invalid row")

    upload = choose_file(page, cars(55), "too-many.csv")
    expect(upload).to_have_attribute("data-state", "refused")
    check_accessibility(page, "a refused file")

    open_batch_tab(page, base_url, FAST_POLL + "#batch/" + "0" * 32)
    expect(page.locator("batch-progress")).to_have_attribute("data-state", "gone")
    check_accessibility(page, "an unknown batch link")


def test_a_batch_is_accessible_running_done_with_failed_rows_and_done(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    fake_replicate: FakeReplicate,
    check_accessibility: CheckAccessibility,
) -> None:
    # Slow enough that the running screen holds still while axe reads it.
    fake_replicate.latency = 2.0
    fake_replicate.add_fault("safety", when="Mustang")
    open_batch_tab(page, serve_app(make_settings(fake=fake_replicate)))
    choose_file(page, THREE_CARS)
    start_batch(page)
    progress = page.locator("batch-progress")
    expect(progress).to_have_attribute("data-state", "running")
    expect(progress.locator(".bp-row.is-active").first).to_be_visible()
    check_accessibility(page, "a running batch")

    wait_until_finished(page)
    expect(progress.locator("[data-part=failed-panel]")).to_be_visible()
    expect(progress.locator(".bp-row img").first).to_be_visible()
    check_accessibility(page, "a finished batch with a failed row")

    progress.get_by_role("button", name="Retry failed rows").click()
    expect(stat(progress, "failed")).to_have_text("0", timeout=FINISH_TIMEOUT)
    wait_until_finished(page)
    expect(stat(progress, "done")).to_have_text("3")
    check_accessibility(page, "a finished batch")
