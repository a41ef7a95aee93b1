"""The fake Replicate server behaves like the API facts it is built from."""

from __future__ import annotations

import base64
import io
import re
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.fakes.replicate import FAULT_KINDS, SAFETY_ERROR, FakeReplicate
from tests.waiting import wait_until

IMAGEN3 = "/v1/models/google/imagen-3/predictions"
ROOT = Path(__file__).resolve().parent.parent
_TLS = ssl.create_default_context()


@pytest.fixture(scope="module")
def plain() -> Iterator[httpx.Client]:
    """A client without credentials, for output files and deliberately unauthenticated calls."""
    with httpx.Client(timeout=5) as http:
        yield http


@pytest.fixture
def fake() -> Iterator[FakeReplicate]:
    with FakeReplicate(latency=0.05) as server:
        yield server


@pytest.fixture
def client(fake: FakeReplicate) -> Iterator[httpx.Client]:
    # A shared TLS context spares each client loading the CA bundle (the fake is plain http).
    with httpx.Client(
        base_url=fake.base_url,
        headers={"Authorization": f"Bearer {fake.token}"},
        timeout=5,
        verify=_TLS,
    ) as http:
        yield http


def create(
    client: httpx.Client,
    prompt: str = "a red coupe",
    *,
    path: str = IMAGEN3,
    wait: bool = True,
    **inputs: Any,
) -> httpx.Response:
    headers = {"Prefer": "wait"} if wait else {}
    return client.post(path, json={"input": {"prompt": prompt, **inputs}}, headers=headers)


def poll_until_terminal(client: httpx.Client, prediction_id: str) -> dict[str, Any]:
    def terminal() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/v1/predictions/{prediction_id}").json()
        return body if body["status"] in ("succeeded", "failed", "canceled", "aborted") else None

    return wait_until(terminal, timeout=10, interval=0.01)


def open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# -- auth and validation -----------------------------------------------------------------


@pytest.mark.parametrize("auth", [None, "Bearer r8_wrong", "Token r8_fake_token"])
def test_a_missing_or_wrong_token_is_a_401_problem(
    fake: FakeReplicate, auth: str | None, plain: httpx.Client
) -> None:
    headers = {"Authorization": auth} if auth else {}
    response = plain.post(
        f"{fake.base_url}{IMAGEN3}", json={"input": {"prompt": "x"}}, headers=headers
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "title": "Unauthenticated",
        "detail": "You did not pass a valid authentication token",
        "status": 401,
    }
    assert fake.creations == []
    assert fake.requests[-1].authorized is False
    assert fake.requests[-1].headers.get("authorization") == auth


def test_the_token_is_redacted_in_request_records(
    fake: FakeReplicate, client: httpx.Client
) -> None:
    create(client)
    record = fake.requests[0]
    assert record.authorized
    assert record.headers["authorization"] == "<redacted>"
    assert record.method == "POST" and record.path == IMAGEN3 and record.status == 201
    assert record.body == {"input": {"prompt": "a red coupe"}}


@pytest.mark.parametrize(
    ("path", "inputs", "field"),
    [
        (IMAGEN3, {"aspect_ratio": "2:1"}, "input.aspect_ratio"),
        (IMAGEN3, {"safety_filter_level": "block_none"}, "input.safety_filter_level"),
        ("/v1/models/google/imagen-4/predictions", {"output_format": "gif"}, "input.output_format"),
        # Imagen 3 Fast takes no negative prompt; Imagen 3 takes no output format.
        ("/v1/models/google/imagen-3-fast/predictions", {"negative_prompt": "blur"}, "input"),
        (IMAGEN3, {"output_format": "png"}, "input"),
    ],
)
def test_invalid_inputs_are_a_422_with_invalid_fields(
    fake: FakeReplicate, client: httpx.Client, path: str, inputs: dict[str, str], field: str
) -> None:
    response = create(client, path=path, **inputs)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["title"] == "Input validation failed" and body["status"] == 422
    assert [f["field"] for f in body["invalid_fields"]] == [field]
    assert fake.creations == []


def test_a_missing_prompt_and_an_unknown_body_key_are_422(client: httpx.Client) -> None:
    response = client.post(IMAGEN3, json={"input": {"aspect_ratio": "1:1"}})
    assert response.status_code == 422
    assert response.json()["invalid_fields"][0] == {
        "type": "required",
        "field": "input",
        "description": "prompt is required",
    }
    response = client.post(IMAGEN3, json={"input": {"prompt": "x"}, "version": "abc"})
    assert response.status_code == 422
    assert response.json()["invalid_fields"][0]["field"] == "(root)"


def test_an_unknown_model_is_a_404(client: httpx.Client) -> None:
    response = create(client, path="/v1/models/google/imagen-9/predictions")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Not found"
    assert "google/imagen-9 does not exist" in response.json()["detail"]


# -- lifecycle ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "size"),
    [
        ("1:1", (128, 128)),
        ("16:9", (176, 96)),
        ("9:16", (96, 176)),
        ("4:3", (160, 112)),
        ("3:4", (112, 160)),
    ],
)
def test_create_with_wait_succeeds_and_serves_a_png_of_the_ratio(
    fake: FakeReplicate,
    client: httpx.Client,
    ratio: str,
    size: tuple[int, int],
    plain: httpx.Client,
) -> None:
    response = create(client, aspect_ratio=ratio)
    assert response.status_code == 201
    body = response.json()
    assert re.fullmatch(r"[a-z0-9]{26}", body["id"])
    assert body["status"] == "succeeded"
    assert body["model"] == "google/imagen-3" and body["version"] == "hidden"
    assert body["input"] == {"prompt": "a red coupe", "aspect_ratio": ratio}
    assert body["error"] is None and body["data_removed"] is False and body["source"] == "api"
    assert body["output"] == f"{fake.base_url}/files/{body['id']}.png"
    assert set(body["metrics"]) == {"predict_time", "total_time"}
    assert body["urls"]["get"] == f"{fake.base_url}/v1/predictions/{body['id']}"
    datetime.fromisoformat(body["created_at"])

    download = plain.get(body["output"])
    assert download.headers["content-type"] == "image/png"
    assert int(download.headers["content-length"]) == len(download.content)
    image = open_image(download.content)
    assert image.format == "PNG" and image.size == size
    assert fake.creation_count("red coupe") == 1


def test_create_without_prefer_starts_and_polling_reaches_succeeded(
    fake: FakeReplicate, client: httpx.Client
) -> None:
    fake.latency = 0.2
    response = create(client, wait=False)
    assert response.status_code == 201
    assert response.json()["status"] == "starting" and response.json()["output"] is None
    seen = set()

    def succeeded() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/v1/predictions/{response.json()['id']}").json()
        seen.add(body["status"])
        return body if body["status"] == "succeeded" else None

    body = wait_until(succeeded, timeout=10, interval=0.01)
    assert seen == {"starting", "processing", "succeeded"}
    assert body["output"].endswith(".png")
    assert body["started_at"] <= body["completed_at"]


def test_prefer_wait_n_returns_the_incomplete_prediction_after_n_seconds(
    fake: FakeReplicate, client: httpx.Client
) -> None:
    fake.latency = 3
    started = time.monotonic()
    response = client.post(IMAGEN3, json={"input": {"prompt": "x"}}, headers={"Prefer": "wait=1"})
    assert time.monotonic() - started > 0.9, "the create was held for the second asked for"
    assert response.json()["status"] == "processing" and response.json()["output"] is None
    assert fake.in_flight == 1
    bad = client.post(IMAGEN3, json={"input": {"prompt": "x"}}, headers={"Prefer": "wait=0"})
    assert bad.status_code == 400


def test_the_versioned_endpoint_creates_too(client: httpx.Client) -> None:
    response = client.post(
        "/v1/predictions",
        json={"version": "google/imagen-4-fast", "input": {"prompt": "x", "output_format": "png"}},
        headers={"Prefer": "wait"},
    )
    assert response.status_code == 201
    assert response.json()["model"] == "google/imagen-4-fast"
    assert response.json()["output"].endswith(".png")


def test_imagen_4_defaults_to_jpeg_output(client: httpx.Client, plain: httpx.Client) -> None:
    response = create(client, path="/v1/models/google/imagen-4/predictions", aspect_ratio="16:9")
    download = plain.get(response.json()["output"])
    assert download.headers["content-type"] == "image/jpeg"
    assert open_image(download.content).format == "JPEG"


def test_cancel(fake: FakeReplicate, client: httpx.Client) -> None:
    fake.latency = 30
    created = create(client, wait=False).json()
    canceled = client.post(f"/v1/predictions/{created['id']}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert client.get(f"/v1/predictions/{created['id']}").json()["status"] == "canceled"
    assert fake.in_flight == 0

    fake.latency = 0.01
    done = create(client).json()
    again = client.post(f"/v1/predictions/{done['id']}/cancel")
    assert again.status_code == 200 and again.json()["status"] == "succeeded"
    assert client.post("/v1/predictions/nosuchprediction0000000000/cancel").status_code == 404
    assert client.get("/v1/predictions/nosuchprediction0000000000").status_code == 404


def test_list_is_newest_first_filtered_and_paginated(
    fake: FakeReplicate, client: httpx.Client
) -> None:
    create(client, "before")
    time.sleep(0.01)
    since = datetime.now(UTC)
    ids = [create(client, f"after {n}", wait=False).json()["id"] for n in range(3)]
    fake.page_size = 2
    first = client.get("/v1/predictions", params={"created_after": since.isoformat()}).json()
    assert [p["id"] for p in first["results"]] == ids[::-1][:2]
    assert first["previous"] is None and first["next"]
    second = client.get(first["next"]).json()
    assert [p["id"] for p in second["results"]] == ids[:1]
    assert second["next"] is None
    everything = client.get("/v1/predictions").json()
    assert len(everything["results"]) == 2 and everything["next"]


def test_cancel_after_ends_a_prediction_as_canceled(
    fake: FakeReplicate, client: httpx.Client
) -> None:
    fake.min_cancel_after = 0
    fake.add_fault("never_finishes")
    response = client.post(
        IMAGEN3,
        json={"input": {"prompt": "x"}},
        headers={"Cancel-After": "100ms", "Prefer": "wait"},
    )
    assert response.json()["status"] == "canceled"


def test_data_is_removed_after_retention(plain: httpx.Client) -> None:
    with FakeReplicate(latency=0.01, retention=0.2) as fake:
        auth = {"Authorization": f"Bearer {fake.token}"}
        body = plain.post(
            f"{fake.base_url}{IMAGEN3}", json={"input": {"prompt": "x"}}, headers=auth
        ).json()

        def removed() -> dict[str, Any] | None:
            later: dict[str, Any] = plain.get(
                f"{fake.base_url}/v1/predictions/{body['id']}", headers=auth
            ).json()
            return later if later["data_removed"] else None

        assert wait_until(removed, timeout=10)["output"] is None
        assert plain.get(f"{fake.base_url}/files/{body['id']}.png").status_code == 404


def test_responses_carry_ratelimit_headers(client: httpx.Client) -> None:
    response = create(client)
    assert int(response.headers["ratelimit-remaining"]) == 599
    assert int(response.headers["ratelimit-reset"]) > 0


# -- concurrency accounting --------------------------------------------------------------


def test_peak_in_flight_counts_simultaneous_predictions(
    fake: FakeReplicate, client: httpx.Client
) -> None:
    fake.latency = 0.3
    threads = [threading.Thread(target=create, args=(client, f"car {n}")) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fake.peak_in_flight == 3 and fake.in_flight == 0
    fake.latency = 0.01
    create(client)
    create(client)
    assert fake.peak_in_flight == 3
    assert len(fake.creations) == 5 and fake.creation_count("car ") == 3
    fake.reset()
    assert fake.peak_in_flight == 0 and fake.creations == [] and fake.requests == []


# -- faults ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "title"),
    [
        ("insufficient_credit", 402, "Insufficient credit"),
        ("unauthenticated", 401, "Unauthenticated"),
        ("server_error_500", 500, "Internal Server Error"),
        ("server_error_502", 502, "Bad Gateway"),
        ("server_error_503", 503, "Service Unavailable"),
        ("server_error_504", 504, "Gateway Timeout"),
        ("model_gone", 404, "Not found"),
    ],
)
def test_create_faults_answer_a_problem_and_create_nothing(
    fake: FakeReplicate, client: httpx.Client, kind: str, status: int, title: str
) -> None:
    fake.add_fault(kind)
    response = create(client)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == title and response.json()["status"] == status
    assert fake.creations == [] and fake.predictions == {}
    assert create(client).status_code == 201


@pytest.mark.parametrize("status", [502, 504])
def test_a_create_can_be_made_and_its_answer_lost_behind_a_5xx(
    fake: FakeReplicate, client: httpx.Client, status: int
) -> None:
    fake.add_fault(f"created_then_{status}")
    response = create(client)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert len(fake.creations) == 1 and len(fake.predictions) == 1
    listed = client.get("/v1/predictions").json()["results"]
    assert [item["id"] for item in listed] == list(fake.predictions)


def test_the_list_can_be_throttled_or_fail_once(fake: FakeReplicate, client: httpx.Client) -> None:
    create(client)
    fake.add_fault("list_rate_limit", retry_after=2)
    fake.add_fault("list_500")
    throttled = client.get("/v1/predictions")
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "2"
    assert client.get("/v1/predictions").status_code == 500
    assert len(client.get("/v1/predictions").json()["results"]) == 1


def test_outputs_can_be_served_from_another_host(plain: httpx.Client) -> None:
    with FakeReplicate(latency=0.01, files_host="127.0.0.2") as fake:
        body = httpx.post(
            f"{fake.base_url}{IMAGEN3}",
            json={"input": {"prompt": "a red coupe"}},
            headers={"Authorization": f"Bearer {fake.token}", "Prefer": "wait"},
        ).json()
        assert body["output"].startswith("http://127.0.0.2:")
        image = plain.get(body["output"])
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
        served = [r for r in fake.requests if r.path.startswith("/files/")]
        assert served and served[0].headers["host"].startswith("127.0.0.2:")


def test_rate_limit_with_and_without_retry_after(
    fake: FakeReplicate, client: httpx.Client, plain: httpx.Client
) -> None:
    fake.add_fault("rate_limit")
    fake.add_fault("rate_limit", retry_after=7)
    plain = create(client)
    assert plain.status_code == 429 and "retry-after" not in plain.headers
    assert plain.json()["detail"] == "Request was throttled. Your rate limit resets in ~1s."
    hinted = create(client)
    assert hinted.status_code == 429 and hinted.headers["retry-after"] == "7"
    assert "~7s" in hinted.json()["detail"]
    assert hinted.headers["ratelimit-remaining"] == "0"
    assert fake.creations == []


def test_non_json_5xx(fake: FakeReplicate, client: httpx.Client) -> None:
    fake.add_fault("non_json_5xx")
    response = create(client)
    assert response.status_code == 502
    assert response.headers["content-type"] == "text/html"
    assert response.text == "<html>Bad Gateway</html>"


def test_reset_drops_the_connection(fake: FakeReplicate, client: httpx.Client) -> None:
    fake.add_fault("reset")
    with pytest.raises(httpx.TransportError):
        create(client)
    assert fake.creations == []
    assert create(client).status_code == 201


def test_stall_outlasts_the_client_timeout_and_creates_nothing(
    fake: FakeReplicate, client: httpx.Client
) -> None:
    fake.add_fault("stall", stall=0.5)
    with pytest.raises(httpx.ReadTimeout):
        client.post(IMAGEN3, json={"input": {"prompt": "x"}}, timeout=0.2)
    assert fake.creations == [] and fake.pending_faults == []


@pytest.mark.parametrize(
    ("kind", "message", "status", "error"),
    [
        ("safety", None, "failed", SAFETY_ERROR),
        ("failed", None, "failed", "Prediction failed."),
        ("failed", "Model is unavailable", "failed", "Model is unavailable"),
        ("canceled", None, "canceled", None),
        ("aborted", None, "aborted", None),
    ],
)
def test_outcome_faults_end_the_prediction(
    fake: FakeReplicate,
    client: httpx.Client,
    kind: str,
    message: str | None,
    status: str,
    error: str | None,
) -> None:
    fake.add_fault(kind, message=message)
    response = create(client)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == status and body["error"] == error and body["output"] is None
    assert "metrics" in body
    assert ("started_at" in body) is (kind != "aborted")
    assert fake.creation_count() == 1 and fake.in_flight == 0


def test_processing_with_output(
    fake: FakeReplicate, client: httpx.Client, plain: httpx.Client
) -> None:
    fake.latency = 0.1
    fake.add_fault("processing_with_output")
    body = create(client).json()
    assert body["status"] == "processing" and body["output"].endswith(".png")
    assert plain.get(body["output"]).status_code == 200
    assert fake.in_flight == 1
    assert poll_until_terminal(client, body["id"])["status"] == "succeeded"


def test_data_uri_output(fake: FakeReplicate, client: httpx.Client) -> None:
    fake.add_fault("data_uri")
    body = create(client, aspect_ratio="9:16").json()
    prefix = "data:image/png;base64,"
    assert body["status"] == "succeeded" and body["output"].startswith(prefix)
    image = open_image(base64.b64decode(body["output"].removeprefix(prefix)))
    assert image.size == (96, 176)


def test_never_finishes_until_canceled(fake: FakeReplicate, client: httpx.Client) -> None:
    fake.add_fault("never_finishes")
    body = create(client, wait=False).json()
    time.sleep(0.1)
    assert client.get(f"/v1/predictions/{body['id']}").json()["status"] == "processing"
    assert fake.in_flight == 1
    client.post(f"/v1/predictions/{body['id']}/cancel")
    assert fake.in_flight == 0 and fake.peak_in_flight == 1


def test_poll_faults(fake: FakeReplicate, client: httpx.Client) -> None:
    body = create(client).json()
    fake.add_fault("poll_500")
    fake.add_fault("poll_reset")
    assert client.get(f"/v1/predictions/{body['id']}").status_code == 500
    with pytest.raises(httpx.TransportError):
        client.get(f"/v1/predictions/{body['id']}")
    assert client.get(f"/v1/predictions/{body['id']}").json()["status"] == "succeeded"


def test_file_faults(fake: FakeReplicate, client: httpx.Client, plain: httpx.Client) -> None:
    url = create(client).json()["output"]
    fake.add_fault("output_404")
    fake.add_fault("not_image")
    fake.add_fault("truncated")
    assert plain.get(url).status_code == 404
    not_image = plain.get(url)
    assert not_image.status_code == 200 and not_image.headers["content-type"] == "image/png"
    assert not not_image.content.startswith(b"\x89PNG")
    with pytest.raises(httpx.RemoteProtocolError):
        plain.get(url)
    assert open_image(plain.get(url).content).format == "PNG"


def test_faults_match_by_prompt_or_predicate_and_fire_times(
    fake: FakeReplicate, client: httpx.Client
) -> None:
    fake.add_fault("safety", when="nude", times=2)
    fake.add_fault("failed", when=lambda i: i.get("aspect_ratio") == "3:4")
    assert create(client, "a blue sedan").json()["status"] == "succeeded"
    assert create(client, "a nude beach buggy").json()["status"] == "failed"
    assert (
        create(client, "a blue sedan", aspect_ratio="3:4").json()["error"] == "Prediction failed."
    )
    assert create(client, "nude again").json()["error"] == SAFETY_ERROR
    assert create(client, "nude thrice").json()["status"] == "succeeded"
    assert fake.pending_faults == []
    with pytest.raises(ValueError):
        fake.add_fault("meteor_strike")


def test_every_fault_kind_is_covered() -> None:
    covered = {
        "rate_limit", "insufficient_credit", "unauthenticated", "server_error_500",
        "server_error_502", "server_error_503", "server_error_504", "non_json_5xx", "reset",
        "stall", "model_gone", "safety", "failed", "canceled", "aborted",
        "processing_with_output", "data_uri", "never_finishes", "poll_500", "poll_reset",
        "output_404", "truncated", "not_image", "created_then_502", "created_then_504",
        "list_rate_limit", "list_500",
    }  # fmt: skip
    assert set(FAULT_KINDS) == covered


def test_scripted_pictures_succeed_but_show_the_wrong_thing(
    fake: FakeReplicate, client: httpx.Client, plain: httpx.Client
) -> None:
    prompt = "Professional automotive studio photograph of a red Audi A4, on pure white"
    fake.add_fault("wrong_aspect", when="A4")
    fake.add_fault("blank", when="A6")
    fake.add_fault("duplicate", when="A8")
    fake.add_fault("grey_background", when="Q5")
    good = plain.get(create(client, prompt.replace("A4", "Q3")).json()["output"]).content
    pictures = {
        model: plain.get(create(client, prompt.replace("A4", model)).json()["output"]).content
        for model in ("A8", "A4", "A6", "Q5")
    }
    assert open_image(good).size == (128, 128)
    assert open_image(pictures["A4"]).size == (176, 96)  # 16:9 where 1:1 was asked
    assert open_image(pictures["A6"]).convert("RGB").getcolors(1) is not None, "one colour"
    assert pictures["A8"] == good  # the latest other prompt's picture, byte for byte
    corner = open_image(pictures["Q5"]).convert("RGB").getpixel((0, 0))
    assert corner == (190, 190, 190) and open_image(good).convert("RGB").getpixel((0, 0)) == (
        252, 252, 252
    )  # fmt: skip
    assert fake.pending_faults == []


# -- sizes and process mode --------------------------------------------------------------


def test_image_bytes_makes_outputs_about_that_size(plain: httpx.Client) -> None:
    with FakeReplicate(latency=0.01, image_bytes=300_000) as fake:
        body = plain.post(
            f"{fake.base_url}{IMAGEN3}",
            json={"input": {"prompt": "x", "aspect_ratio": "16:9"}},
            headers={"Authorization": f"Bearer {fake.token}", "Prefer": "wait"},
        ).json()
        data = plain.get(body["output"]).content
        assert 0.9 * 300_000 <= len(data) <= 1.1 * 300_000
        image = open_image(data)
        width, height = image.size
        assert abs(width / height - 1408 / 768) < 0.02
        # As in a photograph, the bytes are image data, not chunks a decoder keeps aside.
        assert sum(len(chunk) for _, chunk in getattr(image, "private_chunks", [])) < 3_000


def test_standalone_process_serves_until_terminated(plain: httpx.Client) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.replicate", "--port", "0", "--token", "r8_proc"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url)
        auth = {"Authorization": "Bearer r8_proc"}
        plain.post(f"{base_url}/_fake/faults", json={"kind": "rate_limit"}, headers=auth)
        first = plain.post(f"{base_url}{IMAGEN3}", json={"input": {"prompt": "x"}}, headers=auth)
        assert first.status_code == 429
        second = plain.post(
            f"{base_url}{IMAGEN3}",
            json={"input": {"prompt": "x"}},
            headers={**auth, "Prefer": "wait"},
        )
        assert second.json()["status"] == "succeeded"
        state = plain.get(f"{base_url}/_fake/state", headers=auth).json()
        assert len(state["creations"]) == 1 and state["peak_in_flight"] == 1
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0


def test_created_after_accepts_a_utc_offset(client: httpx.Client) -> None:
    create(client)
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert (
        len(client.get("/v1/predictions", params={"created_after": since}).json()["results"]) == 1
    )
