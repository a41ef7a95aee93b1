"""Abuse: fuzzed requests, hostile CSV values, probes of /downloads/, hunting for the token,
and an upload that announces itself as too large.

Car Studio answers all of it with a 4xx sentence or does the job safely: no 5xx, nothing
written outside the data directory, no unsafe name in a ZIP, nothing but job ZIPs from
/downloads/, the Replicate token nowhere, and a 413 before a too-large body is read.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import socket
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.python import asgi

from carstudio.config import Settings
from carstudio.web.app import STATIC_DIR, create_app
from tests.batch_helpers import HEADER, numbered_cars, read_zip
from tests.fakes.replicate import FakeReplicate
from tests.server_process import ServerProcess
from tests.waiting import wait_until

PORTABLE = re.compile(r"[a-z0-9._-]+")
SECRET_TOKEN = "r8_SECRET_c4rstud10_n3v3r_sh0w_m3_7f3a9b"
JOB_ID = re.compile(r"[0-9a-f]{32}")


def wait_ready(client: TestClient | Any, job_id: str) -> dict[str, Any]:
    return wait_until(
        lambda: (body := client.get(f"/api/batch/{job_id}").json())["zipUrl"] and body,
        timeout=30,
    )


# -- fuzzing the OpenAPI schema ------------------------------------------------------------------

OPERATIONS = [
    ("POST", "/api/car-image"),
    ("GET", "/images/{image_id}/{name}"),
    ("GET", "/healthz"),
    ("POST", "/api/car-batch/validate"),
    ("POST", "/api/car-batch"),
    ("GET", "/api/batch/{job_id}"),
    ("GET", "/api/batch/{job_id}/failed_rows.json"),
    ("GET", "/api/batch/{job_id}/failed_rows.csv"),
    ("POST", "/api/batch/{job_id}/cancel"),
    ("POST", "/api/batch/{job_id}/retry-failed"),
    ("POST", "/api/batch/{job_id}/switch-model"),
    ("GET", "/api/batch/{job_id}/rows/{row}/image"),
    ("GET", "/api/batch/{job_id}/rows/{row}/thumb"),
    ("GET", "/downloads/{name}"),
    ("GET", "/api/csv-template"),
    ("GET", "/api/xlsx-template"),
    ("GET", "/api/batches"),
    ("GET", "/api/usage"),
]


@dataclass(frozen=True)
class FuzzTarget:
    schema: schemathesis.BaseSchema
    known: dict[str, Any]
    """Path parameters of things that exist (a finished job, a single image)."""


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    """One app in preview mode for every operation, holding a finished batch and an image."""
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith(("CARSTUDIO_", "REPLICATE_")):
                env.delenv(name)
        data_dir = tmp_path_factory.mktemp("fuzz") / "data"
        app = create_app(
            Settings(
                _env_file=None,
                data_dir=data_dir,
                provider="preview",
                poll_interval=0.02,
                allowed_hosts=["testserver"],
            )
        )
        try:
            # schemathesis starts the app's lifespan (the batch workers) on first use and keeps
            # it for the process; shutdown_lifespans below ends it with this module.
            schema = schemathesis.openapi.from_asgi("/openapi.json", app)
            with asgi.get_client(app) as client:
                data = numbered_cars(2) + b",,,,2024,red,white,1:1\n"
                response = client.post(
                    "/api/car-batch",
                    files={"file": ("cars.csv", data, "text/csv")},
                    data={"skipInvalid": "true"},
                )
                assert response.status_code == 202, response.text
                job_id = response.json()["jobId"]
                wait_ready(client, job_id)
                image = client.post("/api/car-image", json={"make": "Kia", "model": "EV6"}).json()
            yield FuzzTarget(
                schema=schema,
                known={
                    "job_id": job_id,
                    "zip_name": f"{job_id}.zip",
                    "image_id": image["id"],
                    "image_name": image["fileName"],
                },
            )
        finally:
            asgi.shutdown_lifespans()


def test_every_operation_is_fuzzed(make_settings: Callable[..., Settings]) -> None:
    paths = create_app(make_settings()).openapi()["paths"]
    documented = {(method.upper(), path) for path, item in paths.items() for method in item}
    assert documented == set(OPERATIONS)


UPLOADS = {"/api/car-batch", "/api/car-batch/validate"}
CSV_CELL = st.one_of(
    st.sampled_from(["Toyota", "Corolla", "2024", "2024.0", "hub", "WHITE", "16:9", "", "../x"]),
    st.text(max_size=12),
)
CSV_HEADER = st.lists(
    st.sampled_from(["Model", "Body Style", "colour", "bg", "Aspect Ratio", "year", "x", ""]),
    unique=True,
    max_size=8,
).map(lambda rest: ["make", *rest])


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """CSV-shaped uploads: real and odd headers, any cells, any delimiter and encoding."""
    header = draw(CSV_HEADER)
    rows = draw(st.lists(st.lists(CSV_CELL, max_size=len(header) + 1), min_size=1, max_size=8))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=draw(st.sampled_from(",;\t|")), lineterminator="\n")
    writer.writerows([header, *rows])
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]))
    return out.getvalue().encode(encoding, errors="replace")


def strategies_for(
    operation: Any, path: str, known: dict[str, Any]
) -> dict[str, st.SearchStrategy[schemathesis.Case]]:
    """Named ways to make requests for one operation, each fuzzed on its own budget."""
    named = {
        "positive": operation.as_strategy(GenerationMode.POSITIVE),
        "negative": operation.as_strategy(GenerationMode.NEGATIVE),
    }
    # Aim at things that exist: a finished job (its rows, its ZIP), a single image.
    existing: dict[str, st.SearchStrategy[Any]] = {
        "job_id": st.just(known["job_id"]),
        "row": st.sampled_from([-1, 0, 1, 2, 3, 4, 5, 2**63]),
        "image_id": st.just(known["image_id"]),
        "name": st.sampled_from(
            [known["image_name"], "x.png", "..", "%2e%2e"]
            if path.startswith("/images/")
            else [known["zip_name"], known["zip_name"].upper(), f"{known['job_id']}.db"]
        ),
    }
    wanted = {key: value for key, value in existing.items() if f"{{{key}}}" in path}
    if wanted:
        named["existing"] = st.fixed_dictionaries(wanted).map(
            lambda params: operation.Case(path_parameters=params)
        )
    if path in UPLOADS:
        named["csv-shaped file"] = st.builds(
            lambda data, skip: operation.Case(
                body={"file": data, "skipInvalid": skip}, media_type="multipart/form-data"
            ),
            csv_files(),
            st.sampled_from(["true", "false"]),
        )
    return named


def answers_with_a_sentence(name: str, case: schemathesis.Case) -> None:
    response = case.call()
    what = f"{name}: {case.method} {case.formatted_path} -> {response.status_code}: "
    what += repr(response.content[:300])
    assert response.status_code < 500, what
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), str), what
        assert body["error"].strip(), what


def fuzzer(name: str, strategy: st.SearchStrategy[schemathesis.Case]) -> Callable[[], None]:
    # Each operation is fuzzed with several strategies, each on a tenth of the profile's budget
    # (tests/conftest.py).
    @given(case=strategy)
    @settings(
        max_examples=settings.default.max_examples // 10,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case) -> None:
        answers_with_a_sentence(name, case)

    return fuzz


# The two ways a person's data comes in, a car as JSON and an uploaded file: `make check` fuzzes
# these, `make test` every operation.
SAMPLED = {
    ("POST", "/api/car-image"),
    ("POST", "/api/car-batch"),
}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param(
            method,
            path,
            id=f"{method} {path}",
            marks=() if (method, path) in SAMPLED else pytest.mark.exhaustive,
        )
        for method, path in OPERATIONS
    ],
)
def test_fuzzed_requests_never_get_a_server_error(
    fuzz_target: FuzzTarget, method: str, path: str
) -> None:
    operation = fuzz_target.schema[path][method]
    for name, strategy in strategies_for(operation, path, fuzz_target.known).items():
        try:
            fuzzer(name, strategy)()
        except Unsatisfiable:
            # Nothing in a request with only free-text path parameters can be made invalid.
            assert name == "negative", f"{name} strategy made no requests"


# -- hostile values in every CSV field -----------------------------------------------------------

HOSTILE = [
    "../../../../../../x",
    "../../../x",
    "..\\..\\..\\..\\..\\..\\x",
    "/etc/passwd",
    "C:\\Windows\\System32\\config",
    "\\\\server\\share\\x",
    "~/.ssh/authorized_keys",
    "x/../../../../../../y",
    ".",
    "..",
    "...",
    "CON",
    "nul",
    "COM1",
    "LPT1.txt",
    "PRN",
    "manifest.json",
    "failed_rows.json",
    "bell\x07 escape\x1b[31m red",
    "tab\tand\rreturn\nnewline",
    "A" * 60,
    "Citroën Ĉ Ø Ł ß",
    "日本車",
    "🚗💨",
    "\u202egnp.exe",
    "ｆｕｌｌ／ｗｉｄｔｈ．．／",
    "x\u0301\u0301\u0301",
    "-rf --no-preserve-root",
    ':*?"<>|',
    "%2e%2e%2f..%2f",
    "$(touch pwned) `id`",
    "Toyota",
    "toyota",
    " TOYOTA ",
]
# Values that make a row invalid, one per kind of field: reported, never run.
HOSTILE_INVALID = {
    "year": "../../x",
    "background": "..\\..\\x",
    "aspect_ratio": "/etc/passwd",
    "make": "B" * 500,
    "color": "C:\\" + "D" * 200,
}


def hostile_csv() -> bytes:
    """One row per hostile value in every text column, plus rows hostile in the checked ones,
    and an unknown column whose header and cells are hostile too."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*HEADER.split(","), "../../evil"])
    for value in HOSTILE:
        writer.writerow([value, value, value, value, "2024", value, "white", "1:1", value])
    base = dict(
        zip(HEADER.split(","), ["Kia", "EV6", "", "", "2024", "", "hub", "16:9"], strict=True)
    )
    for field, value in HOSTILE_INVALID.items():
        writer.writerow([*(base | {field: value}).values(), "../../x"])
    return out.getvalue().encode()


def snapshot(root: Path, skip: Path) -> dict[str, float]:
    """Every path under `root` (outside `skip`) with its modification time."""
    found: dict[str, float] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == skip or skip in here.parents:
            dirnames.clear()
            continue
        for name in dirnames + filenames:
            path = here / name
            if path == skip:
                continue
            found[str(path.relative_to(root))] = path.lstat().st_mtime
    return found


def assert_only_portable_paths_inside(data_dir: Path) -> None:
    """Every file in the data directory has a portable name in an expected place."""
    allowed_top = {"images", "downloads", "thumbs", "scratch", "cache"}
    for path in data_dir.rglob("*"):
        parts = path.relative_to(data_dir).parts
        assert not path.is_symlink(), path
        assert path.resolve().is_relative_to(data_dir.resolve()), path
        assert all(PORTABLE.fullmatch(part) for part in parts), path
        top = parts[0]
        assert top in allowed_top or top.startswith(("carstudio.db", "queue.db")), path
        if top == "cache" and len(parts) > 1:
            assert re.fullmatch(r"[0-9a-f]{64}\.(png|jpg|webp)", parts[1]), path
        if top == "images" and len(parts) > 1:
            assert parts[1] in {"batches", "single"}, path
            if len(parts) > 2:
                assert JOB_ID.fullmatch(parts[2]), path


def assert_safe_zip_names(names: list[str]) -> None:
    assert len(names) == len(set(names)), "no entry twice"
    for name in names:
        assert PORTABLE.fullmatch(name), name
        assert not name.startswith(("/", ".")) and ".." not in name, name
        assert "\\" not in name and ":" not in name, name


@pytest.mark.exhaustive  # every hostile value in every field; make check runs the single-image case
def test_hostile_values_in_every_csv_field_stay_inside_the_data_dir(
    client_for: Callable[..., TestClient], tmp_path: Path
) -> None:
    data_dir = tmp_path / "deep" / "er" / "data"
    client = client_for(data_dir=data_dir)
    before = snapshot(tmp_path, skip=data_dir)
    data = hostile_csv()

    report = client.post(
        "/api/car-batch/validate", files={"file": ("../../cars.csv", data, "text/csv")}
    ).json()
    assert report["rowCount"] == len(HOSTILE) + len(HOSTILE_INVALID)
    response = client.post(
        "/api/car-batch",
        files={"file": ("../../../../etc/cars.csv", data, "text/csv")},
        data={"skipInvalid": "true"},
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["jobId"]
    body = wait_ready(client, job_id)
    assert (body["done"], body["failed"]) == (report["validCount"], report["invalidCount"])
    assert body["done"] >= len(HOSTILE) - 2  # only the rows left without make and model fail
    for row in body["rows"]:
        if row["fileName"]:
            assert PORTABLE.fullmatch(row["fileName"]), row
            assert client.get(row["imageUrl"]).status_code == 200
            assert client.get(row["thumbUrl"]).status_code == 200

    archive = client.get(body["zipUrl"]).content
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        assert_safe_zip_names(zf.namelist())
    images, manifest, failed = read_zip(archive)
    assert len(images) == body["done"]
    assert sorted(images) == sorted(r["fileName"] for r in body["rows"] if r["fileName"])
    assert manifest["source"] == "cars.csv"
    assert failed is not None and len(failed) == body["failed"]
    # Same car written three ways: one name each, told apart by the row number.
    toyota = [r["fileName"] for r in body["rows"] if r["title"].lower().endswith("toyota")]
    assert len(toyota) == 3 and len(set(toyota)) == 3

    assert snapshot(tmp_path, skip=data_dir) == before, "nothing written outside the data dir"
    assert_only_portable_paths_inside(data_dir)


def test_single_images_with_hostile_names_stay_inside_the_data_dir(
    client_for: Callable[..., TestClient], tmp_path: Path
) -> None:
    data_dir = tmp_path / "deep" / "er" / "data"
    client = client_for(data_dir=data_dir)
    before = snapshot(tmp_path, skip=data_dir)
    for value in HOSTILE:
        spec = {"make": value, "model": value, "trim": value, "body_style": value, "color": value}
        response = client.post("/api/car-image", json=spec)
        if response.status_code == 400:  # nothing left after cleaning: a sentence, no file
            assert response.json()["error"]
            continue
        assert response.status_code == 200, response.text
        body = response.json()
        assert PORTABLE.fullmatch(body["fileName"]), body["fileName"]
        assert client.get(body["imageUrl"]).content.startswith(b"\x89PNG")
    assert snapshot(tmp_path, skip=data_dir) == before
    assert_only_portable_paths_inside(data_dir)


@pytest.mark.parametrize(
    "data",
    [
        HEADER.encode() + b"\nToyota,../../x\x00,,,,,,\n",
        HEADER.encode() + b"\n" + b"\x01\x02\x03\x04\x05\x06\x07\x08" * 40 + b",x,,,,,,\n",
    ],
    ids=["nul-byte", "control-storm"],
)
def test_binary_in_a_csv_is_refused_and_writes_nothing(
    client_for: Callable[..., TestClient], tmp_path: Path, data: bytes
) -> None:
    data_dir = tmp_path / "data"
    client = client_for(data_dir=data_dir)
    before = snapshot(data_dir, skip=data_dir / "unused")
    response = client.post("/api/car-batch", files={"file": ("x.csv", data, "text/csv")})
    assert response.status_code == 400 and "not CSV text" in response.json()["error"]
    after = snapshot(data_dir, skip=data_dir / "unused")
    assert {k for k in after if not k.startswith(("carstudio.db", "queue.db"))} == {
        k for k in before if not k.startswith(("carstudio.db", "queue.db"))
    }


# -- /downloads/ serves only job ZIPs -------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path, server_process) -> Callable[..., ServerProcess]:
    def start(**env: str) -> ServerProcess:
        values = {
            "CARSTUDIO_DATA_DIR": str(tmp_path / "data"),
            "CARSTUDIO_PROVIDER": "preview",
            "CARSTUDIO_POLL_INTERVAL": "0.05",
        }
        return server_process(values | env).start()

    return start


def raw_request(port: int, request: bytes, timeout: float = 10.0) -> tuple[int, bytes, bytes]:
    """Send bytes exactly as given; (status, head, body) of the answer."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head, body


def get_raw(port: int, target: str) -> tuple[int, bytes, bytes]:
    return raw_request(
        port,
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode(),
    )


def test_downloads_serves_only_job_zips(
    server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    process = server()
    submitted = httpx.post(
        f"{process.url}/api/car-batch",
        files={"file": ("cars.csv", numbered_cars(2))},
        timeout=10,
    )
    job = submitted.json()["jobId"]
    body = wait_ready(httpx.Client(base_url=process.url, timeout=10), job)
    httpx.get(f"{process.url}{body['rows'][0]['thumbUrl']}", timeout=10)  # makes a thumbnail
    image = body["rows"][0]["fileName"]
    data_dir = tmp_path / "data"
    secrets = [p.read_bytes()[:64] for p in data_dir.rglob("*") if p.is_file() and p.stat().st_size]

    status, head, content = get_raw(process.port, f"/downloads/{job}.zip")
    assert status == 200 and content.startswith(b"PK\x03\x04"), "the real ZIP is served"

    probes = [
        "/downloads/..",
        "/downloads/../carstudio.db",
        "/downloads/..%2fcarstudio.db",
        "/downloads/..%2Fcarstudio.db",
        "/downloads/..%252fcarstudio.db",
        "/downloads/%2e%2e%2fcarstudio.db",
        "/downloads/%2e%2e/carstudio.db",
        "/downloads/..\\carstudio.db",
        "/downloads/..%5ccarstudio.db",
        "/downloads/..%5Cqueue.db",
        "/downloads//etc/passwd",
        "/downloads/%2fetc%2fpasswd",
        "/downloads/%2Fetc%2Fpasswd",
        "/downloads/%252Fetc%252Fpasswd",
        "/downloads/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/downloads/C:%5cWindows%5cwin.ini",
        "/downloads/carstudio.db",
        "/downloads/carstudio.db-wal",
        "/downloads/queue.db",
        "/downloads/images",
        "/downloads/thumbs",
        "/downloads/downloads",
        f"/downloads/..%2fimages%2fbatches%2f{job}%2f{image}",
        f"/downloads/..%2fthumbs%2f{job}%2f2.jpg",
        f"/downloads/{job}.db",
        f"/downloads/{job}.png",
        f"/downloads/{job}.json",
        f"/downloads/{job}",
        f"/downloads/{job}.",
        f"/downloads/.{job}.zip",
        f"/downloads/{job}.zip.part",
        f"/downloads/{job}.zip%00",
        f"/downloads/{job}.zip%00.png",
        f"/downloads/{job}.ZIP",
        # One address per ZIP: the id exactly as the API gave it.
        f"/downloads/{job.upper()}.zip",
        "/downloads/" + "0" * 32 + ".zip",
        f"http://127.0.0.1:{process.port}/downloads/../carstudio.db",
    ]
    wrong: list[str] = []
    for target in probes:
        status, head, content = get_raw(process.port, target)
        leaked = any(secret and secret in content for secret in secrets)
        try:
            error = json.loads(content).get("error")
        except ValueError:
            error = None
        if status != 404 or not isinstance(error, str) or leaked:
            wrong.append(f"{target} -> {status} {content[:80]!r}")
    assert wrong == [], "\n".join(wrong)


# -- the Replicate token is never shown ----------------------------------------------------------


def exercise_everything(client: Any, fake: FakeReplicate) -> list[str]:
    """Hit every page and endpoint, with Replicate refusing the token and the credit in
    between; every answer's headers and body, as text."""
    answers: list[httpx.Response] = []

    def keep(response: httpx.Response) -> httpx.Response:
        answers.append(response)
        return response

    for path in ("/", "/docs", "/redoc", "/openapi.json", "/healthz", "/api/csv-template"):
        keep(client.get(path))
    for script in sorted((STATIC_DIR / "js").glob("*.js")):
        keep(client.get(f"/static/js/{script.name}"))
    keep(client.get("/static/app.css"))
    image = keep(client.post("/api/car-image", json={"make": "Kia"})).json()
    keep(client.get(image["imageUrl"]))
    for fault in ("unauthenticated", "insufficient_credit", "model_gone", "safety"):
        fake.add_fault(fault)
        keep(client.post("/api/car-image", json={"make": "Kia"}))
    fake.add_fault("server_error_500", times=2)
    keep(client.post("/api/car-image", json={"make": "Kia"}))
    keep(client.post("/api/car-image", json={"make": []}))
    keep(client.get("/api/batch/nope"))
    keep(client.get("/downloads/x.db"))

    for fault in ("unauthenticated", "insufficient_credit"):
        fake.add_fault(fault, when="Model-2,")
        job = keep(
            client.post("/api/car-batch", files={"file": ("cars.csv", numbered_cars(3))})
        ).json()["jobId"]
        body = wait_ready(client, job)
        answers.append(client.get(f"/api/batch/{job}"))
        keep(client.get(f"/api/batch/{job}/failed_rows.json"))
        keep(client.get(body["zipUrl"]))
        keep(client.post(f"/api/batch/{job}/retry-failed"))
        wait_ready(client, job)
        keep(client.post(f"/api/batch/{job}/cancel"))
        keep(client.get(f"/api/batch/{job}"))
    texts = []
    for response in answers:
        texts.append(str(response.headers))
        texts.append(response.content.decode("utf-8", "replace"))
        if response.headers.get("content-type") == "application/zip":
            with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
                texts.extend(zf.read(name).decode("utf-8", "replace") for name in zf.namelist())
    return texts


@pytest.mark.usefixtures("provider_sleeps")  # the 5xx retries need not be sat out
def test_the_token_is_in_no_answer_page_or_log_line(
    client_for: Callable[..., TestClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeReplicate(token=SECRET_TOKEN, latency=0.05) as fake:
        client = client_for(fake=fake)
        texts = exercise_everything(client, fake)
    assert fake.creation_count() > 0, "the answers came from the fake Replicate"
    assert not [text for text in texts if SECRET_TOKEN in text]
    logged = [caplog.text] + [
        f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for record in caplog.records
    ]
    assert len(caplog.records) > 10
    assert not [line for line in logged if SECRET_TOKEN in line]


def test_the_token_is_in_no_answer_or_log_line_of_the_server_process(
    server: Callable[..., ServerProcess],
) -> None:
    with FakeReplicate(token=SECRET_TOKEN, latency=0.05) as fake:
        process = server(
            CARSTUDIO_PROVIDER="replicate",
            REPLICATE_API_TOKEN=SECRET_TOKEN,
            REPLICATE_BASE_URL=fake.base_url,
            CARSTUDIO_WAIT_SECONDS="5",
        )
        with httpx.Client(base_url=process.url, timeout=15) as client:
            texts = exercise_everything(client, fake)
        process.interrupt()
    assert not [text for text in texts if SECRET_TOKEN in text]
    log = process.log.read_text(errors="replace")
    assert "401" in log or "Unauthenticated" in log or "api/car-image" in log
    assert SECRET_TOKEN not in log
    assert SECRET_TOKEN[3:] not in log


# -- too-large uploads ----------------------------------------------------------------------------


@pytest.mark.parametrize("expect_continue", [False, True], ids=["plain", "expect-100-continue"])
def test_a_6_mb_upload_is_refused_before_its_body_is_sent(
    server: Callable[..., ServerProcess], expect_continue: bool
) -> None:
    process = server()
    head = (
        "POST /api/car-batch HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{process.port}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {6 * 1024 * 1024}\r\n"
        + ("Expect: 100-continue\r\n" if expect_continue else "")
        + "\r\n"
    ).encode()
    answer = b""
    hung_up = False
    with socket.create_connection(("127.0.0.1", process.port), timeout=5) as sock:
        sock.sendall(head)  # and not one byte of the body
        try:
            while chunk := sock.recv(65536):
                answer += chunk
            hung_up = True
        except TimeoutError:
            pass
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"100 Continue" not in answer
    body = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert "5 MB" in body["error"]
    assert hung_up, "the server closes the connection instead of waiting for 6 MB"
    assert httpx.get(f"{process.url}/healthz", timeout=5).status_code == 200
