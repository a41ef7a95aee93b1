"""A progress answer's JSON is the answer model's own, though only the rows that changed since
the batch's last version are made again."""

from __future__ import annotations

import dataclasses
import json

import pytest

from carstudio.jobs.progress import JobStatus, RowStatus
from carstudio.jobs.states import RowState
from carstudio.web import progress_bodies
from carstudio.web.progress_bodies import ProgressBodies
from carstudio.web.schemas import BatchStatusOut, RowProgressOut
from tests.batch_helpers import running_status

CHECKS = {
    "fingerprint": "ab" * 72 + ":" + "cd" * 48,
    "width": 1024,
    "height": 1024,
    "checks": [
        {"name": name, "verdict": "pass", "score": 0.1, "sentence": "Fine."}
        for name in ("shape", "background", "colour", "blank", "duplicate")
    ],
}


def _row(number: int, state: RowState = RowState.QUEUED) -> RowStatus:
    done = state is RowState.DONE
    return RowStatus(
        row=number,
        state=state.value,
        title=f"Kia Sorento {number}",
        image_name=f"car-{number}.png" if done else None,
        error=None,
        failure=None,
        seconds=1.5 if done else None,
        identity={"vin": "KNDPMCAC5J7312345", "stock_number": f"A{number}"},
        checks=CHECKS if done else None,
    )


def _whole(status: JobStatus) -> bytes:
    return BatchStatusOut.of(status).model_dump_json(by_alias=True).encode()


def test_each_version_is_the_whole_answer_with_only_changed_rows_made_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[int] = []
    make_row = RowProgressOut.of

    def counting(row: RowStatus, base: str) -> RowProgressOut:
        made.append(row.row)
        return make_row(row, base)

    monkeypatch.setattr(progress_bodies.RowProgressOut, "of", staticmethod(counting))
    bodies = ProgressBodies()
    rows = tuple(_row(n) for n in range(2, 52))
    first = running_status(rows, version=1)
    expected = _whole(first)
    made.clear()
    assert bodies.of(first) == expected
    assert len(made) == 50
    made.clear()
    assert bodies.of(first) == expected  # the same version: nothing is made again
    assert made == []
    changed = (*rows[:7], _row(9, RowState.DONE), *rows[8:])
    second = running_status(changed, version=2)
    expected = _whole(second)
    made.clear()
    body = bodies.of(second)
    assert body == expected
    assert made == [9]
    answer = json.loads(body)
    assert answer["done"] == 1 and answer["rows"][7]["fileName"] == "car-9.png"
    assert [row["row"] for row in answer["rows"]] == list(range(2, 52))


def test_a_batch_without_rows_is_answered_as_the_model_would() -> None:
    empty = dataclasses.replace(running_status((), version=1), total=0, running=0)
    assert ProgressBodies().of(empty) == _whole(empty)
