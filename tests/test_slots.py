"""One pool of generation slots for single images and batch rows alike."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from carstudio.errors import ClientGone, TryLater
from carstudio.jobs.models import SingleSlot
from carstudio.jobs.slots import SingleImageLine
from carstudio.web.app import create_app
from tests.batch_helpers import numbered_cars, wait_until
from tests.fakes.replicate import FakeReplicate
from tests.serving import servers


def post_singles(client: TestClient, count: int) -> list[int]:
    def one(n: int) -> int:
        return client.post(
            "/api/car-image", json={"make": "Kia", "model": f"Single {n}"}
        ).status_code

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def test_concurrent_single_images_never_exceed_the_limit(
    client_for, fake_replicate: FakeReplicate
) -> None:
    fake_replicate.latency = 0.4
    client = client_for(fake=fake_replicate, concurrency=3, waiting_singles_per_client=8)
    assert post_singles(client, 8) == [200] * 8
    assert fake_replicate.peak_in_flight == 3
    assert fake_replicate.creation_count("Single") == 8


def test_a_client_with_its_share_waiting_is_told_to_come_back(
    client_for, fake_replicate: FakeReplicate
) -> None:
    client = client_for(fake=fake_replicate, waiting_singles_per_client=2)
    store = client.app.state.batches.store
    for n in range(2):  # two of this client's images already wait for a slot
        store.queue_single(
            f"earlier-{n}", client="address:testclient", expires_at=time.time() + 60, cap=2
        )
    refused = client.post("/api/car-image", json={"make": "Kia"})
    assert refused.status_code == 429 and refused.headers["retry-after"] == "5"
    assert "2 images waiting" in refused.json()["error"]
    assert fake_replicate.creation_count() == 0
    store.release_single_slot("earlier-0")
    assert client.post("/api/car-image", json={"make": "Kia"}).status_code == 200


def test_a_single_image_goes_ahead_of_batch_rows_that_have_not_started(
    client_for, fake_replicate: FakeReplicate
) -> None:
    fake_replicate.latency = 0.3
    client = client_for(fake=fake_replicate, concurrency=3)
    job = client.post(
        "/api/car-batch", files={"file": ("cars.csv", numbered_cars(9), "text/csv")}
    ).json()["jobId"]
    wait_until(lambda: fake_replicate.creation_count("Model-") >= 3)
    assert client.post("/api/car-image", json={"make": "Kia", "model": "Urgent"}).status_code == 200
    prompts = [created["prompt"] for created in fake_replicate.creations]
    single = next(n for n, prompt in enumerate(prompts) if "Urgent" in prompt)
    # It waits at most for the rows already being made to finish (three, plus any that had
    # taken a slot just before it asked), not for the rest of the batch.
    assert single <= 6, prompts[: single + 1]
    assert fake_replicate.peak_in_flight <= 3
    wait_until(lambda: client.get(f"/api/batch/{job}").json()["zipUrl"], timeout=30)


def test_a_single_image_whose_client_left_while_waiting_makes_nothing(make_settings) -> None:
    from carstudio.generation import Studio
    from carstudio.jobs.service import BatchService

    settings = make_settings(concurrency=1)
    batches = BatchService(settings, Studio(settings))
    try:
        line: SingleImageLine = batches.singles
        holding = line.slot(client="a")
        holding.__enter__()  # the only slot is taken
        left = threading.Event()
        outcome: list[BaseException] = []

        def wait_for_slot() -> None:
            try:
                with line.slot(client="b", cancelled=left):
                    outcome.append(AssertionError("it got a slot"))
            except BaseException as exc:
                outcome.append(exc)

        waiter = threading.Thread(target=wait_for_slot)
        waiter.start()
        left.set()
        waiter.join(timeout=5)
        assert len(outcome) == 1 and isinstance(outcome[0], ClientGone)
        holding.__exit__(None, None, None)
        with line.slot(client="c"):  # the line is empty again: its ticket was removed
            pass
        # One client may have `per_client` images waiting; the next is told to come back.
        for n in range(line.per_client):
            assert batches.store.queue_single(
                f"waiting-{n}", client="d", expires_at=time.time() + 60, cap=line.per_client
            )
        with pytest.raises(TryLater, match="images waiting"), line.slot(client="d"):
            pass
    finally:
        batches.stop()
        batches.studio.close()


def test_a_client_that_hangs_up_while_its_image_waits_makes_nothing(
    make_settings, fake_replicate: FakeReplicate
) -> None:
    """Over a real socket: the request is sent, the slot is busy, the client closes."""
    fake_replicate.latency = 1.0
    settings = make_settings(fake=fake_replicate, concurrency=1)
    app = create_app(settings)
    with servers() as running:
        base = running.start(app)
        busy = threading.Thread(
            target=httpx.post,
            args=(f"{base}/api/car-image",),
            kwargs={"json": {"make": "Kia", "model": "Busy"}, "timeout": 30},
        )
        busy.start()
        wait_until(lambda: fake_replicate.creation_count("Busy") == 1)
        body = json.dumps({"make": "Kia", "model": "Abandoned"}).encode()
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                b"POST /api/car-image HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            wait_until(lambda: waiting(app) == 1)  # in line for the one slot, then hung up
        busy.join(timeout=30)
        # Once the slot is free again, any image still in line would have been made by now.
        assert httpx.post(f"{base}/api/car-image", json={"make": "Kia"}).status_code == 200
    assert fake_replicate.creation_count("Abandoned") == 0
    assert fake_replicate.creation_count() == 2


def waiting(app: Any) -> int:
    """Single images in line for a slot, as the store counts them."""
    with app.state.batches.store.session() as s:
        return int(
            s.scalar(
                select(func.count()).select_from(SingleSlot).where(SingleSlot.holding.is_(False))
            )
            or 0
        )


# -- the line: whose row starts next -------------------------------------------------------------


class Ticks:
    """A clock that moves one second at every look, so every start has its own moment."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def line_store(tmp_path) -> Any:
    from carstudio.jobs.store import Store

    store = Store(f"sqlite:///{tmp_path / 'line.db'}", clock=Ticks())
    yield store
    store.close()


def add_batch(store: Any, name: str, rows: int, *, owner: int | None = None) -> None:
    from carstudio.jobs.models import Job, Row

    job = Job(
        id=name.ljust(32, "0"),
        created_at=store.clock(),
        provider="preview",
        model="preview",
        owner_id=owner,
    )
    store.add_job(
        job, [Row(job_id=job.id, row=n + 2, values={}, spec={"make": name}) for n in range(rows)]
    )


def start_next(store: Any, limit: int) -> tuple[str, int] | None:
    """Start the row whose turn it is; (its batch, its row number), or None."""
    turn = store.take_next("worker", limit, 60)
    if turn.row is None:
        return None
    return turn.row.job_id.rstrip("0"), turn.row.row


def finish(store: Any, started: tuple[str, int]) -> None:
    from carstudio.jobs.states import RowState

    row = next(r for r in store.rows(started[0].ljust(32, "0")) if r.row == started[1])
    store.advance(row.id, "worker", state=RowState.DONE.value)


def test_batches_take_turns_and_each_keeps_spreadsheet_order(line_store) -> None:
    add_batch(line_store, "a", 5)
    add_batch(line_store, "b", 2)
    order = []
    while (started := start_next(line_store, limit=1)) is not None:
        order.append(started)
        finish(line_store, started)
    assert order == [("a", 2), ("b", 2), ("a", 3), ("b", 3), ("a", 4), ("a", 5), ("a", 6)]


def test_a_batch_submitted_behind_a_running_one_starts_at_the_next_free_slot(line_store) -> None:
    add_batch(line_store, "big", 50)
    running = [start_next(line_store, limit=3) for _ in range(3)]
    assert start_next(line_store, limit=3) is None, "three slots, three images"
    add_batch(line_store, "late", 3)
    assert line_store.take_next("worker", 3, 60).waiting
    assert running[0] is not None
    finish(line_store, running[0])
    assert start_next(line_store, limit=3) == ("late", 2)
    # From then on the two share the slots: the big batch has two, so it goes next.
    assert running[1] is not None
    finish(line_store, running[1])
    assert start_next(line_store, limit=3) == ("big", 5)


def test_owners_take_turns_whatever_number_of_batches_they_have(line_store) -> None:
    add_batch(line_store, "u1first", 2, owner=1)
    add_batch(line_store, "u1second", 2, owner=1)
    add_batch(line_store, "u2", 2, owner=2)
    order = []
    while (started := start_next(line_store, limit=1)) is not None:
        order.append(started)
        finish(line_store, started)
    assert order == [
        ("u1first", 2),
        ("u2", 2),
        ("u1first", 3),
        ("u2", 3),
        ("u1second", 2),
        ("u1second", 3),
    ]


def test_a_waiting_single_image_goes_ahead_of_rows_that_have_not_started(line_store) -> None:
    add_batch(line_store, "a", 3)
    started = start_next(line_store, limit=2)
    assert started is not None
    line_store.queue_single("single", client="c", expires_at=line_store.clock() + 600, cap=2)
    turn = line_store.take_next("worker", 2, 60)
    assert turn.row is None and turn.waiting, "the free slot is the single image's"
    assert line_store.take_single_slot("single", 2, hold_until=line_store.clock() + 600)
    line_store.release_single_slot("single")
    assert start_next(line_store, limit=2) == ("a", 3)


def test_an_empty_line_says_so(line_store) -> None:
    turn = line_store.take_next("worker", 3, 60)
    assert turn.row is None and not turn.waiting


def test_a_freed_slot_wakes_a_waiting_thread_at_once(line_store) -> None:
    """Handed over through the store's condition: the waiter would otherwise sleep a minute."""
    add_batch(line_store, "a", 2)
    started = start_next(line_store, limit=1)
    assert started is not None
    woken = threading.Event()
    ready = threading.Event()

    def wait() -> None:
        with line_store.rows_waiting:
            ready.set()
            line_store.rows_waiting.wait(60)
        woken.set()

    waiter = threading.Thread(target=wait)
    waiter.start()
    ready.wait(10)
    finish(line_store, started)
    waiter.join(30)
    assert woken.is_set()
    assert start_next(line_store, limit=1) == ("a", 3)


def test_a_slot_freed_between_a_look_and_the_sleep_is_not_missed(line_store) -> None:
    """A row looks for a slot, finds none, and before it sleeps the slot is freed: the sleep
    ends at once instead of lasting until the safety-net poll."""
    add_batch(line_store, "a", 2)
    started = start_next(line_store, limit=1)
    assert started is not None
    seen = line_store.slot_changes
    assert line_store.take_next("worker", 1, 60).row is None  # the look: no slot
    finish(line_store, started)  # freed before the waiter sleeps
    assert line_store.wait_for_slot_change(60, since=seen), "woken, not timed out"
    assert start_next(line_store, limit=1) == ("a", 3)
    assert not line_store.wait_for_slot_change(0, since=line_store.slot_changes)


def test_a_freed_slot_is_announced_to_the_other_processes(line_store) -> None:
    add_batch(line_store, "a", 1)
    announced: list[bool] = []
    line_store.announce_slot = lambda: announced.append(True)
    started = start_next(line_store, limit=1)
    assert started is not None and announced == []
    finish(line_store, started)
    assert announced == [True]


def test_an_idle_queue_worker_is_woken_by_a_task_queued_in_its_process(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not polled: were it not woken, the worker would wait a minute for its next look."""
    from carstudio.jobs import queue

    monkeypatch.setattr(queue, "SQLITE_WAIT", 60.0)
    storage = queue.WakingSqliteStorage("line", filename=str(tmp_path / "queue.db"))
    got: list[bytes | None] = []
    waiting = threading.Event()
    wait = storage._arrived.wait

    def waits(timeout: float | None = None) -> bool:
        waiting.set()
        return wait(timeout)

    storage._arrived.wait = waits
    waiter = threading.Thread(target=lambda: got.append(storage.dequeue()))
    waiter.start()
    assert waiting.wait(30), "the empty queue is waited on"
    storage.enqueue(b"task")
    waiter.join(30)
    assert got == [b"task"]


def test_a_row_that_frees_a_slot_lets_the_row_woken_for_it_send_its_create_first(
    make_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next image's create is on the batch's critical path, the freed row's download
    is not: the row that frees a slot a sleeping row is woken for waits for a create."""
    from carstudio.generation import Studio
    from carstudio.jobs import worker as row_worker
    from carstudio.jobs.service import BatchService

    monkeypatch.setattr(row_worker, "HAND_OVER_FIRST", 60.0)  # only a create ends the wait
    settings = make_settings()
    service = BatchService(settings, Studio(settings))
    store, worker = service.store, service.worker
    try:
        sleeper = threading.Thread(
            target=store.wait_for_slot_change, args=(60,), kwargs={"since": store.slot_changes}
        )
        sleeper.start()
        wait_until(lambda: store.rows_asleep == 1, timeout=10)
        order: list[str] = []

        def free_the_slot() -> None:
            with worker._handing_over():
                store.wake_slot_waiters()
            order.append("download")

        freeing = threading.Thread(target=free_the_slot)
        freeing.start()
        sleeper.join(10)
        assert not sleeper.is_alive() and store.rows_asleep == 0
        order.append("create")
        worker._create_sending()
        freeing.join(10)
        assert order == ["create", "download"]

        # With nobody asleep, the row goes straight on to its download.
        with worker._handing_over():
            store.wake_slot_waiters()
    finally:
        service.stop()
        service.studio.close()
