"""The Single tab of the Car Creation page, driven in headless Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Request, Route, expect

from carstudio.config import Settings
from tests.browser.batch_page import ServeApp

pytestmark = pytest.mark.browser

COROLLA = {
    "Make": "Toyota",
    "Model": "Corolla",
    "Body style": "sedan",
    "Trim": "XSE",
    "Year": "2024",
    "Colour": "red",
}
IMAGE_LOADED = """() => {
  const img = document.querySelector('image-card img');
  return Boolean(img && img.complete && img.naturalWidth > 0);
}"""
# Records the Generate button's busy state the moment it changes, however short it lasts.
WATCH_BUSY = """() => {
  const button = document.querySelector('#generate-button');
  window.busySeen = [];
  new MutationObserver(() => {
    if (button.getAttribute('aria-busy') === 'true') {
      window.busySeen.push({disabled: button.disabled, label: button.textContent.trim()});
    }
  }).observe(button, {attributes: true, childList: true, subtree: true, characterData: true});
}"""


@pytest.fixture
def fake_replicate() -> Iterator[Any]:
    from tests.fakes.replicate import FakeReplicate

    with FakeReplicate(latency=0.05) as fake:
        yield fake


@pytest.fixture
def replicate_settings(tmp_path: Path, fake_replicate: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        replicate_api_token=fake_replicate.token,
        replicate_base_url=fake_replicate.base_url,
        provider="replicate",
        poll_interval=0.05,
        _env_file=None,
    )


def open_page(page: Page, base_url: str) -> None:
    page.goto(base_url + "/")
    expect(page.locator("html")).to_have_attribute("data-ready", "true")


def fill_corolla(page: Page) -> None:
    for label, value in COROLLA.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_label("Background").select_option("hub")
    page.get_by_label("Aspect ratio").select_option("16:9")


def api_requests(page: Page) -> list[Request]:
    seen: list[Request] = []
    page.on("request", lambda request: seen.append(request) if "/api/" in request.url else None)
    return seen


def generate_and_check_corolla(page: Page) -> dict[str, Any]:
    """Fill in the Corolla, press Generate, and check the card shows it; return the API answer."""
    fill_corolla(page)
    page.evaluate(WATCH_BUSY)
    button = page.get_by_role("button", name="Generate")
    with page.expect_response("**/api/car-image") as answer:
        button.click()
    result = answer.value.json()
    assert answer.value.status == 200, result

    card = page.locator("image-card")
    expect(card).to_have_attribute("data-state", "ready")
    page.wait_for_function(IMAGE_LOADED)

    busy = page.evaluate("window.busySeen")
    assert busy, "the Generate button never showed its busy state"
    assert busy[0] == {"disabled": True, "label": "Generating…"}
    expect(page.locator("#generate-button")).to_be_enabled()
    expect(page.locator("#generate-button")).to_have_attribute("aria-busy", "false")

    image = card.locator("img")
    expect(image).to_have_attribute("alt", re.compile("Toyota Corolla"))
    box = image.bounding_box()
    assert box is not None and box["height"] > 0
    assert box["width"] / box["height"] == pytest.approx(16 / 9, rel=0.02)

    card.get_by_text("Prompt", exact=True).click()
    prompt = card.locator("[data-part=prompt]")
    expect(prompt).to_be_visible()
    expect(prompt).to_contain_text("Toyota")
    expect(card.locator("[data-part=time]")).to_have_text(re.compile(r"^Generated in [\d.]+ s$"))

    download = card.locator("a[download]")
    expect(download).to_have_attribute("href", result["imageUrl"])
    expect(download).to_have_attribute("download", result["fileName"])
    with page.expect_download() as saved:
        download.click()
    assert saved.value.suggested_filename == result["fileName"]
    return result


def test_preview_generates_a_placeholder_into_the_image_card(
    page: Page, serve_app: ServeApp, preview_settings: Settings, tmp_path: Path
) -> None:
    open_page(page, serve_app(preview_settings))
    expect(page.locator("image-card")).to_have_attribute("data-state", "empty")
    expect(page.get_by_test_id("preview-banner")).to_be_visible()
    expect(page.get_by_test_id("preview-banner")).to_contain_text("REPLICATE_API_TOKEN")

    result = generate_and_check_corolla(page)

    assert result["provider"] == "preview"
    expect(page.get_by_test_id("preview-banner")).to_be_visible()
    page.screenshot(path=tmp_path / "single-preview.png", full_page=True)


def test_replicate_generates_through_the_api_without_the_preview_banner(
    page: Page,
    serve_app: ServeApp,
    replicate_settings: Settings,
    fake_replicate: Any,
    tmp_path: Path,
) -> None:
    open_page(page, serve_app(replicate_settings))
    expect(page.get_by_test_id("preview-banner")).to_have_count(0)

    generate_and_check_corolla(page)

    assert len(fake_replicate.creations) == 1
    assert "Corolla" in fake_replicate.creations[0]["prompt"]
    page.screenshot(path=tmp_path / "single-replicate.png", full_page=True)


def test_neither_make_nor_model_is_refused_in_the_page(
    page: Page, serve_app: ServeApp, preview_settings: Settings, tmp_path: Path
) -> None:
    open_page(page, serve_app(preview_settings))
    sent = api_requests(page)

    page.get_by_label("Colour").fill("red")
    page.get_by_role("button", name="Generate").click()

    make = page.get_by_label("Make", exact=True)
    message = page.locator("#field-make-error")
    expect(message).to_have_text(re.compile("make or a model"))
    expect(make).to_have_attribute("aria-invalid", "true")
    expect(make).to_have_attribute("aria-describedby", re.compile(r"\bfield-make-error\b"))
    expect(make).to_be_focused()
    model = page.get_by_label("Model", exact=True)
    expect(model).to_have_attribute("aria-invalid", "true")
    expect(model).to_have_attribute("aria-describedby", "field-make-error")
    expect(page.locator("#field-model-error")).to_be_empty()
    expect(page.get_by_role("alert")).to_contain_text("Check the highlighted")
    page.screenshot(path=tmp_path / "single-missing-make.png", full_page=True)
    assert sent == []

    make.fill("Toyota")
    expect(make).not_to_have_attribute("aria-invalid", "true")
    expect(model).not_to_have_attribute("aria-invalid", "true")
    expect(message).to_be_empty()


def test_a_refused_prompt_is_explained_in_words(
    page: Page,
    serve_app: ServeApp,
    replicate_settings: Settings,
    fake_replicate: Any,
    tmp_path: Path,
) -> None:
    fake_replicate.add_fault("safety", when="Corolla")
    open_page(page, serve_app(replicate_settings))

    fill_corolla(page)
    with page.expect_response("**/api/car-image") as answer:
        page.get_by_role("button", name="Generate").click()
    assert answer.value.status == 422
    sentence = answer.value.json()["error"]

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(sentence)
    expect(alert).to_contain_text(re.compile("safety", re.IGNORECASE))
    card = page.locator("image-card")
    expect(card).to_have_attribute("data-state", "error")
    expect(card.locator("[data-part=error]")).to_have_text(sentence)
    expect(card.locator("img")).to_be_hidden()
    expect(page.get_by_role("button", name="Generate")).to_be_enabled()
    page.screenshot(path=tmp_path / "single-safety.png", full_page=True)


def test_field_problems_from_the_server_appear_beside_the_field(
    page: Page, serve_app: ServeApp, preview_settings: Settings
) -> None:
    open_page(page, serve_app(preview_settings))

    def refuse(route: Route) -> None:
        route.fulfill(
            status=400,
            json={
                "error": "The request is not valid (trim: trim is too long).",
                "details": [{"field": "trim", "message": "trim is too long"}],
            },
        )

    page.route("**/api/car-image", refuse)
    fill_corolla(page)
    page.get_by_role("button", name="Generate").click()

    trim = page.get_by_label("Trim")
    expect(page.locator("#field-trim-error")).to_have_text("Trim is too long")
    expect(trim).to_have_attribute("aria-invalid", "true")
    expect(trim).to_have_attribute("aria-describedby", re.compile(r"\bfield-trim-error\b"))
    expect(page.get_by_role("alert")).to_contain_text("The request is not valid")
    expect(page.locator("image-card")).to_have_attribute("data-state", "error")


def test_tabs_switch_with_the_arrow_keys(
    page: Page, serve_app: ServeApp, preview_settings: Settings, tmp_path: Path
) -> None:
    open_page(page, serve_app(preview_settings))
    single = page.get_by_role("tab", name="Single")
    batch = page.get_by_role("tab", name="Batch")
    expect(single).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tabpanel", name="Single")).to_be_visible()

    single.focus()
    page.keyboard.press("ArrowRight")
    expect(batch).to_be_focused()
    expect(batch).to_have_attribute("aria-selected", "true")
    expect(single).to_have_attribute("aria-selected", "false")
    panel = page.get_by_role("tabpanel", name="Batch")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("Upload a CSV or Excel file (max 50 rows)")
    expect(page.locator("#panel-single")).to_be_hidden()
    page.screenshot(path=tmp_path / "batch-tab.png", full_page=True)

    page.keyboard.press("ArrowRight")  # wraps around
    expect(single).to_be_focused()
    expect(single).to_have_attribute("aria-selected", "true")
    page.keyboard.press("End")
    expect(batch).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Home")
    expect(single).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-batch")).to_be_hidden()


def test_narrow_screens_stack_the_form_above_the_card(
    page: Page, serve_app: ServeApp, preview_settings: Settings, tmp_path: Path
) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    open_page(page, serve_app(preview_settings))
    form = page.locator("car-form").bounding_box()
    card = page.locator("image-card").bounding_box()
    assert form is not None and card is not None
    assert card["y"] >= form["y"] + form["height"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=tmp_path / "single-narrow.png", full_page=True)
