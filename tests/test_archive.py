"""The batch ZIP: built whole, or from the finished images packed while the batch's last
images were still being made."""

from __future__ import annotations

import zipfile
from pathlib import Path

from carstudio.jobs import archive
from carstudio.jobs.models import Job, Row
from carstudio.jobs.states import RowState

JOB = "a" * 32


def _batch(tmp_path: Path, rows: int) -> tuple[Job, list[Row], Path]:
    images = tmp_path / "images"
    (images / JOB).mkdir(parents=True)
    job = Job(id=JOB, created_at=0.0, provider="preview", model="preview", source_name="cars.csv")
    made = [
        Row(job_id=JOB, row=n + 2, values={"make": f"Make{n}"}, state=RowState.QUEUED.value)
        for n in range(rows)
    ]
    return job, made, images


def _finish(row: Row, images: Path, data: bytes) -> None:
    row.state, row.image_name = RowState.DONE.value, f"car-{row.row}.png"
    row.cached, row.rerolls = False, 0
    (images / JOB / row.image_name).write_bytes(data)


def _contents(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist() if name != "manifest.json"}


def test_the_zip_takes_over_the_images_packed_ahead_and_adds_the_rest(tmp_path: Path) -> None:
    job, rows, images = _batch(tmp_path, 4)
    for row in rows[:3]:
        _finish(row, images, f"image of row {row.row}".encode())
    dest = tmp_path / "downloads" / f"{JOB}.zip"
    dest.parent.mkdir()
    archive.prepack(rows, images_dir=images, job_id=JOB, dest=dest)
    assert archive.prepack_path(dest).is_file()

    _finish(rows[3], images, b"the last image")
    archive.build_zip(job, rows, images_dir=images, dest=dest)

    assert _contents(dest) == {
        "car-2.png": b"image of row 2",
        "car-3.png": b"image of row 3",
        "car-4.png": b"image of row 4",
        "car-5.png": b"the last image",
    }
    with zipfile.ZipFile(dest) as zf:
        assert zf.testzip() is None
        assert "manifest.json" in zf.namelist()
    assert not archive.prepack_path(dest).exists(), "the pack became the ZIP"
    assert archive.leftover_parts(dest) == []


def test_a_later_pack_adds_the_images_finished_since_to_the_pack_before(tmp_path: Path) -> None:
    job, rows, images = _batch(tmp_path, 3)
    for row in rows[:2]:
        _finish(row, images, f"image of row {row.row}".encode())
    dest = tmp_path / f"{JOB}.zip"
    archive.prepack(rows, images_dir=images, job_id=JOB, dest=dest)
    with zipfile.ZipFile(archive.prepack_path(dest)) as first:
        offsets = {info.filename: info.header_offset for info in first.infolist()}

    _finish(rows[2], images, b"image of row 4")
    archive.prepack(rows, images_dir=images, job_id=JOB, dest=dest)

    with zipfile.ZipFile(archive.prepack_path(dest)) as second:
        assert second.testzip() is None
        kept = {info.filename: info.header_offset for info in second.infolist()}
    assert kept == offsets | {"car-4.png": kept["car-4.png"]}, "the first two were not copied again"
    assert archive.leftover_parts(dest) == []
    archive.build_zip(job, rows, images_dir=images, dest=dest)
    assert _contents(dest) == {f"car-{n}.png": f"image of row {n}".encode() for n in (2, 3, 4)}


def test_a_pack_that_no_longer_matches_the_images_is_not_used(tmp_path: Path) -> None:
    job, rows, images = _batch(tmp_path, 3)
    for row in rows:
        _finish(row, images, f"first image of row {row.row}".encode())
    dest = tmp_path / f"{JOB}.zip"
    archive.prepack(rows, images_dir=images, job_id=JOB, dest=dest)
    _finish(rows[1], images, b"made again, a longer image this time")
    rows[2].state, rows[2].image_name = RowState.FAILED.value, None

    archive.build_zip(job, rows, images_dir=images, dest=dest)

    assert _contents(dest) == {
        "car-2.png": b"first image of row 2",
        "car-3.png": b"made again, a longer image this time",
        "failed_rows.json": _contents(dest)["failed_rows.json"],
        "failed_rows.csv": _contents(dest)["failed_rows.csv"],
    }
    assert not archive.prepack_path(dest).exists()
    assert archive.leftover_parts(dest) == []


def test_a_broken_pack_is_set_aside_and_the_zip_built_whole(tmp_path: Path) -> None:
    job, rows, images = _batch(tmp_path, 2)
    for row in rows:
        _finish(row, images, b"an image")
    dest = tmp_path / f"{JOB}.zip"
    archive.prepack_path(dest).write_bytes(b"not a zip at all")

    archive.build_zip(job, rows, images_dir=images, dest=dest)

    assert sorted(_contents(dest)) == ["car-2.png", "car-3.png"]
    assert not archive.prepack_path(dest).exists()
