"""Prices on the Car Creation page: each model's price in its select, and one image's price
beside Generate."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from carstudio.config import Settings
from tests.browser.test_batch import shoot
from tests.browser.test_single import open_page
from tests.fakes.replicate import FakeReplicate

ServeApp = Callable[[Settings], str]
MakeSettings = Callable[..., Settings]
CheckAccessibility = Callable[[Page, str], None]

pytestmark = pytest.mark.browser

IMAGEN_4 = "Imagen 4 (retiring) · $0.04 per image"


def model_select(page: Page, tab: str) -> Locator:
    return page.get_by_role("tabpanel", name=tab).get_by_label("Image model")


def option(select: Locator, name: str) -> Locator:
    return select.locator(f'option[value="{name}"]')


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
