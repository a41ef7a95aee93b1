"""The progress poll sends the last answer's ETag; the server's 304s keep the page as it was."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Response, expect

from tests.browser.batch_page import (
    MakeSettings,
    ServeApp,
    cars,
    choose_file,
    open_batch_tab,
    start_batch,
    stat,
    wait_until_finished,
)
from tests.fakes.replicate import FakeReplicate

pytestmark = pytest.mark.browser
STATUS = re.compile(r"/api/batch/[0-9a-f]{32}$")


def test_polls_that_find_nothing_new_are_304s_and_the_page_keeps_the_last_answer(
    page: Page, serve_app: ServeApp, make_settings: MakeSettings, fake_replicate: FakeReplicate
) -> None:
    fake_replicate.latency = 0.6  # polled every 150 ms: most polls find nothing new
    answers: list[tuple[int, str | None, str | None]] = []

    def seen(response: Response) -> None:
        if STATUS.search(response.url) and response.request.method == "GET":
            sent = response.request.headers.get("if-none-match")
            answers.append((response.status, sent, response.headers.get("etag")))

    page.on("response", seen)
    open_batch_tab(page, serve_app(make_settings(fake=fake_replicate, concurrency=1)))
    choose_file(page, cars(3))
    start_batch(page)
    progress = wait_until_finished(page)
    expect(stat(progress, "done")).to_have_text("3")
    expect(progress.locator(".bp-row")).to_have_count(3)

    assert answers[0][0] == 200 and answers[0][1] is None, "the first poll has nothing to send"
    unchanged = [answer for answer in answers if answer[0] == 304]
    assert unchanged, answers
    last_tag = None
    for status, sent, etag in answers:
        assert status in (200, 304), answers
        if last_tag is not None:
            assert sent == last_tag, "each poll names the last answer it has"
        last_tag = etag
    assert answers[-1][0] == 200, "the finished batch is an answer of its own"
