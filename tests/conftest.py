"""Shared fixtures: settings pointed at a temporary data directory, and the fake Replicate.

Tests are also sorted into tiers here: a test that starts Car Studio processes is marked
`process` from the fixtures it uses, so `make check` can leave it out without anyone having
to remember the marker.
"""

from __future__ import annotations

import gc
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import argon2
import hypothesis
import pytest

from tests.server_process import ServerProcess
from tests.waiting import Sleeps

if TYPE_CHECKING:
    # Imported where used: the process that only hands tests to xdist workers never loads the
    # app, which is a second of CPU on each start.
    from fastapi.testclient import TestClient

    from carstudio.config import Settings
    from tests.fakes.replicate import FakeReplicate

TOKEN = "r8_fake_token_for_tests_0123456789"

# Fixtures that start Car Studio as separate server or worker processes.
PROCESS_FIXTURES = frozenset({"server_process"})

# Property tests try 250 examples each; `make check` passes --hypothesis-profile=check to try
# the same properties on fewer examples. Tests that fuzz many strategies take a share of it.
hypothesis.settings.register_profile("full", max_examples=250)
hypothesis.settings.register_profile("check", max_examples=20)
hypothesis.settings.load_profile("full")


# A memory-backed file system, where the machine has one.
MEMORY_TMP = Path("/dev/shm")


def pytest_configure(config: pytest.Config) -> None:
    """Every test's data directory and SQLite database go to memory when the machine offers a
    tmpfs: on disk, SQLite's syncs made most of the cost of starting an app in a test (about
    75 ms of a 90 ms start). Set TMPDIR to keep them elsewhere."""
    if "TMPDIR" not in os.environ and MEMORY_TMP.is_dir() and os.access(MEMORY_TMP, os.W_OK):
        tempfile.tempdir = str(MEMORY_TMP)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.process)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Everything imported so far lives until the end: the garbage collector's full passes,
    which grow with the heap, need not walk it again (about 3 CPU-s of a fast-tier run)."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's token, .env or data directory."""
    for name in ("REPLICATE_API_TOKEN", "REPLICATE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("CARSTUDIO_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CARSTUDIO_DATA_DIR", str(tmp_path / "env-data"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Passwords are hashed with argon2's recommended cost, a third of a CPU-second per sign-in
    by design; tests hash with the same algorithm at its lowest cost."""
    cheapest = argon2.PasswordHasher.from_parameters(argon2.profiles.CHEAPEST)
    monkeypatch.setattr("carstudio.accounts.service._HASHER", cheapest)
    dummy = cheapest.hash("unknown user")
    monkeypatch.setattr("carstudio.accounts.service._dummy_hash", lambda: dummy)


@pytest.fixture(autouse=True)
def _fresh_batch_status(monkeypatch: pytest.MonkeyPatch) -> None:
    """Status answers are reused for half a second so many open pages cost one query; a test
    polls one job and would wait that out at every step, so it is kept short here."""
    monkeypatch.setattr("carstudio.jobs.service.STATUS_TTL", 0.02)


@pytest.fixture(autouse=True)
def _quick_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """`carstudio batch` reads its batch's progress every quarter second (every second from a
    server), pacing a person's terminal; a test would wait that out after the last row."""
    monkeypatch.setattr("carstudio.batch_runner.POLL_SECONDS", 0.02)
    monkeypatch.setattr("carstudio.batch_runner.REMOTE_POLL_SECONDS", 0.05)


@pytest.fixture
def provider_sleeps(monkeypatch: pytest.MonkeyPatch) -> Sleeps:
    """The Replicate clients Car Studio makes wait only a token amount before a retry; every
    wait they asked for is recorded."""
    import functools

    from carstudio.providers.replicate import ReplicateProvider

    recorded = Sleeps()
    monkeypatch.setattr(
        "carstudio.providers.ReplicateProvider",
        functools.partial(ReplicateProvider, sleep=recorded),
    )
    return recorded


@pytest.fixture
def fake_replicate() -> Iterator[FakeReplicate]:
    from tests.fakes.replicate import FakeReplicate

    with FakeReplicate(token=TOKEN, latency=0.05) as fake:
        yield fake


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a test: preview by default; pass fake=... to use the fake Replicate."""

    from carstudio.config import Settings

    def build(fake: FakeReplicate | None = None, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "provider": "preview",
            "poll_interval": 0.02,
            "lease_seconds": 5.0,
            # The host name Starlette's in-process test client sends.
            "allowed_hosts": ["testserver"],
        }
        if fake is not None:
            values |= {
                "provider": "replicate",
                "replicate_api_token": fake.token,
                "replicate_base_url": fake.base_url,
                "http_timeout": 5.0,
            }
        return Settings(_env_file=None, **(values | overrides))

    return build


@pytest.fixture
def client_for(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    """A factory of in-process clients, each app started (workers included) and stopped."""
    from fastapi.testclient import TestClient

    from carstudio.web.app import create_app

    clients: list[TestClient] = []

    def build(**overrides: Any) -> TestClient:
        client = TestClient(create_app(make_settings(**overrides)), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """A factory of Car Studio processes (not yet started), each stopped after the test."""
    made: list[ServerProcess] = []

    def build(env: dict[str, str], command: tuple[str, ...] = ("serve",)) -> ServerProcess:
        log = tmp_path / f"{command[0]}-{len(made) + 1}.log"
        process = ServerProcess(env, log, command=command)
        made.append(process)
        return process

    yield build
    for process in made:
        process.stop()
