"""Scaled out: one web process and two workers sharing Redis (queue) and PostgreSQL (store).

Runs against the Redis and PostgreSQL servers on this machine; skips, saying why, where they
are absent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from carstudio.jobs.store import Store, database_url
from tests.batch_helpers import numbered_cars, read_zip
from tests.fakes.replicate import FakeReplicate
from tests.server_process import ServerProcess
from tests.waiting import wait_until

pytestmark = pytest.mark.scale

DEPLOY = Path(__file__).parent.parent / "deploy"

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/15"
ROWS = 50
WEB = "carstudio-web.service"
WORKER = "carstudio-worker@.service"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({exc}).")
    name = f"carstudio_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """Redis database 15, emptied before and after the test."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not reachable at 127.0.0.1:6379 ({exc}).")
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


def deployment_example() -> tuple[dict[str, str], dict[str, list[str]]]:
    """The README's worked example: deploy/carstudio.env and each unit's carstudio command."""
    env = {}
    for line in (DEPLOY / "carstudio.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    commands = {}
    for unit in DEPLOY.glob("*.service"):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                args = line.split()[1:]
                if "--host" in args:  # the test serves on loopback, as the example does
                    del args[args.index("--host") : args.index("--host") + 2]
                commands[unit.name] = args
    return env, commands


@dataclass(frozen=True)
class Cluster:
    start: Callable[[str], ServerProcess]
    """Start one unit of the example (web or worker)."""
    headers: dict[str, str]
    """The API token the operator made, for requests to the web process."""


@pytest.fixture
def cluster(
    tmp_path: Path,
    postgres_url: str,
    redis_url: str,
    fake_replicate: FakeReplicate,
    server_process,
) -> Cluster:
    """Starts the processes of the deployment example, with this machine's servers in it."""
    example_env, commands = deployment_example()
    ours = {
        "REPLICATE_API_TOKEN": fake_replicate.token,
        "REPLICATE_BASE_URL": fake_replicate.base_url,
        "CARSTUDIO_DATA_DIR": str(tmp_path / "shared-data"),
        "CARSTUDIO_DATABASE_URL": postgres_url,
        "CARSTUDIO_QUEUE_URL": redis_url,
        "CARSTUDIO_CONCURRENCY": example_env["CARSTUDIO_CONCURRENCY"],
        "CARSTUDIO_LEASE_SECONDS": "2",  # the example's 30 s, shortened to keep the test quick
        "CARSTUDIO_AUTH": example_env["CARSTUDIO_AUTH"],
        "CARSTUDIO_ALLOWED_HOSTS": example_env["CARSTUDIO_ALLOWED_HOSTS"],
        "CARSTUDIO_SECURE_COOKIES": example_env["CARSTUDIO_SECURE_COOKIES"],
    }
    assert set(ours) == set(example_env), "every setting of the example is exercised here"
    assert ours["CARSTUDIO_AUTH"] == "required"
    # The first user and an API token, made as an operator would before starting the units.
    operator_env = {k: v for k, v in os.environ.items() if not k.startswith("CARSTUDIO_")}
    operator_env |= ours
    carstudio = [sys.executable, "-m", "carstudio"]
    made = subprocess.run(
        [*carstudio, "users", "add", "ops", "--admin", "--password-stdin"],
        input="a long operator password\n",
        env=operator_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    token = subprocess.run(
        [*carstudio, "tokens", "create", "scale-out test", "--user", "ops"],
        env=operator_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()

    def start(unit: str) -> ServerProcess:
        args = commands[unit][:]
        if "--port" in args:  # the test picks a free port
            del args[args.index("--port") : args.index("--port") + 2]
        env = ours | {"CARSTUDIO_POLL_INTERVAL": "0.05", "CARSTUDIO_WAIT_SECONDS": "1"}
        return server_process(env, tuple(args)).start()

    return Cluster(start, {"Authorization": f"Bearer {token}"})


def run_batch(web: ServerProcess, headers: dict[str, str]) -> str:
    assert httpx.get(f"{web.url}/api/batches", timeout=10).status_code == 401
    response = httpx.post(
        f"{web.url}/api/car-batch",
        files={"file": ("cars.csv", numbered_cars(ROWS))},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["jobId"])


def status(web: ServerProcess, job_id: str, headers: dict[str, str]) -> dict:
    return httpx.get(f"{web.url}/api/batch/{job_id}", headers=headers, timeout=10).json()


def assert_every_row_paid_once(fake: FakeReplicate) -> None:
    for n in range(1, ROWS + 1):
        assert fake.creation_count(f"Model-{n},") == 1, f"row {n + 1} was created twice or never"


def test_two_workers_share_a_batch_within_one_in_flight_limit(
    cluster, fake_replicate: FakeReplicate, postgres_url: str
) -> None:
    fake_replicate.latency = 0.25
    web = cluster.start(WEB)
    workers = [cluster.start(WORKER) for _ in range(2)]
    job_id = run_batch(web, cluster.headers)
    body = wait_until(
        lambda: (s := status(web, job_id, cluster.headers))["zipUrl"] and s, timeout=60
    )
    assert (body["done"], body["failed"]) == (ROWS, 0)
    assert fake_replicate.peak_in_flight == 3, "the limit holds across workers, not per worker"
    assert_every_row_paid_once(fake_replicate)
    store = Store(database_url(postgres_url, Path(".")))
    try:
        by_worker = {row.worker for row in store.rows(job_id)}
    finally:
        store.close()
    assert len(by_worker) == 2, f"rows were done by {by_worker}"
    assert all(str(w.proc.pid) in " ".join(by_worker) for w in workers)
    zip_answer = httpx.get(web.url + body["zipUrl"], headers=cluster.headers, timeout=10)
    images, _, failed = read_zip(zip_answer.content)
    assert len(images) == ROWS and failed is None


def test_a_killed_worker_leaves_no_row_lost_and_none_paid_twice(
    cluster, fake_replicate: FakeReplicate
) -> None:
    fake_replicate.latency = 0.4
    web = cluster.start(WEB)
    doomed = cluster.start(WORKER)
    cluster.start(WORKER)
    job_id = run_batch(web, cluster.headers)
    wait_until(lambda: status(web, job_id, cluster.headers)["done"] >= 12, timeout=60)
    doomed.kill()
    body = wait_until(
        lambda: (s := status(web, job_id, cluster.headers))["zipUrl"] and s, timeout=90
    )
    assert (body["done"], body["failed"]) == (ROWS, 0)
    assert fake_replicate.peak_in_flight <= 3
    assert_every_row_paid_once(fake_replicate)
