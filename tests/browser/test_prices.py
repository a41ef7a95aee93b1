"""Prices on the Car Creation page: each model's price in its select, one image's price beside
Generate, the estimate beside Start Batch, and this month's spending in the header."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, Request, expect

from carstudio.accounts.service import Accounts
from carstudio.config import Settings
from carstudio.jobs.store import Store, database_url
from tests.browser.batch_page import (
    THREE_CARS,
    CheckAccessibility,
    MakeSettings,
    NewPage,
    ServeApp,
    choose_file,
    open_batch_tab,
    record_requests,
    shoot,
    start_batch,
    wait_until_finished,
)
from tests.browser.test_sign_in import PASSWORD, sign_in
from tests.browser.test_single import fill_corolla, open_page
from tests.fakes.replicate import FakeReplicate

pytestmark = pytest.mark.browser

IMAGEN_4 = "Imagen 4 (retiring) · $0.04 per image"


def model_select(page: Page, tab: str) -> Locator:
    return page.get_by_role("tabpanel", name=tab).get_by_label("Image model")


def option(select: Locator, name: str) -> Locator:
    return select.locator(f'option[value="{name}"]')


def estimate(page: Page) -> Locator:
    return page.locator("batch-start [data-part=estimate]")


def month_spend(page: Page) -> Locator:
    return page.get_by_test_id("month-spend").locator("dd")


def validate_posts(requests: list[Request]) -> list[str]:
    """The body of every validate request, in order."""
    return [
        r.post_data or ""
        for r in requests
        if r.method == "POST" and r.url.endswith("/api/car-batch/validate")
    ]


def test_every_model_option_on_both_tabs_shows_its_price(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    fake_replicate: FakeReplicate,
    check_accessibility: CheckAccessibility,
    tmp_path: Path,
) -> None:
    open_page(page, serve_app(make_settings(fake=fake_replicate)))
    for tab in ("Single", "Batch"):
        page.get_by_role("tab", name=tab).click()
        select = model_select(page, tab)
        expect(option(select, "google/imagen-4")).to_have_text(IMAGEN_4)
        expect(option(select, "google/imagen-3")).to_have_text(
            "Imagen 3 (retiring) · price unknown"
        )
        # A price below a cent keeps its digits: rounded, 50 images would be 50 cents off.
        expect(option(select, "google/nano-banana")).to_have_text(
            "Nano Banana (Gemini 2.5 Flash Image) · $0.039 per image"
        )
        expect(option(select, "google/nano-banana-pro")).to_have_text(
            "Nano Banana Pro (Gemini 3 Pro Image) · $0.15 per image"
        )
        check_accessibility(page, f"the {tab} tab with priced models")
    shoot(page, tmp_path / "batch-priced-models.png")


def test_the_single_tab_shows_one_images_price_for_the_chosen_model(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    fake_replicate: FakeReplicate,
    check_accessibility: CheckAccessibility,
    tmp_path: Path,
) -> None:
    open_page(page, serve_app(make_settings(fake=fake_replicate)))
    price = page.locator("#single-price")
    generate = page.get_by_role("button", name="Generate")
    # The server's own model, until the person picks another.
    expect(price).to_have_text("Imagen 3 · price unknown")
    expect(generate).to_have_accessible_description("Imagen 3 · price unknown")

    model_select(page, "Single").select_option("google/imagen-4")
    expect(price).to_have_text("Imagen 4 · $0.04 per image")
    expect(generate).to_have_accessible_description("Imagen 4 · $0.04 per image")
    model_select(page, "Single").select_option("google/nano-banana-2")
    expect(price).to_have_text("Nano Banana 2 (Gemini 3.1 Flash Image) · $0.067 per image")
    check_accessibility(page, "the Single tab with one image's price")
    shoot(page, tmp_path / "single-price.png")


def test_prices_set_by_the_operator_are_the_ones_shown(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    fake_replicate: FakeReplicate,
    tmp_path: Path,
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[prices]\n"google/imagen-3" = 0.03\n"google/imagen-4" = 0.035\n')
    open_page(page, serve_app(make_settings(fake=fake_replicate, prices_file=prices)))
    select = model_select(page, "Single")
    expect(option(select, "google/imagen-3")).to_have_text("Imagen 3 (retiring) · $0.03 per image")
    expect(option(select, "google/imagen-4")).to_have_text("Imagen 4 (retiring) · $0.035 per image")
    expect(page.locator("#single-price")).to_have_text("Imagen 3 · $0.03 per image")


def test_the_estimate_beside_start_batch_follows_the_chosen_model(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    fake_replicate: FakeReplicate,
    check_accessibility: CheckAccessibility,
    tmp_path: Path,
) -> None:
    open_batch_tab(page, serve_app(make_settings(fake=fake_replicate)))
    sent = record_requests(page)
    upload = choose_file(page, THREE_CARS)
    expect(estimate(page)).to_have_text("3 images · price unknown for Imagen 3")

    select = model_select(page, "Batch")
    select.select_option("google/imagen-4")
    expect(estimate(page)).to_have_text("3 images · about $0.12 with Imagen 4")
    expect(upload).to_have_attribute("data-state", "ready")
    start = page.get_by_role("button", name="Start Batch")
    expect(start).to_have_accessible_description(
        "Ready to make 3 images. 3 images · about $0.12 with Imagen 4"
    )
    check_accessibility(page, "the Batch tab with an estimate")
    shoot(page, tmp_path / "batch-estimate.png")

    select.select_option("google/imagen-4-fast")
    expect(estimate(page)).to_have_text("3 images · about $0.06 with Imagen 4 Fast")
    # The same request each time, asking for the model now chosen; the file is not re-chosen.
    posts = validate_posts(sent)
    assert len(posts) == 3, posts
    for post, model in zip(posts, ("imagen-3", "imagen-4", "imagen-4-fast"), strict=True):
        assert re.search(rf'name="imageModel"\r\n\r\ngoogle/{model}\r\n', post), post
    assert fake_replicate.creation_count() == 0

    # The batch runs on that model and costs what the estimate said; the same file again
    # costs nothing, since every image is already in the image cache.
    start_batch(page)
    progress = wait_until_finished(page)
    expect(month_spend(page)).to_have_text("$0.06")
    progress.get_by_role("button", name="New batch").click()
    choose_file(page, THREE_CARS)
    expect(select).to_have_value("google/imagen-4-fast")
    expect(estimate(page)).to_have_text("3 images · 3 already made · $0.00 with Imagen 4 Fast")
    check_accessibility(page, "the Batch tab with an estimate of cached images")


def test_the_estimate_leaves_a_skip_choice_as_it_was(
    page: Page, serve_app: ServeApp, make_settings: MakeSettings, fake_replicate: FakeReplicate
) -> None:
    open_batch_tab(page, serve_app(make_settings(fake=fake_replicate)))
    upload = choose_file(page, THREE_CARS + "Kia,Rio,sedan,,1850,red,white,1:1\n")
    expect(upload).to_have_attribute("data-state", "blocked")
    page.get_by_label(re.compile("Skip invalid rows")).check()
    expect(upload).to_have_attribute("data-state", "ready")

    model_select(page, "Batch").select_option("google/imagen-4")
    expect(estimate(page)).to_have_text("3 images · about $0.12 with Imagen 4")
    expect(upload).to_have_attribute("data-state", "ready")
    expect(page.get_by_label(re.compile("Skip invalid rows"))).to_be_checked()


def test_the_preview_says_every_image_is_free(
    page: Page,
    serve_app: ServeApp,
    preview_settings: Settings,
    check_accessibility: CheckAccessibility,
) -> None:
    open_batch_tab(page, serve_app(preview_settings))
    expect(option(model_select(page, "Batch"), "google/imagen-4")).to_have_text(
        "Imagen 4 (retiring) · free in preview mode"
    )
    # The Single tab's note already says its placeholder is free.
    expect(page.locator("#single-price")).to_have_count(0)
    choose_file(page, THREE_CARS)
    expect(estimate(page)).to_have_text("3 images · free (preview)")
    expect(month_spend(page)).to_have_text("$0.00")
    check_accessibility(page, "the Batch tab estimating a preview batch")


def test_the_header_shows_this_months_spending_growing_with_each_image(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    fake_replicate: FakeReplicate,
    check_accessibility: CheckAccessibility,
    tmp_path: Path,
) -> None:
    base_url = serve_app(make_settings(fake=fake_replicate, budget_monthly="50"))
    open_page(page, base_url)
    spend = month_spend(page)
    expect(page.get_by_test_id("month-spend").locator("dt")).to_have_text("This month")
    expect(spend).to_have_text("$0.00 of $50.00")
    check_accessibility(page, "the header with this month's spending")

    fill_corolla(page)
    model_select(page, "Single").select_option("google/imagen-4")
    with page.expect_response("**/api/usage") as usage:
        page.get_by_role("button", name="Generate").click()
    assert usage.value.json()["monthToDate"] == pytest.approx(0.04)
    expect(spend).to_have_text("$0.04 of $50.00")
    shoot(page, tmp_path / "header-month-spend.png")

    open_page(page, base_url)
    expect(spend).to_have_text("$0.04 of $50.00")


def test_each_person_sees_their_own_spending_and_an_admin_everyones(
    new_page: NewPage,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    fake_replicate: FakeReplicate,
) -> None:
    settings = make_settings(fake=fake_replicate, auth="required", budget_monthly="50")
    settings.ensure_dirs()
    store = Store(database_url(None, settings.data_dir))
    try:
        accounts = Accounts(store)
        accounts.add_user("alice", PASSWORD)
        accounts.add_user("bob", PASSWORD)
        accounts.add_user("ada", PASSWORD, admin=True)
    finally:
        store.close()
    base_url = serve_app(settings)

    alice = new_page()
    sign_in(alice, base_url, "alice")
    expect(alice.locator("html")).to_have_attribute("data-ready", "true")
    expect(month_spend(alice)).to_have_text("$0.00")
    fill_corolla(alice)
    model_select(alice, "Single").select_option("google/imagen-4")
    alice.get_by_role("button", name="Generate").click()
    # The budget caps everyone's spending together, so it is set beside everyone's only.
    expect(month_spend(alice)).to_have_text("$0.04")
    expect(month_spend(alice)).to_have_attribute("title", re.compile("your images"))

    bob = new_page()
    sign_in(bob, base_url, "bob")
    expect(month_spend(bob)).to_have_text("$0.00")
    ada = new_page()
    sign_in(ada, base_url, "ada")
    expect(month_spend(ada)).to_have_text("$0.04 of $50.00")
    expect(month_spend(ada)).to_have_attribute("title", re.compile("everyone's images"))
