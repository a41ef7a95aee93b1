"""Cheap progress: `GET /api/batch/{id}` names each answer with an ETag, and a poll that finds
nothing new is a 304 with no body, for the owner only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from carstudio.jobs.progress import StatusCache
from carstudio.jobs.service import BatchService
from tests.batch_helpers import numbered_cars, running_status, wait_until
from tests.fakes.replicate import FakeReplicate
from tests.server_process import ServerProcess
from tests.test_accounts import server, sign_in, signed_settings  # noqa: F401 - fixtures

UPLOAD = {"file": ("cars.csv", numbered_cars(2), "text/csv")}


def finished(client: TestClient, job: str) -> bool:
    return bool(client.get(f"/api/batch/{job}").json()["zipUrl"])


def test_an_unchanged_batch_answers_304_without_a_body_until_a_row_changes(
    client_for, fake_replicate: FakeReplicate
) -> None:
    fake_replicate.add_fault("rate_limit", times=2, retry_after=0.2)  # the first row fails
    client = client_for(fake=fake_replicate, concurrency=1)
    job = client.post("/api/car-batch", files=UPLOAD).json()["jobId"]
    wait_until(lambda: finished(client, job))
    first = client.get(f"/api/batch/{job}")
    etag = first.headers["etag"]
    assert first.status_code == 200 and (first.json()["done"], first.json()["failed"]) == (1, 1)
    assert "no-cache" in first.headers["cache-control"]
    again = client.get(f"/api/batch/{job}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    listed = client.get(f"/api/batch/{job}", headers={"If-None-Match": f'"other", W/{etag}'})
    assert listed.status_code == 304, "a list and a weak tag match too"

    assert client.post(f"/api/batch/{job}/retry-failed").status_code == 200
    wait_until(lambda: finished(client, job))
    after = client.get(f"/api/batch/{job}", headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.json()["done"] == 2
    assert after.headers["etag"] != etag


def test_a_version_change_is_seen_once_the_reused_answer_runs_out(client_for) -> None:
    """The version is read again after the answer's moment of reuse: no stale 304."""
    client = client_for()
    job = client.post("/api/car-batch", files=UPLOAD).json()["jobId"]
    wait_until(lambda: finished(client, job))
    etag = client.get(f"/api/batch/{job}").headers["etag"]
    batches: BatchService = client.app.state.batches  # type: ignore[attr-defined]
    batches.store.set_job(job, source_name="renamed.csv")  # any change counts
    wait_until(
        lambda: client.get(f"/api/batch/{job}", headers={"If-None-Match": etag}).status_code == 200
    )
    assert client.get(f"/api/batch/{job}").json()["source"] == "renamed.csv"


def test_etags_differ_per_user_and_another_users_etag_gets_a_404(server) -> None:  # noqa: F811
    alice, bob, root = (sign_in(server(), name) for name in ("alice", "bob", "root"))
    job = alice.post("/api/car-batch", files=UPLOAD).json()["jobId"]
    wait_until(lambda: finished(alice, job))
    etag = alice.get(f"/api/batch/{job}").headers["etag"]
    assert alice.get(f"/api/batch/{job}", headers={"If-None-Match": etag}).status_code == 304
    stolen = bob.get(f"/api/batch/{job}", headers={"If-None-Match": etag})
    assert stolen.status_code == 404 and "no batch" in stolen.json()["error"]
    assert bob.get(f"/api/batch/{job}", headers={"If-None-Match": "*"}).status_code == 404
    admins = root.get(f"/api/batch/{job}", headers={"If-None-Match": etag})
    assert admins.status_code == 200, "the admin's answer has a tag of its own"
    assert admins.headers["etag"] != etag
    assert (
        root.get(f"/api/batch/{job}", headers={"If-None-Match": admins.headers["etag"]}).status_code
        == 304
    )


def test_a_due_answer_is_looked_at_again_by_one_caller_while_the_others_keep_it() -> None:
    now = [100.0]
    cache = StatusCache(ttl=1.0, clock=lambda: now[0])
    answer = running_status()
    cache.put(answer.id, answer)
    assert cache.get(answer.id) is answer
    now[0] += 1.25  # due, whatever its share of the spread
    assert cache.get(answer.id) is None, "the first caller looks at the store again"
    assert cache.get(answer.id) is answer, "meanwhile the others keep the answer"
    assert cache.last(answer.id) is answer
    cache.forget(answer.id)
    assert cache.get(answer.id) is None and cache.last(answer.id) is None


def test_a_poll_answered_304_leaves_no_line_in_the_access_log(
    tmp_path: Path, server_process: Callable[..., ServerProcess]
) -> None:
    process = server_process(
        {"CARSTUDIO_DATA_DIR": str(tmp_path / "data"), "CARSTUDIO_PROVIDER": "preview"}
    ).start()
    with httpx.Client(base_url=process.url, timeout=10) as http:
        job = http.post("/api/car-batch", files=UPLOAD).json()["jobId"]
        status = f"/api/batch/{job}"

        def unchanged() -> bool:
            etag = http.get(status).headers["etag"]
            return http.get(status, headers={"If-None-Match": etag}).status_code == 304

        wait_until(unchanged)
        assert http.get("/healthz").status_code == 200  # logged after every poll above
    wait_until(lambda: '"GET /healthz HTTP/1.1" 200' in process.log.read_text())
    log = process.log.read_text()
    assert f'"GET {status} HTTP/1.1" 200' in log
    assert '" 304' not in log
