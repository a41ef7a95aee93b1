"""A progress poll of a batch read a moment ago is answered before routing (`web/polls.py`): a
304 when it finds nothing new, else the answer, each exactly what the route itself would
answer; every other request reaches the route."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from carstudio.jobs.service import BatchService
from carstudio.web.batch_api import progress_headers
from carstudio.web.polls import ProgressPolls
from tests.batch_helpers import numbered_cars, wait_until
from tests.test_accounts import server, sign_in, signed_settings  # noqa: F401 - fixtures

UPLOAD = {"file": ("cars.csv", numbered_cars(2), "text/csv")}


def finished_batch(client: TestClient) -> tuple[str, str]:
    """A finished batch's id and the ETag of its progress answer."""
    job = client.post("/api/car-batch", files=UPLOAD).json()["jobId"]
    wait_until(lambda: bool(client.get(f"/api/batch/{job}").json()["zipUrl"]))
    return job, client.get(f"/api/batch/{job}").headers["etag"]


class Route:
    """What lies behind the polls' middleware: records what reaches it, answers 200."""

    def __init__(self) -> None:
        self.reached: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.reached.append(f"{scope['method']} {scope['path']}")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def ask(
    polls: ProgressPolls, app: Any, path: str, *, method: str = "GET", etag: str | None = None
) -> tuple[int, dict[str, str]]:
    headers = [(b"host", b"testserver")]
    if etag is not None:
        headers.append((b"if-none-match", etag.encode()))
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "app": app,
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(polls(scope, receive, send))
    start = sent[0]
    return start["status"], {
        name.decode(): value.decode() for name, value in start.get("headers", [])
    }


def test_polls_of_a_recent_answer_are_answered_before_routing_and_the_rest_reach_the_route(
    client_for,
) -> None:
    client = client_for()
    job, etag = finished_batch(client)
    batches: BatchService = client.app.state.batches  # type: ignore[attr-defined]
    route = Route()
    polls = ProgressPolls(route, batches=batches)
    status = f"/api/batch/{job}"

    expected = {name.lower(): value for name, value in progress_headers(etag).items()}
    assert ask(polls, client.app, status, etag=etag) == (304, expected)
    assert ask(polls, client.app, status, etag=f'"other", W/{etag}')[0] == 304
    for changed in (None, '"an-old-answer"'):  # no If-None-Match, or changed since
        code, headers = ask(polls, client.app, status, etag=changed)
        assert (code, headers["etag"], headers["content-type"]) == (200, etag, "application/json")
    assert route.reached == []

    passed_on = [
        ask(polls, client.app, status, etag=etag, method="POST"),
        ask(polls, client.app, f"{status}/failed", etag=etag),  # another route
        ask(polls, client.app, f"/api/batch/{'0' * 32}", etag="*"),  # no such batch: its 404
        ask(polls, client.app, "/api/batch/not-an-id", etag="*"),
    ]
    assert all(answer[0] == 200 for answer in passed_on)
    assert len(route.reached) == len(passed_on)


def test_answers_before_routing_carry_what_the_routes_own_answers_carry(client_for) -> None:
    client = client_for()
    job, etag = finished_batch(client)
    batches: BatchService = client.app.state.batches  # type: ignore[attr-defined]
    for sent in ({"If-None-Match": etag}, {}):
        early = client.get(f"/api/batch/{job}", headers=sent)
        # With no recent answer to hand, the poll goes to the route, which reads the store.
        batches._status_cache.forget(job)
        routed = client.get(f"/api/batch/{job}", headers=sent)
        assert early.status_code == routed.status_code == (304 if sent else 200)
        assert early.content == routed.content
        assert dict(early.headers) == dict(routed.headers)
        assert early.headers["etag"] == etag
        assert early.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in early.headers["content-security-policy"]
    assert early.json()["done"] == 2


def test_signed_in_polls_are_answered_for_their_owner_only(server) -> None:  # noqa: F811
    alice, bob = (sign_in(server(), name) for name in ("alice", "bob"))
    job, etag = finished_batch(alice)
    assert alice.get(f"/api/batch/{job}", headers={"If-None-Match": etag}).status_code == 304
    for stranger in (bob, server()):
        answer = stranger.get(f"/api/batch/{job}", headers={"If-None-Match": etag})
        assert answer.status_code in (401, 404) and answer.content != b""
        assert "error" in answer.json()
