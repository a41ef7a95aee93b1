"""The HTTP API in process: contract shapes, every error a sentence with a 4xx, no token leaks."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from carstudio.errors import Failure
from carstudio.jobs.states import RowState
from tests.batch_helpers import CARS, csv_of, numbered_cars, read_zip, wait_until
from tests.fakes.replicate import FakeReplicate


@pytest.fixture
def client(client_for) -> TestClient:
    return client_for()


def upload(client: TestClient, data: bytes, path: str = "/api/car-batch", **form: str):
    return client.post(path, files={"file": ("cars.csv", data, "text/csv")}, data=form)


def finished(client: TestClient, job_id: str) -> dict:
    return wait_until(lambda: (b := client.get(f"/api/batch/{job_id}").json())["zipUrl"] and b)


# -- single images ----------------------------------------------------------------------------


def test_car_image_answers_the_contract_and_serves_the_image(client: TestClient) -> None:
    response = client.post(
        "/api/car-image",
        json={"make": "Toyota", "model": "Corolla", "year": 2024, "aspect_ratio": "4:3"},
    )
    assert response.status_code == 200
    body = response.json()
    assert {"id", "imageUrl", "prompt", "model", "elapsedMs"} <= set(body)
    assert body["model"] == "preview" and "Toyota Corolla" in body["prompt"]
    image = client.get(body["imageUrl"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")


def test_car_image_through_replicate(client_for, fake_replicate: FakeReplicate) -> None:
    client = client_for(fake=fake_replicate)
    body = client.post("/api/car-image", json={"make": "Kia", "model": "EV6"}).json()
    assert body["model"] == "google/imagen-3" and body["provider"] == "replicate"
    assert client.get(body["imageUrl"]).content.startswith(b"\x89PNG")
    assert fake_replicate.creation_count("Kia EV6") == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"color": "red"}, "make"),
        ({"make": "Kia", "year": "twenty"}, "year"),
        ({"make": "Kia", "background": "beach"}, "background"),
        ({"make": "Kia", "aspect_ratio": "2:1"}, "aspect_ratio"),
        ({"make": "Kia", "colour": "red"}, "colour"),
        ({"make": ["Kia"]}, "make"),
    ],
)
def test_bad_car_specs_are_400_with_details(client: TestClient, payload: dict, field: str) -> None:
    response = client.post("/api/car-image", json=payload)
    assert response.status_code == 400
    body = response.json()
    assert body["error"].endswith(".") and body["details"][0]["field"] == field


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1,2]", b"null", b'"text"'])
def test_a_body_that_is_not_a_json_object_is_400(client: TestClient, raw: bytes) -> None:
    response = client.post(
        "/api/car-image", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and "error" in response.json()


@pytest.mark.parametrize(
    ("fault", "status", "words"),
    [
        ("safety", 422, "safety filter"),
        ("insufficient_credit", 502, "credit"),
        ("model_gone", 502, "CARSTUDIO_MODEL"),
    ],
)
def test_provider_failures_are_clear_answers(
    client_for, fake_replicate: FakeReplicate, fault: str, status: int, words: str
) -> None:
    fake_replicate.add_fault(fault)
    response = client_for(fake=fake_replicate).post("/api/car-image", json={"make": "Kia"})
    assert response.status_code == status
    assert words in response.json()["error"]


def test_the_token_never_appears_in_answers_or_pages(
    client_for, fake_replicate: FakeReplicate
) -> None:
    client = client_for(fake=fake_replicate)
    fake_replicate.add_fault("unauthenticated")
    answers = [
        client.get("/").text,
        client.get("/healthz").text,
        client.get("/openapi.json").text,
        client.post("/api/car-image", json={"make": "Kia"}).text,
        client.post("/api/car-image", json={"make": "Kia"}).text,
    ]
    assert not any(fake_replicate.token in text for text in answers)


def test_unknown_single_images_are_404(client: TestClient) -> None:
    for path in (
        "/images/abc/def.png",
        "/images/" + "0" * 32 + "/x.png",
        "/images/..%2f..%2fetc/passwd",
    ):
        response = client.get(path)
        assert response.status_code == 404 and "error" in response.json()


def test_health(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"


# -- batches ----------------------------------------------------------------------------------


def test_validate_reports_and_starts_nothing(client: TestClient) -> None:
    data = b"Make,Model,Colour,Body Style,Sunroof\nToyota,Corolla,red,sedan,yes\n,,blue,,\n"
    report = upload(client, data, "/api/car-batch/validate").json()
    assert report["rowCount"] == 2 and report["ok"] is False
    assert report["unknownHeaders"] == ["Sunroof"]
    assert [(h["name"], h["mappedTo"], h["status"]) for h in report["headers"]] == [
        ("Make", "make", "known"),
        ("Model", "model", "known"),
        ("Colour", "color", "mapped"),
        ("Body Style", "body_style", "known"),
        ("Sunroof", None, "ignored"),
    ]
    present = {c["name"]: c["present"] for c in report["columns"]}
    assert present == {
        "make": True,
        "model": True,
        "body_style": True,
        "trim": False,
        "year": False,
        "color": True,
        "vin": False,
        "stock_number": False,
        "background": False,
        "aspect_ratio": False,
    }
    defaults = {c["name"]: c["default"] for c in report["columns"] if c["default"]}
    assert defaults == {"background": "white", "aspect_ratio": "1:1"}
    assert report["rowErrors"][0]["row"] == 3
    assert report["encoding"] == "utf-8" and report["encodingLabel"] == "UTF-8"
    assert report["delimiter"] == "," and report["delimiterLabel"] == "comma-separated"
    assert client.app.state.batches.huey.pending_count() == 0


def test_a_batch_runs_to_a_zip_with_the_contract_fields(client: TestClient) -> None:
    response = upload(client, csv_of(CARS[:3]))
    assert response.status_code == 202
    job_id = response.json()["jobId"]
    body = finished(client, job_id)
    assert (body["total"], body["done"], body["failed"], body["percent"]) == (3, 3, 0, 100)
    assert body["zipUrl"] == f"/downloads/{job_id}.zip"
    assert body["state"] == "ready" and len(body["rows"]) == 3
    row = body["rows"][0]
    assert row["row"] == 2 and row["state"] == "done"
    assert client.get(row["thumbUrl"]).headers["content-type"] == "image/jpeg"
    assert client.get(row["imageUrl"]).content.startswith(b"\x89PNG")
    archive = client.get(body["zipUrl"])
    assert archive.headers["content-type"] == "application/zip"
    images, manifest, failed = read_zip(archive.content)
    assert len(images) == 3 and failed is None


def test_a_batch_with_invalid_rows_is_400_unless_skipped(client: TestClient) -> None:
    data = csv_of([CARS[0], ("", "", "", "", "", "", "", "")]) + b",,,,,red,,\n"
    refused = upload(client, data)
    assert refused.status_code == 400
    assert refused.json()["details"][0]["row"] == 4
    accepted = upload(client, data, skipInvalid="true")
    assert accepted.status_code == 202
    body = finished(client, accepted.json()["jobId"])
    assert (body["done"], body["failed"]) == (1, 1)
    failed = client.get(body["failedRowsUrl"]).json()
    assert failed[0]["row"] == 4 and failed[0]["reason"]


def test_55_rows_are_refused_with_a_sentence(client: TestClient) -> None:
    for path in ("/api/car-batch", "/api/car-batch/validate"):
        response = upload(client, numbered_cars(55), path)
        assert response.status_code == 400
        assert "at most 50" in response.json()["error"]
    assert client.app.state.batches.huey.pending_count() == 0


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"make,model\n",
        b"\x00\x01\x02\x03" * 100,
        b'make,model\n"Toyota,Corolla\n',
        b"PK\x03\x04junk",
    ],
)
def test_files_that_are_not_usable_csv_are_400(client: TestClient, data: bytes) -> None:
    for path in ("/api/car-batch", "/api/car-batch/validate"):
        response = upload(client, data, path)
        assert response.status_code == 400, response.text
        assert response.json()["error"]


def test_missing_file_field_and_wrong_content_type_are_400(client: TestClient) -> None:
    assert client.post("/api/car-batch", data={"x": "1"}).status_code == 400
    response = client.post("/api/car-batch", json={"file": "make,model"})
    assert response.status_code == 400 and "multipart" in response.json()["error"]


def test_over_5_mb_is_413(client: TestClient) -> None:
    big = b"make,model\n" + b"a" * (6 * 1024 * 1024)
    response = upload(client, big)
    assert response.status_code == 413 and "5 MB" in response.json()["error"]


def test_unknown_batch_is_404_with_a_sentence(client: TestClient) -> None:
    for path in ("/api/batch/nope", "/api/batch/" + "a" * 32, "/api/batch/x/failed_rows.json"):
        response = client.get(path)
        assert response.status_code == 404 and response.json()["error"]
    assert client.post("/api/batch/nope/cancel").status_code == 404
    assert client.post("/api/batch/nope/retry-failed").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/downloads/../carstudio.db",
        "/downloads/..%2Fcarstudio.db",
        "/downloads/%2e%2e%2fcarstudio.db",
        "/downloads/carstudio.db",
        "/downloads/queue.db",
        "/downloads/x.zip",
        "/downloads/" + "0" * 32 + ".zip",
        "/downloads/%2Fetc%2Fpasswd",
        "/downloads//etc/passwd",
        "/downloads/images",
    ],
)
def test_downloads_serves_only_job_zips(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "error" in response.json()


def test_retry_and_cancel_conflicts_are_409(client: TestClient) -> None:
    job_id = upload(client, csv_of(CARS[:1])).json()["jobId"]
    finished(client, job_id)
    cancel = client.post(f"/api/batch/{job_id}/cancel")
    assert cancel.status_code == 409 and "already finished" in cancel.json()["error"]
    retry = client.post(f"/api/batch/{job_id}/retry-failed")
    assert retry.status_code == 409 and "no failed rows" in retry.json()["error"]


def test_csv_template_is_a_usable_csv(client: TestClient) -> None:
    response = client.get("/api/csv-template")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    report = upload(client, response.content, "/api/car-batch/validate").json()
    assert report["ok"] and report["rowCount"] >= 3


def test_unknown_paths_and_methods_are_json_sentences(client: TestClient) -> None:
    assert client.get("/api/nothing").json()["error"]
    response = client.delete("/api/car-image")
    assert response.status_code == 405 and response.json()["error"]


def test_openapi_documents_the_contract(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths, components = spec["paths"], spec["components"]["schemas"]

    def answer(path: str, method: str, status: str) -> dict:
        ref = paths[path][method]["responses"][status]["content"]["application/json"]["schema"]
        if ref.get("type") == "array":
            ref = ref["items"]
        return components[ref["$ref"].rsplit("/", 1)[1]]

    car_image = answer("/api/car-image", "post", "200")
    assert {"id", "imageUrl", "prompt", "model", "elapsedMs"} <= set(car_image["required"])
    report = answer("/api/car-batch/validate", "post", "200")
    assert {
        "ok", "rowCount", "headers", "unknownHeaders", "preview", "rowErrors", "encoding",
        "delimiter",
    } <= set(report["required"])  # fmt: skip
    assert set(answer("/api/car-batch", "post", "202")["required"]) == {"jobId", "statusUrl"}
    status = answer("/api/batch/{job_id}", "get", "200")
    assert list(status["properties"])[:5] == ["total", "done", "failed", "percent", "zipUrl"]
    assert {"state", "rows", "etaSeconds", "failedRowsUrl", "retryable"} <= set(status["required"])
    for action in ("cancel", "retry-failed", "switch-model"):
        assert answer(f"/api/batch/{{job_id}}/{action}", "post", "200") == status
    failed_row = answer("/api/batch/{job_id}/failed_rows.json", "get", "200")
    assert {"row", "reason", "status", "kind", "make", "aspect_ratio"} <= set(
        failed_row["properties"]
    )
    # Enumerations come from the one definition of each concept.
    assert set(components["RowState"]["enum"]) == {state.value for state in RowState}
    assert set(components["Failure"]["enum"]) == {kind.value for kind in Failure}
    # Every refusal is the one error shape; FastAPI's 422 shape is never promised.
    for path, operations in paths.items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                assert code != "422" or path == "/api/car-image", (method, path)
                if code.startswith("4"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ApiError"}, (method, path)
    assert "HTTPValidationError" not in components
    assert "multipart/form-data" in paths["/api/car-batch"]["post"]["requestBody"]["content"]


def test_every_json_route_declares_its_answer(client: TestClient) -> None:
    for route in client.app.routes:
        if isinstance(route, APIRoute) and route.path.startswith(("/api/", "/healthz")):
            files = route.response_class is not JSONResponse or route.path.endswith("/thumb")
            assert route.response_model is not None or files, route.path


def test_real_answers_match_the_published_schema(client_for, fake_replicate: FakeReplicate) -> None:
    """Each answer the API gives in a batch's life, checked against /openapi.json."""
    fake_replicate.add_fault("safety", when="Model-2")
    client = client_for(fake=fake_replicate)
    schema = schemathesis.openapi.from_dict(client.get("/openapi.json").json())
    checked: list[str] = []

    def check(method: str, path: str, response: httpx.Response) -> dict:
        schema[path][method].validate_response(response)
        checked.append(f"{method} {path} {response.status_code}")
        return response.json()

    check("POST", "/api/car-image", client.post("/api/car-image", json={"make": "Kia"}))
    check("POST", "/api/car-image", client.post("/api/car-image", json={"colour": "red"}))
    bad = b"make,model,year\nKia,EV6,1800\n"
    check("POST", "/api/car-batch/validate", upload(client, bad, "/api/car-batch/validate"))
    check("POST", "/api/car-batch", upload(client, bad))
    check("POST", "/api/car-batch", upload(client, b"\x89PNG\r\n\x1a\n"))
    accepted = check("POST", "/api/car-batch", upload(client, numbered_cars(3)))
    job = accepted["jobId"]
    check("GET", "/api/batch/{job_id}", client.get(f"/api/batch/{job}"))
    check("POST", "/api/batch/{job_id}/retry-failed", client.post(f"/api/batch/{job}/retry-failed"))
    finished(client, job)
    check("GET", "/api/batch/{job_id}", client.get(f"/api/batch/{job}"))
    failed = client.get(f"/api/batch/{job}/failed_rows.json")
    assert [
        entry["kind"] for entry in check("GET", "/api/batch/{job_id}/failed_rows.json", failed)
    ] == ["safety"]
    check("POST", "/api/batch/{job_id}/cancel", client.post(f"/api/batch/{job}/cancel"))
    check("POST", "/api/batch/{job_id}/retry-failed", client.post(f"/api/batch/{job}/retry-failed"))
    check("GET", "/api/batch/{job_id}", client.get("/api/batch/" + "0" * 32))
    check("GET", "/healthz", client.get("/healthz"))
    statuses = {line.rsplit(" ", 1)[1] for line in checked}
    assert statuses == {"200", "202", "400", "404", "409"}, checked


def test_a_stopped_batch_says_why_without_looking_like_an_error_answer(
    client_for, fake_replicate: FakeReplicate
) -> None:
    client = client_for(fake=fake_replicate, replicate_api_token="r8_not_the_right_one")
    job_id = upload(client, csv_of(CARS[:3])).json()["jobId"]
    body = finished(client, job_id)
    assert "error" not in body
    assert "REPLICATE_API_TOKEN" in body["stopReason"]
    assert body["failed"] == 3 and body["retryable"] == 3


# -- choosing the image model ----------------------------------------------------------------


def test_a_single_image_can_name_its_model(client_for, fake_replicate: FakeReplicate) -> None:
    client = client_for(fake=fake_replicate)
    body = client.post(
        "/api/car-image", json={"make": "Kia", "model": "EV6", "image_model": "google/imagen-4"}
    ).json()
    assert body["model"] == "google/imagen-4"
    assert fake_replicate.requests[0].path == "/v1/models/google/imagen-4/predictions"
    refused = client.post("/api/car-image", json={"make": "Kia", "image_model": "dall-e"})
    assert refused.status_code == 400
    assert "not a model Car Studio supports" in refused.json()["error"]
    assert "google/nano-banana-2" in refused.json()["error"]
    assert fake_replicate.creation_count() == 1


def test_a_batch_can_name_its_model_and_an_unknown_one_is_refused(
    client_for, fake_replicate: FakeReplicate
) -> None:
    client = client_for(fake=fake_replicate)
    refused = upload(client, numbered_cars(2), imageModel="google/imagen-9")
    assert refused.status_code == 400 and "choose one of" in refused.json()["error"]
    accepted = upload(client, numbered_cars(2), imageModel="google/nano-banana")
    assert accepted.status_code == 202
    body = finished(client, accepted.json()["jobId"])
    assert body["model"] == "google/nano-banana" and body["done"] == 2
    assert fake_replicate.creation_count() == 2


def test_switch_model_moves_a_stopped_batch_and_refuses_others(
    client_for, fake_replicate: FakeReplicate
) -> None:
    fake_replicate.add_fault("model_gone", when="Model-1,")
    client = client_for(fake=fake_replicate, concurrency=1)
    job_id = upload(client, numbered_cars(3)).json()["jobId"]
    stopped = finished(client, job_id)
    assert stopped["stopKind"] == "model_unavailable"
    assert stopped["switchTo"] == "google/nano-banana-2"
    assert "google/nano-banana-2" in stopped["stopReason"]
    path = f"/api/batch/{job_id}/switch-model"
    assert client.post(path, json={"model": "nope"}).status_code == 400
    moved = client.post(path, json={"model": stopped["switchTo"]})
    assert moved.status_code == 200 and moved.json()["state"] == "running"
    done = finished(client, job_id)
    assert (done["done"], done["failed"], done["model"]) == (3, 0, "google/nano-banana-2")
    assert done["replacedModel"] == "google/imagen-3" and done["stopReason"] is None
    again = client.post(path, json={"model": "google/nano-banana"})
    assert again.status_code == 409 and again.json()["error"]
    assert (
        client.post("/api/batch/" + "0" * 32 + "/switch-model", json={"model": "x"}).status_code
        == 404
    )
