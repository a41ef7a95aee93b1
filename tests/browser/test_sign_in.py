"""Signing in and out of the Car Creation page, and Recent batches: each person's own batches,
every batch with sign-in off, driven in headless Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from carstudio.accounts.service import Accounts
from carstudio.config import Settings
from carstudio.jobs.store import Store, database_url
from tests.browser.batch_page import (
    FAST_POLL,
    THREE_CARS,
    CheckAccessibility,
    MakeSettings,
    NewPage,
    ServeApp,
    cars,
    choose_file,
    csv_upload,
    open_batch_tab,
    start_batch,
    stat,
    wait_until_finished,
)

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
MISMATCH = "That user name and password do not match."
NOT_FOUND = "There is no batch with that id."
# An upload whose file part has an empty file name, which Playwright's `multipart` refuses.
BOUNDARY = "carstudio-boundary"
UNNAMED_UPLOAD = (
    f"--{BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="file"; filename=""\r\n'
    "Content-Type: text/csv\r\n\r\n"
    f"{cars(1)}\r\n"
    f"--{BOUNDARY}--\r\n"
)


@pytest.fixture
def signed_settings(make_settings: MakeSettings) -> Settings:
    """Sign-in required, with alice and bob made before Car Studio starts."""
    settings = make_settings(auth="required")
    settings.ensure_dirs()
    store = Store(database_url(None, settings.data_dir))
    try:
        accounts = Accounts(store)
        accounts.add_user("alice", PASSWORD)
        accounts.add_user("bob", PASSWORD)
    finally:
        store.close()
    return settings


def sign_in(page: Page, base_url: str, name: str, password: str = PASSWORD) -> None:
    page.goto(base_url + "/")
    expect(page).to_have_url(base_url + "/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def recent_batches(page: Page) -> Locator:
    return page.locator("recent-batches")


def run_batch(page: Page, text: str, name: str) -> str:
    """Start a batch from the drop-zone, wait for it to finish, and go back to the drop-zone."""
    choose_file(page, text, name)
    job_id = start_batch(page)
    progress = wait_until_finished(page)
    progress.get_by_role("button", name="New batch").click()
    expect(page.locator("#batch-intake")).to_be_visible()
    return job_id


def test_a_stranger_signs_in_with_the_right_password_and_out_again(
    page: Page,
    serve_app: ServeApp,
    signed_settings: Settings,
    check_accessibility: CheckAccessibility,
) -> None:
    base_url = serve_app(signed_settings)
    page.goto(base_url + "/")
    expect(page).to_have_url(base_url + "/login")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_label("User name")).to_be_focused()
    check_accessibility(page, "the empty sign-in page")

    sign_in(page, base_url, "alice", "not her password")
    expect(page).to_have_url(base_url + "/login")
    expect(page.get_by_role("alert")).to_have_text(MISMATCH)
    expect(page).to_have_title(re.compile("^Not signed in"))
    expect(page.get_by_label("User name")).to_have_value("alice")
    expect(page.get_by_label("Password")).to_have_value("")
    expect(page.get_by_label("Password")).to_be_focused()
    check_accessibility(page, "the sign-in page with its error")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(base_url + "/")
    expect(page.locator("html")).to_have_attribute("data-ready", "true")
    expect(page.get_by_role("heading", name="Describe the car")).to_be_visible()
    expect(page.get_by_test_id("account")).to_contain_text("alice")
    assert page.request.get(base_url + "/api/batches").ok

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(base_url + "/login")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.request.get(base_url + "/api/batches").status == 401
    page.goto(base_url + "/#batch")
    expect(page).to_have_url(base_url + "/login#batch")  # a browser keeps the hash on a redirect
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_a_shared_batch_link_opens_that_batch_once_signed_in(
    page: Page, new_page: NewPage, serve_app: ServeApp, signed_settings: Settings
) -> None:
    """Alice opens the link of her batch in a browser where she is not signed in: once
    signed in (after one mistyped password), she is on that batch, not the Single tab."""
    base_url = serve_app(signed_settings)
    sign_in(page, base_url, "alice")
    open_batch_tab(page, base_url)
    job_id = run_batch(page, THREE_CARS, "alice-stock.csv")

    later = new_page()  # another browser: not signed in
    later.goto(f"{base_url}/#batch/{job_id}")
    expect(later).to_have_url(f"{base_url}/login#batch/{job_id}")
    later.get_by_label("User name").fill("alice")
    later.get_by_label("Password").fill("not her password")
    later.get_by_role("button", name="Sign in").click()
    expect(later.get_by_role("alert")).to_have_text(MISMATCH)
    later.get_by_label("Password").fill(PASSWORD)
    later.get_by_role("button", name="Sign in").click()
    expect(later).to_have_url(f"{base_url}/#batch/{job_id}")
    expect(later.locator("batch-progress")).to_contain_text("Finished")


def test_the_sign_in_form_sends_no_one_anywhere_but_a_batch(
    page: Page, serve_app: ServeApp, signed_settings: Settings
) -> None:
    """The form's return address is followed only when it names a batch of this page."""
    base_url = serve_app(signed_settings)
    for return_to in ("https://evil.example/", "//evil.example", "#batch/../../x", "/api"):
        answer = page.request.post(
            base_url + "/login",
            form={"username": "alice", "password": PASSWORD, "return_to": return_to},
            max_redirects=0,
        )
        assert answer.status == 303
        assert answer.headers["location"] == "/", return_to


def test_each_person_lists_and_opens_only_their_own_batches(
    page: Page,
    new_page: NewPage,
    serve_app: ServeApp,
    signed_settings: Settings,
    check_accessibility: CheckAccessibility,
) -> None:
    base_url = serve_app(signed_settings)
    alice = page
    sign_in(alice, base_url, "alice")
    open_batch_tab(alice, base_url)
    expect(recent_batches(alice)).to_be_hidden()  # nothing yet, so no empty box
    job_id = run_batch(alice, THREE_CARS, "alice-stock.csv")

    listed = recent_batches(alice)
    expect(listed).to_be_visible()
    expect(listed.get_by_role("heading", name="Recent batches")).to_be_visible()
    entry = listed.get_by_role("link", name=re.compile("alice-stock.csv"))
    expect(entry).to_have_attribute("href", f"#batch/{job_id}")
    expect(entry).to_contain_text("3/3 done")
    expect(entry.locator("[data-part=badge]")).to_have_text("Finished")
    expect(entry.locator("time")).to_have_text(re.compile(r"\d"))
    check_accessibility(alice, "the Batch tab with recent batches")

    entry.click()
    expect(alice).to_have_url(re.compile(rf"\?poll=150#batch/{job_id}$"))
    progress = alice.locator("batch-progress")
    expect(progress).to_have_attribute("data-state", "ready")
    expect(alice.get_by_role("heading", name="Batch of 3 cars")).to_be_focused()
    expect(stat(progress, "done")).to_have_text("3")
    expect(progress.locator("[data-part=subtitle]")).to_contain_text("alice-stock.csv")
    alice.go_back()
    expect(listed).to_be_visible()

    bob = new_page()
    sign_in(bob, base_url, "bob")
    open_batch_tab(bob, base_url)
    expect(bob.get_by_test_id("account")).to_contain_text("bob")
    bobs_job = run_batch(bob, cars(1), "bob-stock.csv")
    bobs_list = recent_batches(bob).get_by_role("link")
    expect(bobs_list).to_have_count(1)
    expect(bobs_list).to_have_attribute("href", f"#batch/{bobs_job}")
    expect(bobs_list).not_to_contain_text("alice-stock.csv")
    assert bob.request.get(base_url + f"/api/batch/{job_id}").status == 404

    # alice's link, shared with bob, opens nothing of hers.
    bob.goto(base_url + "/" + FAST_POLL + f"#batch/{job_id}")
    bobs_progress = bob.locator("batch-progress")
    expect(bobs_progress).to_have_attribute("data-state", "gone")
    expect(bob.get_by_role("heading", name="This batch is not available")).to_be_visible()
    expect(bobs_progress.locator("[data-part=gone]")).to_contain_text(NOT_FOUND)

    # alice still lists only her own.
    alice.reload()
    expect(recent_batches(alice).get_by_role("link")).to_have_count(1)


def test_with_sign_in_off_recent_batches_lists_every_batch_ten_at_a_time(
    page: Page,
    serve_app: ServeApp,
    make_settings: MakeSettings,
    check_accessibility: CheckAccessibility,
) -> None:
    base_url = serve_app(make_settings())
    open_batch_tab(page, base_url)
    expect(recent_batches(page)).to_be_hidden()
    first = run_batch(page, cars(2), "first.csv")
    links = recent_batches(page).get_by_role("link")
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("href", f"#batch/{first}")
    expect(links).to_contain_text("2/2 done")

    # Ten more from elsewhere (the CLI, another tab), the first from a file with no name.
    unnamed = page.request.post(
        base_url + "/api/car-batch",
        data=UNNAMED_UPLOAD.encode(),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert unnamed.status == 202, unnamed.text()
    for n in range(1, 10):
        answer = page.request.post(
            base_url + "/api/car-batch", multipart={"file": csv_upload(cars(1), f"more-{n}.csv")}
        )
        assert answer.status == 202, answer.text()
    choose_file(page, cars(1))
    job_id = start_batch(page)
    expect(page.get_by_role("heading", name=re.compile("Batch of"))).to_be_focused()
    wait_until_finished(page)
    page.get_by_role("button", name="New batch").click()

    expect(links).to_have_count(10)
    expect(links.first).to_have_attribute("href", f"#batch/{job_id}")
    expect(links.first).to_contain_text("cars.csv")
    more = recent_batches(page).get_by_role("button", name="Show more")
    expect(more).to_be_visible()
    check_accessibility(page, "the Batch tab with a page of recent batches")

    more.click()
    expect(links).to_have_count(12)
    expect(more).to_be_hidden()
    expect(links.last).to_have_attribute("href", f"#batch/{first}")
    expect(links.nth(10)).to_be_focused()
    untitled = recent_batches(page).get_by_role("link", name=re.compile("Untitled CSV"))
    expect(untitled).to_have_count(1)
