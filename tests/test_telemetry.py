"""CARSTUDIO_TELEMETRY: FastAPI's OpenTelemetry spans reach the process's tracer provider only
when it is on.

A tracer provider is set once per process, so each case runs in its own interpreter, with a
provider (OpenTelemetry's API, no SDK) that records the path of each span started."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import json, sys
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN_CONTEXT, NonRecordingSpan

started = []

class Tracer(trace.NoOpTracer):
    def start_span(self, name, *args, attributes=None, **kwargs):
        started.append((attributes or {}).get("url.path", name))
        return NonRecordingSpan(INVALID_SPAN_CONTEXT)

class Provider(trace.TracerProvider):
    def get_tracer(self, *args, **kwargs):
        return Tracer()

trace.set_tracer_provider(Provider())

from carstudio.config import Settings
from carstudio.web.app import create_app

app = create_app(Settings(_env_file=None, data_dir=sys.argv[1], provider="preview"))
with TestClient(app, base_url="http://127.0.0.1:8000") as client:
    assert client.get("/healthz").status_code == 200
print(json.dumps(started))
"""


@pytest.mark.process
@pytest.mark.parametrize("on", [True, False])
def test_requests_are_traced_only_with_telemetry_on(tmp_path: Path, on: bool) -> None:
    env = {"CARSTUDIO_TELEMETRY": "true" if on else "false", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    spans = json.loads(done.stdout.strip().splitlines()[-1])
    if on:
        assert "/healthz" in spans  # the request's own span, before those of its steps
    else:
        assert spans == []
