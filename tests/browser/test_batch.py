"""The Batch tab of the Car Creation page, driven in headless Chromium."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Dialog, Page, expect

from tests.browser.batch_page import (
    FAST_POLL,
    FINISH_TIMEOUT,
    HEADER,
    IMAGES_LOADED,
    INTAKE,
    RECORD_STATUSES,
    THREE_CARS,
    MakeSettings,
    ServeApp,
    batch_posts,
    cars,
    choose_file,
    csv_upload,
    drop_file,
    open_batch_tab,
    record_requests,
    shoot,
    start_batch,
    stat,
    wait_until_finished,
)
from tests.fakes.replicate import FakeReplicate

pytestmark = pytest.mark.browser

INSTRUCTIONS = (
    "Upload a CSV or Excel file (max 50 rows) with columns: make, model, body_style, trim, "
    "year, color, background (white/hub), aspect_ratio (1:1/16:9/9:16/4:3/3:4), vin, "
    "stock_number. The batch runs 3 images in parallel. You\u2019ll receive a ZIP when "
    "finished. Failed rows recorded in failed_rows.json."
)


def test_three_rows_reach_100_percent_and_the_zip_holds_three_images(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    fake_replicate: FakeReplicate,
    tmp_path: Path,
) -> None:
    base_url = serve_app(make_settings(fake=fake_replicate))
    page.goto(base_url + "/" + FAST_POLL)
    expect(page.locator("html")).to_have_attribute("data-ready", "true")
    page.get_by_role("tab", name="Batch").click()
    expect(page).to_have_url(re.compile(r"#batch$"))

    panel = page.get_by_role("tabpanel", name="Batch")
    expect(panel.locator("#batch-instructions")).to_have_text(INSTRUCTIONS)
    template = panel.get_by_role("link", name="Download template CSV")
    expect(template).to_have_attribute("href", "/api/csv-template")
    answer = page.request.get(base_url + "/api/csv-template")
    assert answer.ok and answer.text().startswith("make,model,body_style")
    expect(page.get_by_role("button", name="Start Batch")).to_be_disabled()
    expect(page.locator(f"{INTAKE} [data-part=reason]")).to_have_text(re.compile("Choose a CSV"))
    shoot(page, tmp_path / "batch-1-empty.png")

    upload = choose_file(page, THREE_CARS)
    expect(upload).to_have_attribute("data-state", "ready")
    expect(upload.locator("[data-part=row-count]")).to_have_text("3 rows")
    rows = upload.locator("table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.locator("th")).to_have_text(["2", "3", "4"])
    expect(upload.locator("[data-part=format]")).to_have_text("Read as UTF-8, comma-separated.")
    shoot(page, tmp_path / "batch-2-preview.png")

    job_id = start_batch(page)
    expect(page.get_by_role("heading", name="Batch of 3 cars")).to_be_focused()
    progress = wait_until_finished(page)
    bar = progress.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(bar).to_have_attribute("aria-valuemin", "0")
    expect(bar).to_have_attribute("aria-valuemax", "100")
    expect(stat(progress, "percent")).to_have_text("100%")
    expect(stat(progress, "done")).to_have_text("3")
    expect(stat(progress, "failed")).to_have_text("0")
    expect(stat(progress, "total")).to_have_text("3")
    expect(progress.locator("[data-part=failed-panel]")).to_be_hidden()
    expect(progress.get_by_role("button", name="Cancel batch")).to_be_hidden()
    expect(progress.get_by_role("button", name="Retry failed rows")).to_be_hidden()
    tiles = progress.locator(".bp-row")
    expect(tiles).to_have_count(3)
    expect(tiles.locator("[data-part=row-state]")).to_have_text([re.compile("^Done")] * 3)
    for image in tiles.locator("img").all():
        expect(image).to_have_attribute("loading", "lazy")
    page.wait_for_function(IMAGES_LOADED)
    shoot(page, tmp_path / "batch-3-finished.png")

    # Polling stops once the batch is ready.
    seen = record_requests(page)
    page.wait_for_timeout(600)
    assert not [r for r in seen if f"/api/batch/{job_id}" in r.url and r.method == "GET"]

    with page.expect_download() as saved:
        progress.get_by_role("link", name="Download ZIP").click()
    assert saved.value.suggested_filename == f"carstudio-{job_id}.zip"
    with zipfile.ZipFile(saved.value.path()) as archive:
        names = archive.namelist()
        images = [n for n in names if n.endswith((".png", ".jpg", ".jpeg"))]
        assert len(images) == 3, names
        assert "manifest.json" in names
        assert "failed_rows.json" not in names

    # The Single tab still works, and coming back shows the same batch.
    page.get_by_role("tab", name="Single").click()
    expect(page).to_have_url(re.compile(r"#single$"))
    expect(page.get_by_role("tabpanel", name="Single")).to_be_visible()
    expect(page.get_by_role("button", name="Generate")).to_be_enabled()
    page.get_by_role("tab", name="Batch").click()
    expect(page).to_have_url(re.compile(rf"#batch/{job_id}$"))
    expect(progress).to_be_visible()
    expect(stat(progress, "done")).to_have_text("3")


def test_55_rows_are_rejected_before_submission(
    page: Page, serve_app: ServeApp, make_settings: MakeSettings, tmp_path: Path
) -> None:
    open_batch_tab(page, serve_app(make_settings()))
    sent = record_requests(page)

    upload = choose_file(page, cars(55), "too-many.csv")

    expect(upload).to_have_attribute("data-state", "refused")
    alert = upload.get_by_role("alert")
    expect(alert).to_contain_text("This file has 55 car rows; a batch takes at most 50.")
    start = page.get_by_role("button", name="Start Batch")
    expect(start).to_be_disabled()
    expect(upload.locator("[data-part=reason]")).to_be_visible()
    expect(upload.locator("[data-part=reason]")).to_have_text(re.compile("cannot be used"))
    expect(upload.locator("table")).to_have_count(0)
    start.click(force=True)  # a disabled button does nothing, even when pressed anyway
    page.wait_for_timeout(300)
    shoot(page, tmp_path / "batch-55-rows.png")

    assert [r for r in sent if r.url.endswith("/api/car-batch/validate")], "it was never checked"
    assert batch_posts(sent) == []


def test_an_unknown_header_is_highlighted_and_invalid_cells_explained(
    page: Page, serve_app: ServeApp, make_settings: MakeSettings, tmp_path: Path
) -> None:
    open_batch_tab(page, serve_app(make_settings()))
    text = (
        "Make,Model,Colour,Model Year,Dealer Notes\n"
        "Toyota,Corolla,red,2024,front row\n"
        "Honda,Civic,blue,1800,back lot\n"
        "Ford,Focus,grey,2021,\n"
    )
    upload = drop_file(page, text, "stock.csv")

    expect(upload.locator("[data-part=file-name]")).to_have_text("stock.csv")
    ignored = upload.locator('[data-header="Dealer Notes"]')
    expect(ignored).to_have_attribute("data-status", "ignored")
    expect(ignored).to_have_text(re.compile(r"Dealer Notes\s*extra"))
    expect(ignored).to_have_class(re.compile(r"\bcu-chip--ignored\b"))
    known = upload.locator('[data-header="Make"]')
    highlight = "el => getComputedStyle(el).backgroundColor"
    assert ignored.evaluate(highlight) != known.evaluate(highlight)
    expect(upload.locator('[data-header="Colour"]')).to_have_text("Colour \u2192 color")
    expect(upload.locator('[data-header="Model Year"]')).to_have_text("Model Year \u2192 year")
    expect(upload).to_contain_text(
        "1 column Car Studio does not use for the image is kept in manifest.json."
    )
    expect(upload).to_contain_text(
        "Not in this file: body_style, trim, vin, stock_number (left blank)."
    )
    expect(upload).to_contain_text(
        "No background or aspect_ratio column: every car gets white and 1:1."
    )

    expect(upload.locator("[data-part=row-count]")).to_have_text("3 rows")
    expect(upload.locator("[data-part=invalid-count]")).to_have_text("1 needs fixing")
    bad_row = upload.locator('tr[data-row="3"]')
    expect(bad_row).to_have_class(re.compile(r"\bis-invalid\b"))
    year = bad_row.locator('td[data-column="year"]')
    expect(year).to_have_class(re.compile(r"\bis-invalid\b"))
    expect(year).to_have_attribute("title", re.compile("out of range"))
    expect(year.locator("[data-part=cell-error]")).to_be_visible()
    expect(year.locator("[data-part=cell-error]")).to_contain_text("Year 1800 is out of range")
    expect(upload.locator('tr[data-row="2"] td.is-invalid')).to_have_count(0)

    start = page.get_by_role("button", name="Start Batch")
    expect(start).to_be_disabled()
    reason = upload.locator("[data-part=reason]")
    expect(reason).to_have_text(re.compile("1 row needs fixing"))
    reason_id = reason.get_attribute("id") or "?"
    expect(start).to_have_attribute("aria-describedby", re.compile(rf"(^| ){reason_id}( |$)"))
    shoot(page, tmp_path / "batch-preview-with-errors.png")

    skip = page.get_by_label("Skip invalid rows")
    skip.check()
    expect(start).to_be_enabled()
    expect(reason).to_have_text(re.compile("2 images will be made"))
    skip.uncheck()
    expect(start).to_be_disabled()

    # On a phone the table scrolls inside its frame; the page itself does not.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shoot(page, tmp_path / "batch-preview-narrow.png")


def test_a_refused_row_is_counted_and_its_reason_is_in_failed_rows_json(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    fake_replicate: FakeReplicate,
    tmp_path: Path,
) -> None:
    fake_replicate.add_fault("safety", when="Mustang")
    base_url = serve_app(make_settings(fake=fake_replicate))
    open_batch_tab(page, base_url)
    choose_file(page, THREE_CARS)
    start_batch(page)

    progress = wait_until_finished(page)
    expect(stat(progress, "failed")).to_have_text("1")
    expect(stat(progress, "done")).to_have_text("2")
    expect(progress.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(progress.locator("[data-part=badge]")).to_have_text("Finished, 1 failed")
    panel = progress.locator("[data-part=failed-panel]")
    expect(panel).to_be_visible()
    expect(panel.get_by_role("heading")).to_have_text("1 row failed")
    item = panel.locator("li")
    expect(item).to_have_count(1)
    expect(item).to_have_attribute("data-row", "3")
    expect(item).to_contain_text("Row 3")
    expect(item.locator("[data-part=reason]")).to_have_text(re.compile("safety|sensitive", re.I))
    expect(progress.locator('.bp-row[data-row="3"]')).to_have_attribute("data-state", "failed")
    expect(progress.get_by_role("link", name="Download ZIP")).to_be_visible()
    retry = progress.get_by_role("button", name="Retry failed rows")
    expect(retry).to_be_visible()
    shoot(page, tmp_path / "batch-failed-rows.png")

    link = panel.get_by_role("link", name="failed_rows.json")
    href = link.get_attribute("href")
    assert href
    answer = page.request.get(base_url + href)
    assert answer.ok
    report = answer.json()
    assert [entry["row"] for entry in report] == [3]
    assert re.search("safety|sensitive", report[0]["reason"], re.I)
    assert report[0]["model"] == "Mustang"
    shown = item.locator("[data-part=reason]").text_content()
    assert shown == report[0]["reason"]
    # The same row in the file's own columns, with its reason, to fix and upload again.
    table = panel.get_by_role("link", name="failed_rows.csv").get_attribute("href")
    assert table == href.replace(".json", ".csv")
    lines = page.request.get(base_url + table).text().lstrip("\ufeff").splitlines()
    assert lines[0] == HEADER.strip() + ",reason"
    assert lines[1].startswith("Ford,Mustang,coupe,GT,2023,blue,hub,16:9,")

    # The fault fired once; a retry makes the image.
    retry.click()
    expect(stat(progress, "failed")).to_have_text("0", timeout=FINISH_TIMEOUT)
    wait_until_finished(page)
    expect(stat(progress, "done")).to_have_text("3")
    expect(panel).to_be_hidden()
    expect(retry).to_be_hidden()
    expect(progress.locator("[data-part=badge]")).to_have_text("Finished")
    shoot(page, tmp_path / "batch-retried.png")


def test_a_reload_mid_batch_resumes_the_same_job(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    fake_replicate: FakeReplicate,
    tmp_path: Path,
) -> None:
    fake_replicate.latency = 0.8
    # Every status the page shows, recorded afresh in each document (so after the reload too).
    page.add_init_script(RECORD_STATUSES)
    open_batch_tab(page, serve_app(make_settings(fake=fake_replicate)))
    choose_file(page, cars(6))
    job_id = start_batch(page)
    progress = page.locator("batch-progress")
    expect(progress).to_have_attribute("data-state", "running")
    expect(progress.locator(".bp-row")).to_have_count(6)
    expect(progress.locator("[data-part=eta]")).to_have_text(re.compile(r"Estimating|About|A few"))
    expect(progress.get_by_role("button", name="Cancel batch")).to_be_visible()
    expect(progress.locator(".bp-row.is-active").first).to_be_visible()
    shoot(page, tmp_path / "batch-running.png")

    page.reload()
    page.wait_for_function("() => window.statusesSeen && window.statusesSeen.length > 0")
    status = page.evaluate("window.statusesSeen[0]")
    assert status["jobId"] == job_id
    assert status["state"] == "running" and status["percent"] < 100, status

    expect(page).to_have_url(re.compile(rf"\?poll=150#batch/{job_id}$"))
    expect(page.get_by_role("tab", name="Batch")).to_have_attribute("aria-selected", "true")
    expect(page.locator(INTAKE)).to_be_hidden()
    expect(progress).to_have_attribute("job-id", job_id)
    expect(progress.get_by_role("progressbar")).to_have_attribute(
        "aria-valuenow", re.compile(r"^\d+$")
    )
    wait_until_finished(page)
    expect(progress.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(stat(progress, "done")).to_have_text("6")
    expect(stat(progress, "eta")).to_have_text(re.compile(r"second|min"))
    assert len(fake_replicate.creations) == 6  # nothing was submitted twice

    # "New batch" goes back to the drop-zone and drops the id from the address.
    progress.get_by_role("button", name="New batch").click()
    expect(page.locator(INTAKE)).to_be_visible()
    expect(progress).to_be_hidden()
    expect(page).to_have_url(re.compile(r"#batch$"))
    expect(page.locator(f"{INTAKE} [data-part=zone]")).to_be_focused()


def test_cancel_stops_the_rows_that_have_not_started(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    fake_replicate: FakeReplicate,
    tmp_path: Path,
) -> None:
    fake_replicate.latency = 0.8
    open_batch_tab(page, serve_app(make_settings(fake=fake_replicate)))
    choose_file(page, cars(6))
    start_batch(page)
    progress = page.locator("batch-progress")
    cancel = progress.get_by_role("button", name="Cancel batch")
    with page.expect_response(lambda r: r.url.endswith("/cancel")) as answer:
        cancel.click()
    assert answer.value.status == 200, answer.value.text()

    wait_until_finished(page)
    expect(progress.locator("[data-part=badge]")).to_have_text("Cancelled")
    expect(cancel).to_be_hidden()
    expect(progress.locator('.bp-row[data-state="canceled"]').first).to_be_visible()
    failed_title = progress.locator("[data-part=failed-panel]").get_by_role("heading")
    expect(failed_title).to_have_text(re.compile("cancelled$"))
    done = int(stat(progress, "done").inner_text())
    failed = int(stat(progress, "failed").inner_text())
    assert done + failed == 6 and failed >= 1
    expect(progress.get_by_role("link", name="Download ZIP")).to_be_visible()
    # Cancelled rows cannot be retried, so the page does not offer it.
    page.wait_for_timeout(300)
    expect(progress.get_by_role("button", name="Retry failed rows")).to_be_hidden()
    shoot(page, tmp_path / "batch-cancelled.png")


def test_csv_cells_are_shown_as_text_and_never_run(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    tmp_path: Path,
) -> None:
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    open_batch_tab(page, serve_app(make_settings()))
    sent = record_requests(page)
    image_tag = "<img src=x onerror=alert(1)>"
    script_tag = "<script>alert(2)</script>"
    text = (
        "make,model,year,Notes <b onmouseover=alert(3)>\n"
        f'"{image_tag}",Civic,2024,\n'
        f"{script_tag},Golf,1800,\n"
    )
    upload = choose_file(page, text, "tricky.csv")

    expect(upload.locator('tr[data-row="2"] td[data-column="make"]')).to_have_text(image_tag)
    expect(upload.get_by_text(image_tag, exact=True)).to_be_visible()
    expect(upload.get_by_text(script_tag, exact=True)).to_be_visible()
    expect(upload.locator('[data-status="ignored"]')).to_contain_text("<b onmouseover=alert(3)>")
    page.get_by_label("Skip invalid rows").check()
    start_batch(page)
    post = batch_posts(sent)[0]
    assert 'name="skipInvalid"' in (post.post_data or "")
    assert "true" in (post.post_data or "")

    progress = wait_until_finished(page)
    expect(progress.locator('.bp-row[data-row="2"] [data-part=row-title]')).to_contain_text(
        image_tag
    )
    failed = progress.locator("[data-part=failed-list] li")
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text(script_tag)
    page.wait_for_function(IMAGES_LOADED)
    page.mouse.move(10, 10)
    shoot(page, tmp_path / "batch-xss.png")

    assert dialogs == []
    assert page.locator("img[src='x'], b[onmouseover]").count() == 0
    # The page's own inline JSON (the field registry) is data, never run; nothing else is inline.
    injected = page.evaluate(
        "Array.from(document.scripts).filter(s => !s.src && s.type !== 'application/json').length"
    )
    assert injected == 0


def test_a_file_over_5_mb_is_refused_without_sending_it(
    page: Page, serve_app: ServeApp, make_settings: MakeSettings, tmp_path: Path
) -> None:
    open_batch_tab(page, serve_app(make_settings()))
    sent = record_requests(page)
    row = "Toyota,Corolla,sedan,XSE,2024,red,white,1:1\n"
    big = HEADER + row * ((5 * 1024 * 1024) // len(row) + 1)
    assert len(big.encode()) > 5 * 1024 * 1024

    upload = choose_file(page, big, "huge.csv")

    expect(upload).to_have_attribute("data-state", "refused")
    expect(upload.get_by_role("alert")).to_contain_text("the limit is 5 MB")
    expect(page.get_by_role("button", name="Start Batch")).to_be_disabled()
    page.wait_for_timeout(200)
    assert [r.url for r in sent if "/api/" in r.url] == []
    shoot(page, tmp_path / "batch-too-large.png")


def test_the_drop_zone_opens_the_file_chooser_by_click_and_keyboard(
    page: Page, serve_app: ServeApp, make_settings: MakeSettings
) -> None:
    open_batch_tab(page, serve_app(make_settings()))
    expect(
        page.get_by_role("button", name=re.compile("Drop your CSV or Excel file here"))
    ).to_be_visible()
    zone = page.locator(f"{INTAKE} [data-part=zone]")
    expect(zone).to_have_attribute("tabindex", "0")

    upload = page.locator(INTAKE)
    # Each chooser is answered before the next opens, as a person would.
    for how, name in (("click", "clicked.csv"), ("Enter", "enter.csv"), (" ", "space.csv")):
        with page.expect_file_chooser() as chooser:
            if how == "click":
                zone.click()
            else:
                zone.focus()
                page.keyboard.press(how)
        assert not chooser.value.is_multiple()
        chooser.value.set_files(csv_upload(THREE_CARS, name))
        expect(upload).to_have_attribute("data-state", "ready")
        expect(upload.locator("[data-part=file-name]")).to_have_text(name)
    expect(page.get_by_role("button", name="Start Batch")).to_be_enabled()


def test_an_unknown_batch_link_says_so(
    page: Page, serve_app: ServeApp, make_settings: MakeSettings
) -> None:
    open_batch_tab(page, serve_app(make_settings()), FAST_POLL + "#batch/" + "0" * 32)
    progress = page.locator("batch-progress")
    expect(progress).to_have_attribute("data-state", "gone")
    expect(progress.locator("[data-part=gone]")).to_contain_text("There is no batch with that id.")
    progress.get_by_role("button", name="Start a new batch").click()
    expect(page.locator(INTAKE)).to_be_visible()
    expect(page).to_have_url(re.compile(r"#batch$"))


# --- real inventory exports -------------------------------------------------------------------

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def test_an_excel_export_goes_through_the_batch_tab(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    check_accessibility: Callable[[Page, str], None],
    tmp_path: Path,
) -> None:
    from tests.fixtures.inventory.workbooks import german_export

    open_batch_tab(page, serve_app(make_settings()))
    upload = page.locator(INTAKE)
    upload.locator("input[type=file]").set_input_files(
        {"name": "bestand.xlsx", "mimeType": XLSX_TYPE, "buffer": german_export()}
    )
    expect(upload).to_have_attribute("data-state", "ready")
    expect(upload.locator("[data-part=format]")).to_have_text(
        "Read as Excel workbook, sheet \u201cFahrzeuge\u201d."
    )
    expect(upload.locator("[data-part=row-count]")).to_have_text("3 rows")
    expect(upload.locator('[data-header="Marke"]')).to_have_text("Marke \u2192 make")
    expect(upload.locator('[data-header="FIN"]')).to_have_text("FIN \u2192 vin")
    expect(upload.locator('[data-header="Farbe Innen"]')).to_have_attribute(
        "data-status", "ignored"
    )
    notices = upload.locator("[data-part=notice-list] li")
    expect(notices).to_have_text(
        [re.compile("\u201cFarbe Innen\u201d looks like a colour column but was not used")]
    )
    first = upload.locator('tr[data-row="2"]')
    expect(first.locator('td[data-column="year"]')).to_have_text("2020")
    expect(first.locator('td[data-column="stock_number"]')).to_have_text("4711")
    expect(first.locator("[data-part=image-name]")).to_have_text(
        re.compile("4711_WVWZZZAUZLW012345_volkswagen-golf-2020-limousine-life-white")
    )
    check_accessibility(page, "the preview of an Excel export")
    shoot(page, tmp_path / "batch-xlsx-preview.png")

    start_batch(page)
    progress = wait_until_finished(page)
    expect(stat(progress, "done")).to_have_text("3")
    tile = progress.locator('.bp-row[data-row="2"]')
    expect(tile.locator("[data-part=row-identity]")).to_have_text(
        "Stock number 4711 \u00b7 VIN WVWZZZAUZLW012345"
    )
    page.wait_for_function(IMAGES_LOADED)
    check_accessibility(page, "a finished batch from an Excel export")
    shoot(page, tmp_path / "batch-xlsx-finished.png")
    with page.expect_download() as saved:
        progress.get_by_role("link", name="Download ZIP").click()
    with zipfile.ZipFile(saved.value.path()) as archive:
        images = sorted(n for n in archive.namelist() if n.endswith(".png"))
    assert [name.split("_")[0] for name in images] == ["4711", "4712", "4713"]


def test_a_file_barely_understood_starts_only_once_confirmed(
    page: Page, serve_app: ServeApp, make_settings: MakeSettings
) -> None:
    open_batch_tab(page, serve_app(make_settings()))
    # Czech headers: only "Model" is understood, so every image would show nothing else.
    text = "Značka,Model,Rok výroby,Barva,Karoserie\nŠkoda,Octavia,2021,Bílá,Kombi\n"
    upload = choose_file(page, text, "sklad.csv")
    start = page.get_by_role("button", name="Start Batch")
    expect(start).to_be_disabled()
    expect(upload.locator("[data-part=reason]")).to_have_text(
        re.compile("^Only the model was understood")
    )
    confirm = page.get_by_label("The columns are right: make the images anyway")
    confirm.check()
    expect(start).to_be_enabled()
    expect(upload.locator("[data-part=reason]")).to_have_text("Ready to make 1 image.")


def test_the_file_names_can_follow_a_template_of_the_batch(
    page: Page, serve_app: ServeApp, make_settings: MakeSettings
) -> None:
    open_batch_tab(page, serve_app(make_settings()))
    text = "Stock #,Make,Model\nA17,Kia,Sorento\nA18,Kia,Sorento\n"
    names = page.get_by_label("File names")
    names.fill("{model}/{colour}")
    upload = choose_file(page, text, "lot.csv")
    expect(upload).to_have_attribute("data-state", "refused")
    expect(upload.locator("[data-part=alert]")).to_contain_text("The file-name template")
    # Corrected, the names are checked again once typing pauses: no need to choose the file again.
    names.fill("{model}-{stock_number}")
    expect(upload).to_have_attribute("data-state", "ready")
    expect(upload.locator("[data-part=image-name]")).to_have_text(
        [re.compile("sorento-A17"), re.compile("sorento-A18")]
    )
    start_batch(page)
    progress = wait_until_finished(page)
    with page.expect_download() as saved:
        progress.get_by_role("link", name="Download ZIP").click()
    with zipfile.ZipFile(saved.value.path()) as archive:
        assert sorted(n for n in archive.namelist() if n.endswith(".png")) == [
            "sorento-A17.png",
            "sorento-A18.png",
        ]
