"""Shared fixtures: settings pointed at a temporary data directory, and the fake Replicate."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from carstudio.config import Settings
from carstudio.web.app import create_app
from tests.fakes.replicate import FakeReplicate
from tests.server_process import ServerProcess

TOKEN = "r8_fake_token_for_tests_0123456789"


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


@pytest.fixture
def fake_replicate() -> Iterator[FakeReplicate]:
    with FakeReplicate(token=TOKEN, latency=0.05) as fake:
        yield fake


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a test: preview by default; pass fake=... to use the fake Replicate."""

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
