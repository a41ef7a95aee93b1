"""Sign-in, API tokens and ownership: with sign-in required, nobody reaches anything of
anybody else's, and strangers reach nothing at all."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from carstudio.accounts.service import Accounts
from carstudio.cli import app as cli
from carstudio.config import Settings
from carstudio.errors import ConfigurationError
from carstudio.jobs.store import Store, database_url
from carstudio.web.app import create_app
from tests.batch_helpers import numbered_cars, wait_until

PASSWORD = "correct horse battery"
UPLOAD = {"file": ("cars.csv", numbered_cars(2), "text/csv")}


@pytest.fixture
def signed_settings(make_settings: Callable[..., Settings]) -> Settings:
    settings = make_settings(auth="required")
    settings.ensure_dirs()
    store = Store(database_url(None, settings.data_dir))
    accounts = Accounts(store)
    accounts.add_user("alice", PASSWORD)
    accounts.add_user("bob", PASSWORD)
    accounts.add_user("root", PASSWORD, admin=True)
    store.close()
    return settings


@pytest.fixture
def server(signed_settings: Settings) -> Callable[[], TestClient]:
    """A new client (its own cookie jar) of one running Car Studio with sign-in required."""
    app = create_app(signed_settings)
    clients: list[TestClient] = []

    def client() -> TestClient:
        made = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
        made.__enter__()
        clients.append(made)
        return made

    yield client
    for made in clients:
        made.__exit__(None, None, None)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> TestClient:
    answer = client.post("/login", data={"username": name, "password": password})
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text
    return client


def token_for(settings: Settings, user: str) -> str:
    store = Store(database_url(None, settings.data_dir))
    try:
        return Accounts(store).create_token(user, "tests")
    finally:
        store.close()


def test_strangers_are_sent_to_sign_in_and_the_api_answers_401(server) -> None:
    stranger = server()
    page = stranger.get("/")
    assert page.status_code == 303 and page.headers["location"] == "/login"
    login = stranger.get("/login")
    assert login.status_code == 200 and 'name="password"' in login.text
    for method, path in (
        ("GET", "/api/batches"),
        ("GET", "/api/batch/" + "0" * 32),
        ("POST", "/api/car-batch/validate"),
        ("GET", "/api/csv-template"),
        ("GET", "/downloads/" + "0" * 32 + ".zip"),
        ("GET", "/images/" + "0" * 32 + "/x.png"),
    ):
        answer = stranger.request(method, path)
        assert answer.status_code == 401, (method, path)
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert "Sign in" in answer.json()["error"]
    refused = stranger.post("/api/car-image", json={"make": "Kia"})
    assert refused.status_code == 401
    assert stranger.get("/healthz").status_code == 200
    assert stranger.get("/static/app.css").status_code == 200


def test_a_wrong_password_or_token_gets_nothing(server, signed_settings: Settings) -> None:
    client = server()
    answer = client.post("/login", data={"username": "alice", "password": "not it at all"})
    assert answer.status_code == 401 and "do not match" in answer.text
    assert client.get("/api/batches").status_code == 401
    for header in ("Bearer cs_made_up", "Bearer", "Basic YWxpY2U6cGFzcw==", "cs_x"):
        refused = client.get("/api/batches", headers={"Authorization": header})
        assert refused.status_code == 401, header


def test_signed_in_the_page_names_the_user_and_sign_out_ends_it(server) -> None:
    alice = sign_in(server(), "alice")
    page = alice.get("/")
    assert page.status_code == 200 and "alice" in page.text
    assert 'action="/logout"' in page.text
    assert alice.cookies.get("carstudio_session")
    signed_out = alice.post("/logout")
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/login"
    assert alice.get("/").status_code == 303
    assert alice.get("/api/batches").status_code == 401


def test_the_session_cookie_is_http_only_and_same_site_lax(server) -> None:
    client = server()
    answer = client.post("/login", data={"username": "alice", "password": PASSWORD})
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie


def test_other_users_batches_and_images_are_404_and_admins_see_all(server) -> None:
    alice, bob, root = (sign_in(server(), name) for name in ("alice", "bob", "root"))
    job = alice.post("/api/car-batch", files=UPLOAD).json()["jobId"]
    image = alice.post("/api/car-image", json={"make": "Kia"}).json()
    wait_until(lambda: alice.get(f"/api/batch/{job}").json()["zipUrl"])
    alices = [
        ("GET", f"/api/batch/{job}"),
        ("GET", f"/api/batch/{job}/failed_rows.json"),
        ("GET", f"/api/batch/{job}/rows/2/image"),
        ("GET", f"/api/batch/{job}/rows/2/thumb"),
        ("GET", f"/downloads/{job}.zip"),
        ("GET", image["imageUrl"]),
        ("POST", f"/api/batch/{job}/cancel"),
        ("POST", f"/api/batch/{job}/retry-failed"),
    ]
    for method, path in alices:
        answer = bob.request(method, path)
        assert answer.status_code == 404, (method, path, answer.status_code)
        assert alice.request(method, path).status_code in (200, 409), (method, path)
        assert root.request(method, path).status_code in (200, 409), (method, path)
    switched = bob.post(f"/api/batch/{job}/switch-model", json={"model": "google/imagen-4"})
    assert switched.status_code == 404
    assert [b["jobId"] for b in alice.get("/api/batches").json()["batches"]] == [job]
    assert bob.get("/api/batches").json()["batches"] == []
    assert [b["jobId"] for b in root.get("/api/batches").json()["batches"]] == [job]


def test_api_tokens_act_as_their_user(server, signed_settings: Settings) -> None:
    token = token_for(signed_settings, "bob")
    script = server()
    auth = {"Authorization": f"Bearer {token}"}
    job = script.post("/api/car-batch", files=UPLOAD, headers=auth).json()["jobId"]
    assert script.get(f"/api/batch/{job}", headers=auth).status_code == 200
    alice = sign_in(server(), "alice")
    assert alice.get(f"/api/batch/{job}").status_code == 404
    assert script.get("/api/batches", headers=auth).json()["batches"][0]["jobId"] == job


def test_recent_batches_page_newest_first(server) -> None:
    alice = sign_in(server(), "alice")
    jobs = [alice.post("/api/car-batch", files=UPLOAD).json()["jobId"] for _ in range(3)]
    first = alice.get("/api/batches?limit=2").json()
    assert [b["jobId"] for b in first["batches"]] == jobs[::-1][:2]
    assert first["next"]
    second = alice.get(first["next"]).json()
    assert [b["jobId"] for b in second["batches"]] == [jobs[0]]
    entry = second["batches"][0]
    assert entry["total"] == 2 and entry["statusUrl"] == f"/api/batch/{jobs[0]}"


def test_failed_sign_ins_are_capped_per_name_and_address(server) -> None:
    client = server()
    for _ in range(5):
        answer = client.post("/login", data={"username": "alice", "password": "wrong wrong"})
        assert answer.status_code == 401
    locked = client.post("/login", data={"username": "alice", "password": "wrong wrong"})
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
    right = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert right.status_code == 429, "even the right password waits out the lock"
    assert re.search(r"try again in \d+ seconds", right.text)
    # Another name is not held up by someone guessing alice's password.
    sign_in(server(), "bob")


def test_a_changed_password_ends_open_sessions(server, signed_settings: Settings) -> None:
    alice = sign_in(server(), "alice")
    assert alice.get("/api/batches").status_code == 200
    store = Store(database_url(None, signed_settings.data_dir))
    Accounts(store).set_password("alice", "a brand new password")
    store.close()
    assert alice.get("/api/batches").status_code == 401


def test_sign_in_required_with_no_users_refuses_to_start(make_settings) -> None:
    settings = make_settings(host="0.0.0.0")
    assert settings.sign_in_required
    with pytest.raises(ConfigurationError, match="carstudio users add NAME --admin"):
        create_app(settings)
    assert not make_settings(host="127.0.0.1").sign_in_required
    assert not make_settings(host="::1").sign_in_required
    assert make_settings(host="127.0.0.1", auth="required").sign_in_required
    assert not make_settings(host="0.0.0.0", auth="off").sign_in_required


def test_users_and_tokens_commands(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    added = runner.invoke(cli, ["users", "add", "carol", "--admin", "--password-stdin"],
                          input=PASSWORD + "\n")  # fmt: skip
    assert added.exit_code == 0, added.output
    short = runner.invoke(cli, ["users", "add", "dave", "--password-stdin"], input="short\n")
    assert short.exit_code == 2 and "at least 10 characters" in short.output
    twice = runner.invoke(cli, ["users", "add", "CAROL", "--password-stdin"], input=PASSWORD)
    assert twice.exit_code == 1 and "already a user" in twice.output
    listed = runner.invoke(cli, ["users", "list"])
    assert "carol" in listed.output and "admin" in listed.output
    made = runner.invoke(cli, ["tokens", "create", "nightly feed"])
    assert made.exit_code == 0
    token = made.stdout.strip().splitlines()[0]
    assert token.startswith("cs_")
    shown = runner.invoke(cli, ["tokens", "list"])
    assert "nightly feed" in shown.output and token not in shown.output
    assert runner.invoke(cli, ["tokens", "revoke", "1"]).exit_code == 0
    assert runner.invoke(cli, ["tokens", "revoke", "1"]).exit_code == 1
    assert runner.invoke(cli, ["users", "passwd", "carol", "--password-stdin"],
                         input="another long password\n").exit_code == 0  # fmt: skip
    assert runner.invoke(cli, ["users", "remove", "carol"]).exit_code == 0
    assert "No users yet" in runner.invoke(cli, ["users", "list"]).output


@pytest.mark.process
def test_what_car_studio_writes_is_owner_only(tmp_path) -> None:
    """Run as its own process: the command sets the process's umask, which a test must not."""
    data = tmp_path / "private-data"
    env = {**os.environ, "CARSTUDIO_DATA_DIR": str(data), "CARSTUDIO_PROVIDER": "preview"}
    env.pop("REPLICATE_API_TOKEN", None)
    made = subprocess.run(
        [sys.executable, "-m", "carstudio", "users", "add", "erin", "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    image = subprocess.run(
        [sys.executable, "-m", "carstudio", "generate", "--make", "Kia", "-o",
         str(tmp_path / "out" / "kia.png")],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert image.returncode == 0, image.stderr
    mode = lambda path: stat.S_IMODE(path.stat().st_mode)  # noqa: E731
    assert mode(data) == 0o700
    assert mode(data / "carstudio.db") == 0o600
    assert mode(data / "images") == 0o700
    stored = [p for p in (data / "images").rglob("*") if p.is_file()]
    assert stored and all(mode(p) == 0o600 for p in stored)
