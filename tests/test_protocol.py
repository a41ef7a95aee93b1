"""Car Studio's HTTP protocol refuses a request head over 64 KB, however it arrives, one that
does not arrive in time, and a request that is not HTTP, each after the answers owed before it;
otherwise it serves keep-alive and pipelined requests as before. Against a real server: Car
Studio served by uvicorn with `carstudio serve`'s options, spoken to over raw sockets."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from carstudio.config import Settings
from carstudio.web.app import create_app
from carstudio.web.limits import server_options
from carstudio.web.protocol import HEAD_TOO_LARGE, MAX_HEADER_BYTES, NOT_HTTP, head_too_slow
from tests.batch_helpers import numbered_cars
from tests.serving import servers

KB = 1024


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One keep-alive connection to the server, sending raw bytes and reading whole answers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.reader = self.sock.makefile("rb")

    def get(self, *, filler: int = 0, end: bool = True) -> bytes:
        """A `GET /healthz` head, with an `X-Filler` header of `filler` bytes."""
        head = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n".encode()
        if filler:
            head += b"X-Filler: " + b"a" * filler + b"\r\n"
        return head + (b"\r\n" if end else b"")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answered(self, wait: float) -> bool:
        return bool(select.select([self.sock], [], [], wait)[0])

    def answers(self, count: int | None = None) -> list[Answer]:
        """The next `count` answers, or all of them until the server closes the connection."""
        got: list[Answer] = []
        while count is None or len(got) < count:
            status_line = self.reader.readline()
            if not status_line:
                assert count is None, f"the connection closed after {len(got)} answers"
                break
            headers = {}
            while (line := self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = self.reader.read(int(headers.get("content-length", "0")))
            got.append(Answer(int(status_line.split()[1]), headers, body))
        return got

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


@pytest.fixture
def connect(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Connection]]:
    """`connect(**settings)`: a new connection to Car Studio, served as `carstudio serve`
    serves it. A test starts one server, with the settings of its first `connect`."""
    opened: list[Connection] = []
    ports: list[int] = []
    with servers() as running:

        def open_one(**overrides: Any) -> Connection:
            if not ports:
                settings = make_settings(**overrides)
                address = running.start(create_app(settings), **server_options(settings))
                ports.append(int(address.split(":")[-1]))
            opened.append(Connection(ports[0]))
            return opened[-1]

        yield open_one
        for connection in opened:
            connection.close()


def assert_refused_and_closed(
    answers: list[Answer], sentence: str = HEAD_TOO_LARGE, status: int = 400
) -> None:
    """One refusal with the sentence (the head-size one), then the server closed the
    connection."""
    assert [answer.status for answer in answers] == [status], answers
    assert answers[0].json == {"error": sentence}
    assert answers[0].headers["connection"] == "close"
    assert answers[0].headers["content-type"] == "application/json"
    assert answers[0].headers["x-content-type-options"] == "nosniff"


def answers_to_gets(connection: Connection, count: int) -> list[int]:
    connection.send(connection.get() * count)
    return [answer.status for answer in connection.answers(count)]


@pytest.mark.parametrize("end", [True, False], ids=["finished", "unfinished"])
def test_a_head_over_the_limit_in_one_piece_is_refused_and_the_connection_closed(
    connect: Callable[..., Connection], end: bool
) -> None:
    connection = connect()
    connection.send(connection.get(filler=MAX_HEADER_BYTES + KB, end=end))
    assert_refused_and_closed(connection.answers())
    assert answers_to_gets(connect(), 1) == [200], "other connections are still served"


def test_a_head_trickled_in_pieces_is_refused_once_it_passes_the_limit(
    connect: Callable[..., Connection],
) -> None:
    connection = connect()
    head = connection.get(filler=MAX_HEADER_BYTES, end=False)[: MAX_HEADER_BYTES + 1]
    pieces = [head[start : start + 4 * KB] for start in range(0, len(head), 4 * KB)]
    for sent, piece in enumerate(pieces):
        assert not connection.answered(0.01), f"answered after {sent * 4} KB of the head"
        connection.send(piece)
    # The last byte sent is the first past the limit: the answer comes without another.
    assert_refused_and_closed(connection.answers())


def test_a_pipelined_request_over_the_limit_is_refused_after_the_answer_before_it(
    connect: Callable[..., Connection],
) -> None:
    connection = connect()
    connection.send(connection.get() + connection.get(filler=MAX_HEADER_BYTES + KB))
    first, *rest = connection.answers()
    assert first.status == 200 and first.json["status"] == "ok"
    assert_refused_and_closed(rest)


def test_a_head_not_whole_in_time_gets_408_and_a_silent_connection_is_let_go(
    connect: Callable[..., Connection],
) -> None:
    timeout = 0.6
    # Half a request line on a new connection, then nothing.
    started = time.monotonic()
    slow = connect(head_timeout=timeout)
    slow.send(b"GET /hea")
    assert_refused_and_closed(slow.answers(), head_too_slow(timeout), status=408)
    assert timeout <= time.monotonic() - started < timeout + 2

    # Nothing at all: the connection is closed without an answer.
    silent = connect()
    assert silent.answers() == []

    # On a kept-alive connection, a later head is timed from its first byte: the idle time
    # between requests is not counted against it.
    kept = connect()
    assert answers_to_gets(kept, 1) == [200]
    time.sleep(timeout / 3)
    head = kept.get()
    kept.send(head[:10])
    time.sleep(timeout / 3)
    kept.send(head[10:])
    assert [answer.status for answer in kept.answers(1)] == [200]
    kept.send(head[:10])
    assert_refused_and_closed(kept.answers(), head_too_slow(timeout), status=408)


@pytest.mark.parametrize(
    "request_bytes",
    [b"HELLO THERE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n"],
    ids=["not-a-request-line", "bad-content-length"],
)
def test_a_request_that_is_not_http_gets_the_usual_sentence_after_the_answer_before_it(
    connect: Callable[..., Connection], request_bytes: bytes
) -> None:
    connection = connect()
    connection.send(connection.get() + request_bytes)
    first, *rest = connection.answers()
    assert first.status == 200
    assert_refused_and_closed(rest, NOT_HTTP)


def test_keep_alive_and_pipelined_requests_are_answered_on_one_connection(
    connect: Callable[..., Connection],
) -> None:
    connection = connect()
    for _ in range(3):
        assert answers_to_gets(connection, 1) == [200]
    assert answers_to_gets(connection, 5) == [200] * 5, "pipelined in one write"

    # A head just under the limit, sent in pieces, is served like any other.
    head = connection.get(filler=MAX_HEADER_BYTES - 2 * KB)
    for start in range(0, len(head), 8 * KB):
        assert not connection.answered(0.01)
        connection.send(head[start : start + 8 * KB])
    assert [answer.status for answer in connection.answers(1)] == [200]

    # A body larger than a head may be, with the next request in the same write, is no head.
    csv = numbered_cars(2) + b"\r\n" * (MAX_HEADER_BYTES // 2)  # blank lines do not count
    form = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="cars.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\n" + csv + b"\r\n--b--\r\n"
    )
    upload = (
        f"POST /api/car-batch/validate HTTP/1.1\r\nHost: 127.0.0.1:{connection.port}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {len(form)}\r\n\r\n"
    ).encode() + form
    connection.send(upload + connection.get())
    checked, healthy = connection.answers(2)
    assert checked.status == 200 and checked.json["rowCount"] == 2, checked.body[:300]
    assert healthy.status == 200
    assert answers_to_gets(connection, 1) == [200], "and the connection is still open"
