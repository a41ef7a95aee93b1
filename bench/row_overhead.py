"""What one row costs beyond the provider's latency: create, wait, download a 2 MB image over
loopback, check it and store it, timed around `run_prediction` with the real Replicate client.

In the same run, bare creates (the same request, held open the same way, nothing else) measure
the latency as any client sees it; a row's overhead is its time minus the median bare time.
Rows run three at a time, as the batch engine runs them.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import MB, TOKEN, FakeProcess, median, percentile
from carstudio.config import Settings
from carstudio.generation import run_prediction
from carstudio.prompts import load_prompt_book
from carstudio.providers import Prediction, build_provider
from carstudio.spec import CarSpec

LATENCY = 1.0
IMAGE_BYTES = 2 * MB
PARALLEL = 3
ROUNDS = 8
BARE_EVERY = 2


def run(work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    with FakeProcess(work, latency=LATENCY, image_bytes=IMAGE_BYTES) as fake:
        fake.warm()
        settings = Settings(
            _env_file=None,
            data_dir=work / "data",
            provider="replicate",
            replicate_api_token=TOKEN,
            replicate_base_url=fake.base_url,
        )
        prompts = load_prompt_book(settings.prompts_file)
        provider = build_provider(settings, prompts)
        counter = iter(range(1_000_000))

        def one_row() -> dict[str, float]:
            n = next(counter)
            spec = CarSpec(make="Carmaker", model=f"Model-{n}", year="2024", color="red")
            marks: dict[str, float] = {}

            def created(_: Prediction) -> None:
                marks["created"] = time.perf_counter()

            def downloading(_: Prediction) -> None:
                marks["downloading"] = time.perf_counter()

            started = time.perf_counter()
            run_prediction(
                provider,
                prompt=prompts.build(spec),
                spec=spec,
                dest=work / "data" / "rows" / f"row-{n}",
                deadline=time.monotonic() + 60,
                on_created=created,
                on_downloading=downloading,
            )
            ended = time.perf_counter()
            return {
                "total": ended - started,
                "create": marks["created"] - started,
                "wait": marks["downloading"] - marks["created"],
                "download": ended - marks["downloading"],
            }

        def one_bare() -> float:
            started = time.perf_counter()
            fake.create(f"bare create {time.perf_counter_ns()}")
            return time.perf_counter() - started

        rows: list[dict[str, float]] = []
        bare: list[float] = []
        with ThreadPoolExecutor(PARALLEL) as pool:
            # Alternate bare rounds with row rounds so drift affects both alike.
            for round_number in range(ROUNDS):
                if round_number % BARE_EVERY == 0:
                    bare += pool.map(lambda _: one_bare(), range(PARALLEL))
                rows += pool.map(lambda _: one_row(), range(PARALLEL))
            bare += pool.map(lambda _: one_bare(), range(PARALLEL))
        provider.close()
        creations = len(fake.state()["creations"])

    bare_s = median(bare)
    overhead_ms = [(row["total"] - bare_s) * 1000 for row in rows]
    return {
        "row_overhead_ms_median": median(overhead_ms),
        "row_overhead_ms_p95": percentile(overhead_ms, 0.95),
        "details": {
            "latency_s": LATENCY,
            "image_bytes": IMAGE_BYTES,
            "parallel": PARALLEL,
            "rows": len(rows),
            "bare_creates": len(bare),
            "fake_creations": creations,
            "bare_ms_median": bare_s * 1000,
            "bare_ms_p95": percentile(bare, 0.95) * 1000,
            "row_ms_median": median([r["total"] for r in rows]) * 1000,
            "over_nominal_latency_ms_median": median([r["total"] - LATENCY for r in rows]) * 1000,
            "create_minus_bare_ms_median": median([r["create"] - bare_s for r in rows]) * 1000,
            "wait_ms_median": median([r["wait"] for r in rows]) * 1000,
            "download_check_store_ms_median": median([r["download"] for r in rows]) * 1000,
            "download_check_store_ms_p95": percentile([r["download"] for r in rows], 0.95) * 1000,
        },
    }
