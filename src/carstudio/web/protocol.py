"""The HTTP/1.1 protocol Car Studio's server speaks: uvicorn's httptools protocol with bounds on
the size of a request head and on the time it takes to arrive.

httptools parses fast but keeps a head of any size, as long as the client keeps sending it. Here
the bytes of each head (request line and headers) are counted as they arrive; a head past
`MAX_HEADER_BYTES`, finished or not, is answered 400 with the usual `{error}` sentence and the
connection closed, and nothing more of it is parsed or kept. The count starts again with every
request, so keep-alive and pipelining work as before; a refusal waits for the answers to the
requests before it on the connection, so those are still given, in order. A request the parser
cannot read as HTTP is refused the same way (uvicorn answers it at once, in plain text, ahead
of the answers still owed on its connection).

uvicorn waits for a request head as long as the client likes. Here a head must arrive whole
within `head_timeout` (CARSTUDIO_HEAD_TIMEOUT) of the connection's opening, or, on a kept-alive
connection, of its first byte: a client that sent part of one gets 408; one that sent nothing
is let go without an answer, as an idle kept-alive connection is.

Past the connection limit (`CARSTUDIO_MAX_CONNECTIONS`), uvicorn answers a request with a
plain-text 503 of its own; here it is Car Studio's: the `{error}` sentence, the security
headers, `Retry-After`, and a line in the access log, as each refusal here has too.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from starlette.types import Receive, Scope, Send
from uvicorn._types import ASGI3Application
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

from carstudio.web.access_log import AccessLog, log_answer
from carstudio.web.security import refusal, refuse

MAX_HEADER_BYTES = 64 * 1024
"""The most a request head may take. Browsers send a few KB, cookies included."""

HEAD_TOO_LARGE = (
    f"The request head is larger than {MAX_HEADER_BYTES // 1024} KB, the most Car Studio accepts."
)
NOT_HTTP = "The request could not be read as HTTP/1.1; send it again as a well-formed request."


def head_too_slow(timeout: float) -> str:
    return f"The request head did not arrive within {timeout:g} seconds; send the request again."


BUSY = "Car Studio is answering as many connections as it takes at once; try again in a moment."
_SHOWN_TARGET = 200
"""Characters of a refused head's target the access log shows."""


async def _busy(scope: Scope, receive: Receive, send: Send) -> None:
    await refuse(send, 503, BUSY, extra_headers=((b"retry-after", b"1"),))


_BUSY_ANSWER = cast(ASGI3Application, AccessLog(_busy))
"""The answer past the connection limit, logged as every answer of the app is."""

# The shortest a request line and a header line can be besides what the parser hands over:
# "GET" + " " + url + " HTTP/1.1\r\n", name + ":" + value + "\r\n", and the blank line.
_REQUEST_LINE_EXTRA = len(" HTTP/1.1\r\n\r\n") + 1
_HEADER_LINE_EXTRA = len(":\r\n")


class HeadTooLarge(Exception):
    """Raised from a parser callback to stop the parser at a head that is too large."""


class HeadLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing request heads over `max_head_bytes` or slower
    than `head_timeout`, and answering its other refusals in Car Studio's words.

    A head still unfinished at the end of a read is counted byte for byte; one that ends
    within a read is measured from what the parser found in it (the request line and each
    header, short of any blanks around a header's value), so a body or another request that
    shares a read with a head is not counted with it."""

    max_head_bytes = MAX_HEADER_BYTES

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        head_timeout: float,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.head_timeout = head_timeout
        self._in_head = True  # between requests, what arrives next is a head
        self._head_bytes = 0  # bytes of the current head in earlier reads
        self._elsewhere = 0  # bytes of the current read that were not the current head
        self._refusal: tuple[int, str] | None = None  # the answer refusing the current request
        self._head_begun = False  # the current head's first byte has come
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._time_head()  # the first head is timed from the connection's opening

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timing_head()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return  # the rest of a refused head is dropped, not parsed
        self._elsewhere = 0
        super().data_received(data)
        if self._in_head and self._refusal is None and not self.transport.is_closing():
            self._head_bytes += len(data) - self._elsewhere
            if self._head_bytes > self.max_head_bytes:
                self.logger.warning("Request head over %d bytes refused.", self.max_head_bytes)
                self._refuse(400, HEAD_TOO_LARGE)
            elif self._head_begun and self._head_timer is None:
                # A later head that began in this read and did not end in it is timed from
                # now; one that arrives whole in one read, as nearly all do, needs no timer.
                self._time_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begun = True

    def on_headers_complete(self) -> None:
        self._stop_timing_head()
        self._head_begun = False
        method = self.parser.get_method()
        measured = len(method) + len(self.url) + _REQUEST_LINE_EXTRA
        measured += sum(len(name) + len(value) for name, value in self.headers)
        measured += _HEADER_LINE_EXTRA * len(self.headers)
        if max(measured, self._head_bytes) > self.max_head_bytes:
            self.logger.warning("Request head over %d bytes refused.", self.max_head_bytes)
            self._refusal = (400, HEAD_TOO_LARGE)
            # uvicorn answers a parser error with `send_400_response`, which answers this one.
            raise HeadTooLarge
        self._elsewhere += max(0, measured - self._head_bytes)
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._elsewhere += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_head = True
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request its parser stopped at: a head refused here, or one
        that is not HTTP at all (uvicorn answers that in plain text of its own)."""
        self._refuse(*(self._refusal or (400, NOT_HTTP)))

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        super()._start_asgi_task(cycle, _BUSY_ANSWER if app is service_unavailable else app)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._refusal is not None and not self.pipeline and self.cycle.response_complete:
            self._answer_refusal()

    def _time_head(self) -> None:
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _stop_timing_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self._refusal is not None:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._time_head()  # the rest of the head waits for an answer of ours, not the client
            return
        if not self._head_begun:
            self.transport.close()  # a connection that never sent a request is let go quietly
            return
        self.logger.warning("Request head not whole after %g s refused.", self.head_timeout)
        self._refuse(408, head_too_slow(self.head_timeout))

    def _refuse(self, status: int, sentence: str) -> None:
        """Refuse the request now, or after the answers still owed for earlier requests."""
        self._refusal = (status, sentence)
        if self.cycle is None or self.cycle.response_complete:
            self._answer_refusal()

    def _answer_refusal(self) -> None:
        if self.transport.is_closing():
            return
        status, sentence = self._refusal or (400, NOT_HTTP)
        headers, body = refusal(sentence)
        head = b"".join(
            name + b": " + value + b"\r\n"
            for name, value in (*self.server_state.default_headers, *headers)
        )
        self.transport.write(STATUS_LINE[status] + head + b"\r\n" + body)
        self.transport.close()
        # The request line as far as it came: the method is known once the target began.
        method = self.parser.get_method().decode("latin-1") if self.url else "-"
        target = self.url[:_SHOWN_TARGET].decode("latin-1") or "-"
        if len(self.url) > _SHOWN_TARGET:
            target += "…"
        log_answer(self.client, method, target, self.parser.get_http_version(), status)
