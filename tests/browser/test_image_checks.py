"""The image checks on the page: a "Check" badge on a batch tile whose image needs a look, its
sentence on hover and focus, the "Needs a look" filter, the Files choice, and the Single tab's
image card. Driven in headless Chromium against the fake Replicate's scripted pictures."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from carstudio.config import Settings
from tests.browser.batch_page import (
    HEADER,
    CheckAccessibility,
    MakeSettings,
    ServeApp,
    choose_file,
    open_batch_tab,
    shoot,
    start_batch,
    wait_until_finished,
)
from tests.fakes.replicate import FakeReplicate

pytestmark = pytest.mark.browser

CARS = (
    HEADER
    + "Audi,Good,sedan,,2024,Kings Red,white,1:1\n"
    + "Audi,Grey,sedan,,2024,Celestial Silver,white,1:1\n"
    + "Audi,Colour,sedan,,2024,kings red,white,4:3\n"
)


def test_a_tile_that_needs_a_look_says_why_and_the_filter_shows_only_it(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    fake_replicate: FakeReplicate,
    check_accessibility: CheckAccessibility,
    tmp_path: Path,
) -> None:
    fake_replicate.add_fault("grey_background", when="Grey", times=2)  # the re-roll too
    fake_replicate.add_fault("wrong_colour", when="Colour")  # put right by its re-roll
    base_url = serve_app(make_settings(fake=fake_replicate))
    open_batch_tab(page, base_url)
    choose_file(page, CARS)
    page.locator("#batch-output").select_option("webp")
    start_batch(page)
    progress = wait_until_finished(page)

    grey = progress.locator('.bp-row[data-row="3"]')
    badge = grey.get_by_role("button", name="Check")
    expect(badge).to_be_visible()
    expect(progress.locator(".bp-row .bp-check:visible")).to_have_count(1)
    tip = grey.get_by_role("tooltip")
    expect(tip).to_be_hidden()
    badge.focus()
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("near-white")
    expect(badge).to_have_accessible_description(re.compile("near-white"))
    page.mouse.move(0, 0)
    page.keyboard.press("Tab")
    expect(tip).to_be_hidden()
    badge.hover()
    expect(tip).to_be_visible()
    expect(progress.locator('.bp-row[data-row="4"] [data-part=row-state]')).to_contain_text(
        "made again"
    )
    shoot(page, tmp_path / "batch-check-badge.png")

    only = progress.get_by_label(re.compile(r"Needs a look \(1\)"))
    only.check()
    expect(progress.locator(".bp-row:visible")).to_have_count(1)
    expect(grey).to_be_visible()
    check_accessibility(page, "a batch filtered to the images that need a look")
    only.uncheck()
    expect(progress.locator(".bp-row:visible")).to_have_count(3)
    assert fake_replicate.creation_count() == 5  # three cars, two of them made again

    href = progress.get_by_role("link", name="Download ZIP").get_attribute("href")
    answer = page.request.get(base_url + str(href))
    with zipfile.ZipFile(io.BytesIO(answer.body())) as zf:
        images = [n for n in zf.namelist() if n.endswith((".jpg", ".png", ".webp"))]
    assert images and all(name.endswith(".webp") for name in images)
    assert sum(name.startswith("alternates/") for name in images) == 2


def test_the_single_tab_card_says_the_image_was_checked(
    page: Page, serve_app: ServeApp, preview_settings: Settings
) -> None:
    page.goto(serve_app(preview_settings) + "/")
    expect(page.locator("html")).to_have_attribute("data-ready", "true")
    page.get_by_label("Make", exact=True).fill("Audi")
    page.get_by_label("Colour").fill("Kings Red")
    page.locator("#field-output").select_option("webp")
    with page.expect_response("**/api/car-image") as answer:
        page.get_by_role("button", name="Generate").click()
    assert answer.value.json()["fileName"].endswith(".webp")
    card = page.locator("image-card")
    expect(card).to_have_attribute("data-state", "ready")
    chip = card.locator("[data-part=check]")
    expect(chip).to_have_text("Checked")
    expect(chip).to_have_attribute("title", "Every check passed.")
    expect(card.locator("[data-part=check-text]")).to_be_hidden()
    expect(card.locator("a[download]")).to_contain_text("WEBP")
