"""Driving the Car Creation page's Batch tab in the browser tests: opening it, choosing or dropping
a file, starting a batch and waiting for it; and the types of the shared browser fixtures."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, Request, expect

from carstudio.config import Settings

# The fixtures of tests/browser/conftest.py, as the tests name their types.
ServeApp = Callable[[Settings], str]
MakeSettings = Callable[..., Settings]
CheckAccessibility = Callable[[Page, str], None]
NewPage = Callable[[], Page]

# Progress is polled every 2 s by default; the page honours ?poll= so these tests run quickly.
FAST_POLL = "?poll=150"
FINISH_TIMEOUT = 20_000
# The drop-zone, intake report and Start Batch; its data-state says where the chosen file stands.
INTAKE = "#batch-intake"
HEADER = "make,model,body_style,trim,year,color,background,aspect_ratio\n"
THREE_CARS = (
    HEADER
    + "Toyota,Corolla,sedan,XSE,2024,red,white,1:1\n"
    + "Ford,Mustang,coupe,GT,2023,blue,hub,16:9\n"
    + "Volkswagen,Golf,hatchback,GTI,2022,white,white,4:3\n"
)
RECORD_STATUSES = """
window.statusesSeen = [];
document.addEventListener("batch-status", (event) => window.statusesSeen.push(event.detail.status));
"""
IMAGES_LOADED = """() => {
  const images = Array.from(document.querySelectorAll('batch-progress .bp-thumb img'));
  return images.length > 0 && images.every((img) => img.complete && img.naturalWidth > 0);
}"""


def csv_upload(text: str, name: str = "cars.csv") -> dict[str, Any]:
    return {"name": name, "mimeType": "text/csv", "buffer": text.encode("utf-8")}


def cars(count: int, model: str = "Corolla") -> str:
    return HEADER + "".join(f"Toyota,{model} {n},sedan,,2024,red,white,1:1\n" for n in range(count))


def open_batch_tab(page: Page, base_url: str, suffix: str = FAST_POLL + "#batch") -> None:
    page.goto(base_url + "/" + suffix)
    expect(page.locator("html")).to_have_attribute("data-ready", "true")
    expect(page.get_by_role("tab", name="Batch")).to_have_attribute("aria-selected", "true")


def choose_file(page: Page, text: str, name: str = "cars.csv") -> Locator:
    """Choose a CSV through the hidden file input and wait for its intake report."""
    upload = page.locator(INTAKE)
    upload.locator("input[type=file]").set_input_files(csv_upload(text, name))
    expect(upload).to_have_attribute("data-state", re.compile("^(ready|blocked|refused)$"))
    return upload


def drop_file(page: Page, text: str, name: str = "cars.csv") -> Locator:
    """Drop a CSV on the drop-zone the way a browser does: a drop event with a DataTransfer."""
    page.eval_on_selector(
        f"{INTAKE} [data-part=zone]",
        """(zone, [text, name]) => {
          const data = new DataTransfer();
          data.items.add(new File([text], name, {type: "text/csv"}));
          for (const type of ["dragenter", "dragover", "drop"]) {
            zone.dispatchEvent(new DragEvent(type, {dataTransfer: data, bubbles: true,
                                                     cancelable: true}));
          }
        }""",
        [text, name],
    )
    upload = page.locator(INTAKE)
    expect(upload).to_have_attribute("data-state", re.compile("^(ready|blocked|refused)$"))
    return upload


def start_batch(page: Page) -> str:
    """Press Start Batch; return the new job id once the page shows its progress."""
    with page.expect_response(lambda r: r.url.endswith("/api/car-batch")) as answer:
        page.get_by_role("button", name="Start Batch").click()
    assert answer.value.status == 202, answer.value.text()
    job_id = answer.value.json()["jobId"]
    expect(page.locator("batch-progress")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"#batch/{job_id}$"))
    return str(job_id)


def wait_until_finished(page: Page) -> Locator:
    progress = page.locator("batch-progress")
    expect(progress).to_have_attribute("data-state", "ready", timeout=FINISH_TIMEOUT)
    return progress


def stat(progress: Locator, name: str) -> Locator:
    return progress.locator(f"[data-part={name}]")


def shoot(page: Page, path: Path) -> None:
    page.screenshot(path=path, full_page=True, animations="disabled")


def record_requests(page: Page) -> list[Request]:
    seen: list[Request] = []
    page.on("request", lambda request: seen.append(request))
    return seen


def batch_posts(requests: list[Request]) -> list[Request]:
    return [r for r in requests if r.method == "POST" and r.url.endswith("/api/car-batch")]
