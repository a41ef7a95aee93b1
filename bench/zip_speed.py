"""Building a batch's ZIP (`archive.build_zip`, 50 images of 2 MB) against `zip -0` of the same
files, alternately, several times; the medians are compared."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import MB, median
from carstudio.jobs import archive
from carstudio.jobs.models import Job, Row
from carstudio.jobs.states import RowState

IMAGES = 50
IMAGE_BYTES = 2 * MB
REPEATS = 5
ZIP = shutil.which("zip") or "/usr/bin/zip"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _job(images_dir: Path) -> tuple[Job, list[Row]]:
    """A finished job whose rows point at IMAGES files of random (incompressible) bytes."""
    job = Job(
        id=uuid.uuid4().hex,
        created_at=time.time(),
        source_name="cars.csv",
        provider="replicate",
        model="google/imagen-3",
    )
    folder = images_dir / job.id
    folder.mkdir(parents=True)
    rows = []
    for n in range(1, IMAGES + 1):
        name = f"carmaker-model-{n}-2024-white.png"
        (folder / name).write_bytes(_PNG_SIGNATURE + os.urandom(IMAGE_BYTES - len(_PNG_SIGNATURE)))
        rows.append(
            Row(
                job_id=job.id,
                row=n + 1,
                values={"make": "Carmaker", "model": f"Model-{n}", "year": "2024"},
                prompt=f"A photograph of a 2024 Carmaker Model-{n}",
                stem=name.removesuffix(".png"),
                state=RowState.DONE.value,
                prediction_id=uuid.uuid4().hex[:26],
                seconds=1.0,
                cached=False,
                image_name=name,
            )
        )
    return job, rows


def run(work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    images_dir = work / "images"
    job, rows = _job(images_dir)
    folder = images_dir / job.id
    names = [row.image_name or "" for row in rows]
    ours_zip, zip0_zip = work / "ours.zip", work / "zip0.zip"

    def ours() -> float:
        started = time.perf_counter()
        archive.build_zip(job, rows, images_dir=images_dir, dest=ours_zip)
        return time.perf_counter() - started

    def zip0() -> float:
        zip0_zip.unlink(missing_ok=True)  # zip adds to an existing archive
        started = time.perf_counter()
        subprocess.run([ZIP, "-0", "-q", str(zip0_zip), *names], cwd=folder, check=True)
        return time.perf_counter() - started

    ours(), zip0()  # warm the page cache and both code paths
    ours_s: list[float] = []
    zip0_s: list[float] = []
    for repeat in range(REPEATS):
        pair = (ours, zip0) if repeat % 2 == 0 else (zip0, ours)
        for step in pair:
            (ours_s if step is ours else zip0_s).append(step())
    sizes = {"ours": ours_zip.stat().st_size, "zip0": zip0_zip.stat().st_size}
    ours_zip.unlink()
    zip0_zip.unlink()
    shutil.rmtree(images_dir)
    total_mb = IMAGES * IMAGE_BYTES / MB
    return {
        "zip_ratio_vs_zip0": median(ours_s) / median(zip0_s),
        "details": {
            "images": IMAGES,
            "image_bytes": IMAGE_BYTES,
            "repeats": REPEATS,
            "build_zip_s_median": median(ours_s),
            "zip0_s_median": median(zip0_s),
            "build_zip_s": [round(s, 4) for s in ours_s],
            "zip0_s": [round(s, 4) for s in zip0_s],
            "build_zip_mb_per_s": total_mb / median(ours_s),
            "zip0_mb_per_s": total_mb / median(zip0_s),
            "archive_bytes": sizes,
        },
    }
