"""Bounded requests: one slow or hostile client does not starve the others.

A JSON body over 64 KB is refused before it is read, declared or streamed; a body that does not
arrive in time gets 408; an upload the client abandons is one INFO line; connections past
CARSTUDIO_MAX_CONNECTIONS are refused while the open ones keep working. The body checks run in
process against the app itself, with a `receive` that counts what the app pulled; what needs
real sockets runs against `carstudio serve`.
"""

from __future__ import annotations

import json
import socket
import tracemalloc
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carstudio.config import Settings
from carstudio.web.limits import (
    MAX_BODY_BYTES,
    UPLOAD_ROUTES,
    RequestLimitsMiddleware,
    server_options,
)
from carstudio.web.protocol import BUSY, HEAD_TOO_LARGE, MAX_HEADER_BYTES, HeadLimitedProtocol
from tests.batch_helpers import numbered_cars
from tests.server_process import ServerProcess
from tests.waiting import wait_until

KB = 1024
MB = 1024 * 1024


# -- driving the app's ASGI callable directly ---------------------------------------------------


@dataclass
class Exchange:
    """One request fed to the app chunk by chunk, and what came back."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    pulled: int = 0
    """Body bytes the app asked for: what it could have held in memory."""

    @property
    def error(self) -> str:
        return str(json.loads(self.body)["error"])


def exchange(
    app: ASGIApp,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    chunks: Iterable[bytes] = (),
    then_stall: bool = False,
) -> Exchange:
    """Send `chunks` as the body, then end it (or, with `then_stall`, never send another byte)."""
    result = Exchange()
    sent_all = False

    async def run() -> None:
        pending = iter(chunks)

        async def receive() -> Message:
            nonlocal sent_all
            if sent_all:
                return {"type": "http.disconnect"}
            chunk = next(pending, None)
            if chunk is not None:
                result.pulled += len(chunk)
                return {"type": "http.request", "body": chunk, "more_body": True}
            if then_stall:
                await anyio.sleep_forever()
            sent_all = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                result.status = message["status"]
                result.headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
            elif message["type"] == "http.response.body":
                result.body += message.get("body", b"")

        raw_headers = [(b"host", b"testserver")] + [
            (name.lower().encode(), value.encode()) for name, value in (headers or {}).items()
        ]
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": raw_headers,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "state": {},
        }
        await app(scope, receive, send)

    run_apart(run)
    return result


def run_apart(main: Callable[[], Awaitable[None]]) -> None:
    """Run `main` on an event loop of its own thread: the test process may have one running
    already (Playwright's, when the browser tests ran first in it)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(anyio.run, main).result()


def chunks_of(total: int, size: int = 16 * KB) -> Iterator[bytes]:
    """`total` bytes of a JSON string in `size` pieces, without ever holding more than one."""
    piece = b"x" * size
    yield b'{"make": "'
    for _ in range(total // size):
        yield piece


@pytest.fixture
def app(client_for: Callable[..., TestClient]) -> ASGIApp:
    """The Car Studio app (started), with a body timeout short enough for a test to wait out."""
    return client_for(body_timeout=0.3).app


JSON = {"content-type": "application/json"}


# -- body size ----------------------------------------------------------------------------------


def test_a_10_mb_json_body_is_refused_before_any_of_it_is_read(app: ASGIApp) -> None:
    answer = exchange(
        app,
        "POST",
        "/api/car-image",
        headers=JSON | {"content-length": str(10 * MB)},
        chunks=chunks_of(10 * MB),
    )
    assert answer.status == 413
    assert "64 KB" in answer.error
    assert answer.headers["connection"] == "close"
    assert answer.headers["x-content-type-options"] == "nosniff", "the usual headers too"
    assert answer.pulled == 0


def test_a_chunked_json_body_is_refused_as_soon_as_it_passes_64_kb(app: ASGIApp) -> None:
    tracemalloc.start()
    try:
        answer = exchange(
            app,
            "POST",
            "/api/car-image",
            headers=JSON | {"transfer-encoding": "chunked"},
            chunks=chunks_of(10 * MB),
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.status == 413 and "64 KB" in answer.error
    assert answer.headers["connection"] == "close"
    assert answer.pulled <= MAX_BODY_BYTES + 16 * KB + 16
    assert peak < 2 * MB, f"the app held {peak / MB:.1f} MB for a refused body"


def test_a_json_body_under_the_limit_is_read_as_usual(
    client_for: Callable[..., TestClient],
) -> None:
    client = client_for()
    response = client.post("/api/car-image", json={"make": "Kia", "trim": "x" * (60 * KB)})
    assert response.status_code == 400, "validated, not refused for its size"
    assert response.json()["details"][0]["field"] == "trim"


def test_csv_uploads_keep_their_own_5_mb_limit(
    client_for: Callable[..., TestClient], app: ASGIApp
) -> None:
    client = client_for()
    big_csv = numbered_cars(40) + b"," * (200 * KB) + b"\n"
    response = client.post(
        "/api/car-batch/validate", files={"file": ("cars.csv", big_csv, "text/csv")}
    )
    assert response.status_code == 200, response.text
    answer = exchange(
        app,
        "POST",
        "/api/car-batch",
        headers={"content-type": "multipart/form-data; boundary=b", "content-length": str(6 * MB)},
    )
    assert answer.status == 413 and "5 MB" in answer.error
    assert answer.pulled == 0


def test_the_upload_routes_are_the_routes_that_take_a_file(app: ASGIApp) -> None:
    schema = app.openapi()  # type: ignore[attr-defined]
    taking_files = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "multipart/form-data" in operation.get("requestBody", {}).get("content", {})
    }
    assert taking_files == UPLOAD_ROUTES


# -- body time ----------------------------------------------------------------------------------


def test_a_body_that_stops_arriving_gets_408(app: ASGIApp) -> None:
    answer = exchange(
        app,
        "POST",
        "/api/car-image",
        headers=JSON | {"content-length": "100"},
        chunks=[b'{"make": "K'],
        then_stall=True,
    )
    assert answer.status == 408
    assert "0.3 seconds" in answer.error
    assert answer.headers["connection"] == "close"


def test_an_upload_that_stops_arriving_gets_408(app: ASGIApp) -> None:
    answer = exchange(
        app,
        "POST",
        "/api/car-batch/validate",
        headers={"content-type": "multipart/form-data; boundary=b", "content-length": "5000"},
        chunks=[b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nma'],
        then_stall=True,
    )
    assert answer.status == 408 and answer.headers["connection"] == "close"


def test_waiting_for_the_end_of_a_streamed_answer_is_not_a_body_timeout() -> None:
    """After the body, `receive` only reports a disconnect (a ZIP download listens for one);
    that wait is the answer's, and no body timeout may cut it short."""
    seen: list[str] = []

    async def streaming_app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # the whole (empty) body
        seen.append((await receive())["type"])  # then, long after the timeout, the disconnect
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    limited = RequestLimitsMiddleware(streaming_app, body_timeout=0.05)

    async def run() -> None:
        messages = iter([{"type": "http.request", "body": b"", "more_body": False}])

        async def receive() -> Message:
            message = next(messages, None)
            if message is None:
                await anyio.sleep(0.2)
                return {"type": "http.disconnect"}
            return message

        async def send(message: Message) -> None:
            pass

        scope = {"type": "http", "method": "GET", "path": "/downloads/x.zip", "headers": []}
        await limited(scope, receive, send)

    run_apart(run)
    assert seen == ["http.disconnect"]


def test_an_answer_given_before_the_body_was_read_closes_the_connection(app: ASGIApp) -> None:
    unread = exchange(
        app, "POST", "/healthz", headers=JSON | {"content-length": "2"}, chunks=[b"{}"]
    )
    assert unread.status == 405 and unread.pulled == 0
    assert unread.headers["connection"] == "close", "the rest of the body is never waited for"
    plain = exchange(app, "GET", "/healthz")
    assert plain.status == 200 and "connection" not in plain.headers, "keep-alive as usual"


def test_serve_bounds_connections_idle_time_and_headers() -> None:
    options = server_options(
        Settings(_env_file=None, max_connections=40, keepalive_seconds=7, head_timeout=4)
    )
    protocol = options.pop("http")
    assert (protocol.func, protocol.keywords) == (HeadLimitedProtocol, {"head_timeout": 4})
    assert options == {
        "limit_concurrency": 41,
        "timeout_keep_alive": 7,
        "access_log": False,
    }


# -- against `carstudio serve` ------------------------------------------------------------------


@pytest.fixture
def serve(
    tmp_path: Path, server_process: Callable[..., ServerProcess]
) -> Callable[..., ServerProcess]:
    def start(**env: str) -> ServerProcess:
        values = {"CARSTUDIO_DATA_DIR": str(tmp_path / "data"), "CARSTUDIO_PROVIDER": "preview"}
        return server_process(values | env).start()

    return start


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def get_on(sock: socket.socket, port: int) -> bytes:
    """One keep-alive `GET /healthz` on an open connection; the head of its answer."""
    sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n")
         if line.lower().startswith(b"content-length:")),
        0,
    )  # fmt: skip
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head


def test_a_slow_body_gets_408_while_other_clients_are_answered(
    serve: Callable[..., ServerProcess],
) -> None:
    process = serve(CARSTUDIO_BODY_TIMEOUT="1")
    with socket.create_connection(("127.0.0.1", process.port), timeout=15) as slow:
        slow.sendall(
            f"POST /api/car-image HTTP/1.1\r\nHost: 127.0.0.1:{process.port}\r\n"
            "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
            '{"make": "Ki'.encode()
        )
        assert httpx.get(f"{process.url}/healthz", timeout=10).status_code == 200
        answer = read_answer(slow)  # ends: the server closes the connection
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b"connection: close" in head.lower()
    assert "did not arrive within 1 seconds" in json.loads(body)["error"]
    assert httpx.get(f"{process.url}/healthz", timeout=10).status_code == 200


def test_an_abandoned_upload_is_one_info_line_without_a_traceback(
    serve: Callable[..., ServerProcess],
) -> None:
    process = serve()
    part = numbered_cars(40)
    with socket.create_connection(("127.0.0.1", process.port), timeout=15) as sock:
        sock.sendall(
            f"POST /api/car-batch HTTP/1.1\r\nHost: 127.0.0.1:{process.port}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {len(part) * 10}\r\n\r\n".encode()
            + b'--b\r\nContent-Disposition: form-data; name="file"; filename="cars.csv"\r\n'
            + b"Content-Type: text/csv\r\n\r\n"
            + part
        )
    # The socket is closed with most of the body unsent: the person closed the tab.
    gone = "client went away during upload (POST /api/car-batch)"
    wait_until(lambda: gone in process.log.read_text())
    assert httpx.get(f"{process.url}/healthz", timeout=10).status_code == 200
    log = process.log.read_text()
    assert log.count(gone) == 1
    line = next(line for line in log.splitlines() if gone in line)
    assert " INFO " in line
    assert "Traceback" not in log and " ERROR " not in log and "unexpected error" not in log


def test_connections_past_the_limit_are_refused_while_open_ones_keep_working(
    serve: Callable[..., ServerProcess],
) -> None:
    process = serve(CARSTUDIO_MAX_CONNECTIONS="3")
    port = process.port
    open_ones = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3)]
    try:
        for sock in open_ones:
            assert get_on(sock, port).startswith(b"HTTP/1.1 200")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as extra:
            extra.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            refused = read_answer(extra)  # and then the server hangs up
        head, _, body = refused.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503"), refused[:200]
        headers = head.lower().split(b"\r\n")
        for expected in (
            b"connection: close",
            b"retry-after: 1",
            b"content-type: application/json",
            b"x-content-type-options: nosniff",
        ):
            assert expected in headers
        assert json.loads(body) == {"error": BUSY}
        for sock in open_ones:
            assert get_on(sock, port).startswith(b"HTTP/1.1 200")
    finally:
        for sock in open_ones:
            sock.close()
    wait_until(lambda: '"GET /healthz HTTP/1.1" 503' in process.log.read_text())


def test_a_request_head_still_unfinished_after_64_kb_is_refused(
    serve: Callable[..., ServerProcess],
) -> None:
    process = serve()
    with socket.create_connection(("127.0.0.1", process.port), timeout=10) as sock:
        sock.sendall(
            f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{process.port}\r\n".encode()
            + b"X-Filler: "
            + b"a" * (MAX_HEADER_BYTES + KB)  # and no end of the headers
        )
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert json.loads(answer.partition(b"\r\n\r\n")[2]) == {"error": HEAD_TOO_LARGE}
    assert httpx.get(f"{process.url}/healthz", timeout=10).status_code == 200
    # The access log has the refusal too, with the request line as far as it came.
    wait_until(lambda: '"GET /healthz HTTP/1.1" 400' in process.log.read_text())
