"""Runs the benchmarks in order, judges each figure against its target, prints and saves them."""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import (
    cache_rerun,
    handover,
    intake_speed,
    makespan,
    peak_rss,
    qc_speed,
    row_overhead,
    scale_out,
    shutdown,
    slow_clients,
    status_load,
    status_rps,
    zip_speed,
)
from bench.common import exit_on_sigterm, machine, stop_all

RESULTS = Path(__file__).parent / "results.json"

BENCHMARKS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "makespan": makespan.run,
    "handover": handover.run,
    "status_load": status_load.run,
    "row_overhead": row_overhead.run,
    "status": status_rps.run,
    "zip": zip_speed.run,
    "rss": peak_rss.run,
    "intake": intake_speed.run,
    "shutdown": shutdown.run,
    "slow": slow_clients.run,
    "scale": scale_out.run,
    "cache": cache_rerun.run,
    "qc": qc_speed.run,
}

RSS_GROWTH_LIMIT_MB = 10.0
SHOWN_CHARS = 48  # longer values (the intake outcome) are cut in the table, whole in the JSON


@dataclass(frozen=True)
class Figure:
    key: str
    unit: str
    target: str = ""
    check: Callable[[dict[str, Any]], bool] | None = None


FIGURES: dict[str, list[Figure]] = {
    "makespan": [
        Figure("makespan_ratio", "×", "≤ 1.05", lambda r: r["makespan_ratio"] <= 1.05),
        Figure("makespan_s", "s"),
        Figure("command_wall_s", "s"),
        # ceil(50 / 3) rounds of the provider's latency is the floor at any latency.
        Figure("makespan_ratio_0_5s", "×", "≤ 1.05", lambda r: r["makespan_ratio_0_5s"] <= 1.05),
        Figure("makespan_s_0_5s", "s"),
        Figure("makespan_ratio_2s", "×", "≤ 1.05", lambda r: r["makespan_ratio_2s"] <= 1.05),
        Figure("makespan_s_2s", "s"),
        # With a 300 ms download per image the floor adds one download: the others overlap.
        Figure(
            "makespan_ratio_download",
            "×",
            "≤ 1.05",
            lambda r: r["makespan_ratio_download"] <= 1.05,
        ),
        Figure("makespan_s_download", "s"),
        Figure("peak_in_flight", "", "= 3", lambda r: r["peak_in_flight"] == 3),
        Figure("creations", "", "= 50", lambda r: r["creations"] == 50),
    ],
    "handover": [
        Figure("handover_ms_median", "ms", "≤ 20", lambda r: r["handover_ms_median"] <= 20),
        Figure("handover_ms_p95", "ms"),
        Figure(
            "handover_redis_ms_median",
            "ms",
            "≤ 50",
            lambda r: r["handover_redis_ms_median"] <= 50,
        ),
        Figure("handover_redis_ms_p95", "ms"),
        Figure(
            "handover_postgres_ms_median",
            "ms",
            "≤ 50",
            lambda r: r["handover_postgres_ms_median"] <= 50,
        ),
        Figure("handover_postgres_ms_p95", "ms"),
        # Behind a running 50-row batch, a new batch starts within one round (0.5 s) ...
        Figure(
            "first_image_behind_start_s",
            "s",
            "≤ 0.5",
            lambda r: r["first_image_behind_start_s"] <= handover.FAIR_LATENCY,
        ),
        # ... ahead of the running batch's waiting rows: at most a round of them goes first.
        Figure(
            "first_image_behind_rows_ahead",
            "",
            "≤ 3",
            lambda r: r["first_image_behind_rows_ahead"] <= handover.FAIR_CONCURRENCY,
        ),
        Figure("first_image_behind_s", "s"),
    ],
    "status_load": [
        Figure("status_load_p99_ms", "ms", "≤ 50", lambda r: r["status_load_p99_ms"] <= 50),
        Figure("status_load_p50_ms", "ms"),
        Figure("status_load_rps", "req/s"),
        Figure("status_load_share_304", ""),
        Figure("status_load_p99_ms_no_etag", "ms"),
    ],
    "row_overhead": [
        Figure("row_overhead_ms_median", "ms", "≤ 50", lambda r: r["row_overhead_ms_median"] <= 50),
        Figure("row_overhead_ms_p95", "ms"),
    ],
    "status": [
        Figure("status_rps_ratio", "×", "≥ 0.5", lambda r: r["status_rps_ratio"] >= 0.5),
        Figure("status_p99_ms", "ms"),
        Figure("bare_rps", "req/s"),
        Figure("status_rps", "req/s"),
    ],
    "cache": [
        Figure("creations_second_run", "", "= 0", lambda r: r["creations_second_run"] == 0),
        Figure("cache_speedup", "×", "≥ 5", lambda r: r["cache_speedup"] >= 5),
        Figure("second_run_s", "s"),
        Figure("first_run_s", "s"),
    ],
    "zip": [
        Figure("zip_ratio_vs_zip0", "×", "≤ 1.2", lambda r: r["zip_ratio_vs_zip0"] <= 1.2),
    ],
    "rss": [
        Figure("peak_rss_mb", "MiB", "≤ 200", lambda r: r["peak_rss_mb"] <= 200),
        Figure("peak_rss_mb_1mb", "MiB"),
        Figure(
            "peak_rss_mb_5mb",
            "MiB",
            f"≤ 1mb + {RSS_GROWTH_LIMIT_MB:g}",
            lambda r: r["peak_rss_mb_5mb"] - r["peak_rss_mb_1mb"] <= RSS_GROWTH_LIMIT_MB,
        ),
    ],
    "intake": [
        # No target was set for intake; half a second keeps an upload's check interactive.
        Figure("intake_ms_5mb", "ms", "≤ 500 (own)", lambda r: r["intake_ms_5mb"] <= 500),
        Figure("intake_outcome", ""),
        # The slowest awkward shape: checking an upload must not take seconds, whatever it holds.
        Figure(
            "intake_ms_5mb_awkward",
            "ms",
            "≤ 1500 (own)",
            lambda r: r["intake_ms_5mb_awkward"] <= 1500,
        ),
    ],
    "shutdown": [
        Figure("shutdown_idle_s", "s"),
        # Open requests get 3 s to finish; a held batch row or single image must not add to it.
        Figure("shutdown_mid_batch_s", "s", "≤ 5", lambda r: r["shutdown_mid_batch_s"] <= 5),
        Figure("shutdown_single_image_s", "s", "≤ 6", lambda r: r["shutdown_single_image_s"] <= 6),
    ],
    "slow": [
        Figure("healthz_p50_ms_unloaded", "ms"),
        Figure("healthz_p99_ms_unloaded", "ms"),
        Figure("healthz_p50_ms_slow_uploads", "ms"),
        Figure(
            "healthz_p99_ms_slow_uploads",
            "ms",
            "≤ 100",
            lambda r: r["healthz_p99_ms_slow_uploads"] <= 100,
        ),
        Figure("healthz_p99_ratio_slow_uploads", "×"),
        Figure("healthz_p99_ms_slow_uploads_opening", "ms"),
        Figure("healthz_p50_ms_slow_heads", "ms"),
        Figure(
            "healthz_p99_ms_slow_heads",
            "ms",
            "≤ 100",
            lambda r: r["healthz_p99_ms_slow_heads"] <= 100,
        ),
        Figure("healthz_p99_ratio_slow_heads", "×"),
        Figure("healthz_p99_ms_slow_heads_opening", "ms"),
        # Every slow upload is answered 408 and closed once the body timeout passes.
        Figure("slow_uploads_cut_408", "", "= 1000", lambda r: r["slow_uploads_cut_408"] == 1000),
        # And every slow head once the head timeout passes.
        Figure("slow_heads_cut_408", "", "= 1000", lambda r: r["slow_heads_cut_408"] == 1000),
        # A refused 200 MB body must not be held: the peak stays where it was, within noise.
        Figure(
            "large_body_hwm_growth_mb",
            "MiB",
            "≤ 10",
            lambda r: r["large_body_hwm_growth_mb"] <= 10,
        ),
    ],
    "qc": [
        # The checks run on every image: at most 50 ms each, decoding included.
        Figure("qc_ms_median_png", "ms", "≤ 50", lambda r: r["qc_ms_median_png"] <= 50),
        Figure("qc_ms_p95_png", "ms"),
        Figure("decode_ms_median_png", "ms"),
        Figure("qc_ms_median_jpeg", "ms"),
        Figure("decode_ms_median_jpeg", "ms"),
        Figure("qc_wrong_images_missed", "", "= 0", lambda r: r["qc_wrong_images_missed"] == 0),
        Figure("qc_good_images_flagged", "", "= 0", lambda r: r["qc_good_images_flagged"] == 0),
    ],
    "scale": [
        Figure("scale_one_worker_s", "s"),
        Figure("scale_two_workers_s", "s"),
        Figure("scale_peak_in_flight", "", "≤ 3", lambda r: r["scale_peak_in_flight"] <= 3),
    ],
}


def _show(value: Any, unit: str) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        digits = 3 if abs(value) < 10 else 1
        text = f"{value:,.{digits}f}"
    else:
        text = str(value)
    return f"{text} {unit}".strip() if unit not in ("", "×") else text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"any of {', '.join(BENCHMARKS)} (default: all)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = [name for name in BENCHMARKS if name in args.names] or list(BENCHMARKS)
    exit_on_sigterm()
    console = Console()
    info = machine() | {"load_average_start": [round(x, 2) for x in os.getloadavg()]}
    console.print(
        f"[bold]Car Studio benchmarks[/] on {info['cpu_count']} × {info['cpu_model']}, "
        f"Python {info['python']}, load {info['load_average_start']}"
    )
    results: dict[str, Any] = {}
    details: dict[str, Any] = {}
    errors: dict[str, str] = {}
    durations: dict[str, float] = {}
    work_root = Path(tempfile.mkdtemp(prefix="carstudio-bench-"))
    started = time.perf_counter()
    try:
        for name in names:
            console.print(f"… {name}", style="dim")
            began = time.perf_counter()
            try:
                figures = BENCHMARKS[name](work_root / name)
            except KeyboardInterrupt:
                console.print("Interrupted; stopping child processes.")
                raise
            except Exception as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"
                console.print(traceback.format_exc(), style="red", markup=False)
            else:
                details[name] = figures.pop("details", {})
                results |= figures
            finally:
                stop_all()
                durations[name] = round(time.perf_counter() - began, 1)
    finally:
        stop_all()
        if not args.keep:
            shutil.rmtree(work_root, ignore_errors=True)
    info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]

    table = Table(title="Car Studio benchmarks", title_justify="left")
    for column in ("Figure", "Value", "Target", "Result"):
        table.add_column(column, justify="right" if column == "Value" else "left")
    verdicts: dict[str, dict[str, Any]] = {}
    for name in names:
        for figure in FIGURES[name]:
            if name in errors:
                table.add_row(figure.key, "—", figure.target, "[red]ERROR[/]")
                continue
            value = results[figure.key]
            verdict = "—"
            if figure.check is not None:
                passed = figure.check(results)
                verdict = "[green]PASS[/]" if passed else "[red]MISS[/]"
                verdicts[figure.key] = {"target": figure.target, "pass": passed}
            shown = _show(value, figure.unit)
            if len(shown) > SHOWN_CHARS:
                shown = shown[: SHOWN_CHARS - 1] + "…"
            table.add_row(figure.key, shown, figure.target, verdict)
    console.print(table)
    if args.keep:
        console.print(f"Work files kept in {work_root}")

    if errors:
        for name, message in errors.items():
            console.print(f"[red]{name} failed:[/] {message}", markup=True)
        return 1
    if set(names) == set(BENCHMARKS):
        payload = results | {
            "targets": verdicts,
            "machine": info,
            "seconds": {"total": round(time.perf_counter() - started, 1)} | durations,
            "details": details,
        }
        RESULTS.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        console.print(f"Wrote {RESULTS}")
    return 0
