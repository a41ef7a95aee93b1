"""What every request passes first: the Host allow-list, cross-site refusal, JSON only, and
the headers every answer carries. In process; the browser attack page is in tests/browser."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.batch_helpers import numbered_cars
from tests.fakes.replicate import FakeReplicate

UPLOAD = {"file": ("cars.csv", numbered_cars(2), "text/csv")}


@pytest.fixture
def fake_client(client_for, fake_replicate: FakeReplicate) -> TestClient:
    return client_for(fake=fake_replicate)


def attempts(client: TestClient, headers: dict[str, str]) -> list[int]:
    """Every state-changing request a page could send, with `headers`; their statuses."""
    job = client.post("/api/car-batch", files=UPLOAD).json()["jobId"]
    return [
        client.post("/api/car-image", json={"make": "Kia"}, headers=headers).status_code,
        client.post("/api/car-batch", files=UPLOAD, headers=headers).status_code,
        client.post("/api/car-batch/validate", files=UPLOAD, headers=headers).status_code,
        client.post(f"/api/batch/{job}/cancel", headers=headers).status_code,
        client.post(f"/api/batch/{job}/retry-failed", headers=headers).status_code,
        client.post(
            f"/api/batch/{job}/switch-model", json={"model": "x"}, headers=headers
        ).status_code,
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # a sibling sub-domain is another site's page too
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://testserver"},
        {"Origin": "http://evil.example"},
        {"Origin": "http://testserver:8080"},
        {"Origin": "null"},
    ],
    ids=["fetch-site", "same-site", "fetch-site-wins", "origin", "other-port", "null-origin"],
)
def test_cross_site_requests_are_refused_and_create_nothing(
    fake_client: TestClient, fake_replicate: FakeReplicate, headers: dict[str, str]
) -> None:
    assert attempts(fake_client, headers) == [403] * 6
    refused = fake_client.post("/api/car-image", json={"make": "Kia"}, headers=headers)
    body = refused.json()
    assert "another web site" in body["error"] and body["details"]
    # The one batch is the one this test submitted itself, without browser headers.
    assert fake_replicate.creation_count() <= 2
    assert fake_replicate.creation_count("Kia") == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "http://testserver"},
    ],
    ids=["no-browser-headers", "same-origin", "typed-by-the-person", "own-origin"],
)
def test_the_own_page_and_scripts_get_through(fake_client: TestClient, headers: dict) -> None:
    statuses = attempts(fake_client, headers)
    assert statuses[:3] == [200, 202, 200]
    assert 403 not in statuses


def test_reading_is_not_refused_for_a_cross_site_header(client: TestClient) -> None:
    """A cross-site GET changes nothing; images embedded elsewhere still load."""
    assert client.get("/healthz", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200


@pytest.fixture
def client(client_for) -> TestClient:
    return client_for()


@pytest.mark.parametrize("host", ["evil.example", "attacker.example:8000", "127.0.0.2", ""])
def test_an_unknown_host_header_is_refused_before_routing(client: TestClient, host: str) -> None:
    for method, path in (("GET", "/"), ("GET", "/healthz"), ("POST", "/api/car-image")):
        response = client.request(method, path, headers={"Host": host}, json={"make": "Kia"})
        assert response.status_code == 400, (method, path)
        assert "CARSTUDIO_ALLOWED_HOSTS" in response.json()["error"]


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1", "[::1]:8000", "LOCALHOST"])
def test_loopback_names_are_answered(client: TestClient, host: str) -> None:
    assert client.get("/healthz", headers={"Host": host}).status_code == 200


def test_allowed_hosts_adds_names_and_star_accepts_any(client_for) -> None:
    named = client_for(allowed_hosts=["testserver", "carstudio.dealer.lan"])
    lan = {"Host": "carstudio.dealer.lan"}
    assert named.get("/healthz", headers=lan).status_code == 200
    assert named.get("/healthz", headers={"Host": "other.lan"}).status_code == 400
    anything = client_for(allowed_hosts=["*"])
    assert anything.get("/healthz", headers={"Host": "other.lan"}).status_code == 200


def test_the_serve_host_is_answered(client_for) -> None:
    client = client_for(host="carstudio.local", auth="off")
    assert client.get("/healthz", headers={"Host": "carstudio.local:8000"}).status_code == 200


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_json_endpoints_take_json_only(client: TestClient, content_type: str) -> None:
    response = client.post(
        "/api/car-image", content=b'{"make": "Kia"}', headers={"Content-Type": content_type}
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]


def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    image = client.post("/api/car-image", json={"make": "Kia"}).json()
    job = client.post("/api/car-batch", files=UPLOAD).json()["jobId"]
    answers = {
        "page": client.get("/"),
        "json": client.get("/healthz"),
        "error": client.get("/api/batch/" + "0" * 32),
        "image": client.get(image["imageUrl"]),
        "script": client.get("/static/js/app.js"),
        "csv": client.get("/api/csv-template"),
        "status": client.get(f"/api/batch/{job}"),
    }
    for name, response in answers.items():
        assert response.headers["x-content-type-options"] == "nosniff", name
        assert response.headers["referrer-policy"] == "same-origin", name
    page_policy = answers["page"].headers["content-security-policy"]
    assert "default-src 'self'" in page_policy and "frame-ancestors 'none'" in page_policy
    assert "unsafe-inline" not in page_policy and "script-src 'self'" in page_policy
    assert answers["page"].headers["x-frame-options"] == "DENY"
    for name in ("json", "error", "image", "csv", "status"):
        policy = answers[name].headers["content-security-policy"]
        assert "sandbox" in policy and "default-src 'none'" in policy, name
    assert 'filename="' in answers["image"].headers["content-disposition"]


def test_the_page_has_no_inline_script(client: TestClient) -> None:
    page = client.get("/").text
    assert "<script" in page
    for tag in page.split("<script")[1:]:
        opening = tag.split(">", 1)[0]
        assert "src=" in opening or 'type="application/json"' in opening, opening


def test_api_docs_are_off_unless_asked_for(client_for) -> None:
    default = client_for()
    assert default.get("/docs").status_code == 404
    assert default.get("/redoc").status_code == 404
    assert default.get("/openapi.json").status_code == 200
    docs = client_for(api_docs=True)
    assert docs.get("/docs").status_code == 200
    assert "content-security-policy" not in docs.get("/docs").headers
