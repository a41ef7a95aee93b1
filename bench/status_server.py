"""Car Studio's app served the way `carstudio serve` serves it, plus one route for comparison.

`GET /bench/bare/{job_id}` answers with a cached copy of the job's status JSON (refreshed at
most once a second), through the same kind of route as `GET /api/batch/{job_id}`: a plain
function returning a dict, so both pay the same routing, thread hand-off and serialisation,
and the difference between them is what building the status costs.

Run as `python -m bench.status_server`; settings come from the environment as usual.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn
from fastapi import FastAPI

from carstudio.config import Settings
from carstudio.jobs.service import BatchService
from carstudio.logs import configure_logging
from carstudio.web.app import create_app
from carstudio.web.schemas import BatchStatusOut

REFRESH_SECONDS = 1.0


def build_app(settings: Settings) -> FastAPI:
    app = create_app(settings)
    batches: BatchService = app.state.batches
    cache: dict[str, tuple[float, dict[str, Any]]] = {}
    lock = threading.Lock()

    @app.get("/bench/bare/{job_id}", include_in_schema=False)
    def bare_status(job_id: str) -> dict[str, Any]:
        now = time.monotonic()
        with lock:
            hit = cache.get(job_id)
        if hit is None or now - hit[0] > REFRESH_SECONDS:
            hit = (
                now,
                BatchStatusOut.of(batches.status(job_id)).model_dump(by_alias=True, mode="json"),
            )
            with lock:
                cache[job_id] = hit
        return hit[1]

    return app


def main() -> None:
    settings = Settings()
    configure_logging(settings)
    uvicorn.run(build_app(settings), host=settings.host, port=settings.port, log_config=None)


if __name__ == "__main__":
    main()
