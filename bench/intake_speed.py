"""`read_intake` on files at the 5 MB limit: one of many short rows (refused for its row count),
one of at most 50 rows with huge cells (read, with every overlong cell reported), and awkward
shapes a reader can trip over (blank or invisible lines, one endless header or row)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.common import median
from carstudio.errors import CarStudioError
from carstudio.intake import MAX_BYTES, MAX_ROWS, read_intake

REPEATS = 7
HEADER = b"make,model,body_style,trim,year,color,background,aspect_ratio\n"


def many_rows() -> bytes:
    """Short car rows up to just under the size limit (about 100,000 of them)."""
    lines = [HEADER]
    size = len(HEADER)
    n = 0
    while True:
        n += 1
        line = f"Carmaker,Model-{n},sedan,XSE,2024,red,white,1:1\n".encode()
        if size + len(line) > MAX_BYTES:
            return b"".join(lines)
        lines.append(line)
        size += len(line)


def huge_cells() -> bytes:
    """MAX_ROWS rows whose make and colour cells share the rest of the size limit."""
    cell = (MAX_BYTES - len(HEADER)) // MAX_ROWS // 2 - 40
    body = b"".join(
        b"M" * cell + f",Model-{n},sedan,XSE,2024,".encode() + b"r" * cell + b",white,1:1\n"
        for n in range(1, MAX_ROWS + 1)
    )
    return HEADER + body


def awkward_files() -> dict[str, bytes]:
    """Files at the size limit shaped to slow a CSV reader down: a million blank or invisible
    lines, or one endless header or row."""
    return {
        "blank_lines": b"make\n" + b"\n" * (MAX_BYTES - 10) + b"a\n",
        "invisible_lines": b"make\n" + "\u200b\n".encode() * 1_300_000 + b"a\n",
        "wide_header": b"make,model" + b"," * (MAX_BYTES - 20) + b"\na,b\n",
        "wide_row": b"make,model\na,b" + b",x" * (MAX_BYTES // 2 - 20) + b"\n",
    }


def outcome(data: bytes) -> str:
    try:
        report = read_intake(data)
    except CarStudioError as exc:
        return f"rejected ({type(exc).__name__}): {exc.message}"
    return (
        f"read: ok={report.ok}, rows={report.row_count}, "
        f"rowErrors={len(report.row_errors)}, first: "
        + (report.row_errors[0].message if report.row_errors else "-")
    )


def timing(data: bytes) -> float:
    """Median milliseconds of REPEATS reads (after one untimed read)."""
    outcome(data)
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        outcome(data)
        times.append(time.perf_counter() - started)
    return median(times) * 1000


def run(work: Path) -> dict[str, Any]:
    many, wide = many_rows(), huge_cells()
    over = many + b"Carmaker,Model-x,,,,,,\n" * 3  # a few bytes over the limit
    assert len(over) > MAX_BYTES
    awkward = awkward_files()
    assert all(len(data) <= MAX_BYTES for data in awkward.values())
    awkward_ms = {name: timing(data) for name, data in awkward.items()}
    return {
        "intake_ms_5mb": timing(many),
        "intake_outcome": outcome(many),
        "intake_ms_5mb_awkward": max(awkward_ms.values()),
        "details": {
            "awkward_ms": awkward_ms,
            "awkward_outcomes": {name: outcome(data) for name, data in awkward.items()},
            "many_rows_bytes": len(many),
            "huge_cells_bytes": len(wide),
            "huge_cells_ms": timing(wide),
            "huge_cells_outcome": outcome(wide),
            "over_limit_ms": timing(over),
            "over_limit_outcome": outcome(over),
        },
    }
