"""What one request may cost Car Studio, so that a slow or hostile client cannot starve the rest.

- A request body is at most 64 KB: every JSON request Car Studio takes is a few hundred bytes.
  The two CSV upload routes keep their own 5 MB limit (`uploads.py`), refused in their own
  words. A declared `Content-Length` over the limit is refused before a byte of the body is
  read; a body without one (chunked) is counted as it arrives and refused the moment it passes
  the limit, so no more than the limit and one chunk is ever held.
- Car Studio waits at most `CARSTUDIO_BODY_TIMEOUT` seconds in all for a body. A client that
  trickles its body, or stops sending it, gets 408 and loses its connection, instead of holding
  a task, a socket and a connection slot for as long as it likes.
- An answer given before the body was read in full closes the connection, so the server never
  waits for the rest of a body that nothing will read.

Refusals are the usual `{error}` sentence with `Connection: close`. What only the server
(uvicorn) can bound, connections, idle keep-alive and the size and time of a request head, is
in `server_options`; the head's limits are kept by Car Studio's HTTP protocol (`protocol.py`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Collection
from typing import Any

import anyio
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carstudio.config import Settings
from carstudio.web.errors import error_body
from carstudio.web.protocol import HeadLimitedProtocol

MAX_BODY_BYTES = 64 * 1024
UPLOAD_ROUTES = frozenset({("POST", "/api/car-batch"), ("POST", "/api/car-batch/validate")})
"""Routes that read a CSV upload and enforce their own, larger limit while reading it."""


class BodyRefused(HTTPException):
    """A body too large or too slow. Raised from `receive`, where the app reads the body, so
    the app's HTTP error handler answers it like any other `{error}`."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(status_code, message, headers={"Connection": "close"})


def too_large(limit: int) -> BodyRefused:
    return BodyRefused(
        413,
        f"The request body is larger than {limit // 1024} KB, the most Car Studio accepts here.",
    )


def too_slow(timeout: float) -> BodyRefused:
    return BodyRefused(
        408, f"The request body did not arrive within {timeout:g} seconds; send the request again."
    )


def server_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn arguments that bound connections: how many, how long idle, how large a
    request head and how long it may take to arrive."""
    return {
        # uvicorn's httptools protocol, refusing a head over MAX_HEADER_BYTES or slower than
        # CARSTUDIO_HEAD_TIMEOUT (h11 has a size limit of its own, but costs a third more per
        # request, and no time limit).
        "http": functools.partial(HeadLimitedProtocol, head_timeout=settings.head_timeout),
        # uvicorn refuses a request once the open connections, its own included, reach the
        # limit; one more makes CARSTUDIO_MAX_CONNECTIONS the number that are answered.
        "limit_concurrency": settings.max_connections + 1,
        "timeout_keep_alive": settings.keepalive_seconds,
        # The app writes the access log itself, without the polls answered 304 (access_log.py).
        "access_log": False,
    }


class RequestLimitsMiddleware:
    """Body size and body time limits for HTTP requests (see the module's docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        body_timeout: float,
        max_body_bytes: int = MAX_BODY_BYTES,
        own_limit_routes: Collection[tuple[str, str]] = UPLOAD_ROUTES,
    ) -> None:
        self.app = app
        self.body_timeout = body_timeout
        self.max_body_bytes = max_body_bytes
        self.own_limit_routes = frozenset(own_limit_routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        own_limit = (scope["method"], scope["path"]) in self.own_limit_routes
        limit = None if own_limit else self.max_body_bytes
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "").strip()
        if limit is not None and declared.isdigit() and int(declared) > limit:
            await _answer(too_large(limit), scope, receive, send)
            return
        body = _Body(receive, limit=limit, timeout=self.body_timeout)
        sends_body = (declared.isdigit() and int(declared) > 0) or "transfer-encoding" in headers
        started = False

        async def send_closing(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                raw = list(message.get("headers", []))
                if sends_body and not body.complete and not _closes(raw):
                    raw.append((b"connection", b"close"))
                    message = {**message, "headers": raw}
            await send(message)

        try:
            await self.app(scope, body.receive, send_closing)
        except BodyRefused as refused:
            # Normally the app's error handler answers; this covers a body read outside it.
            if started:
                raise
            await _answer(refused, scope, receive, send)


class _Body:
    """The request's `receive`, counting the body and timing the waits for it."""

    def __init__(self, receive: Receive, *, limit: int | None, timeout: float) -> None:
        self._receive = receive
        self.limit = limit
        self.timeout = timeout
        self.waiting_left = timeout
        self.received = 0
        self.complete = False
        self.refused: BodyRefused | None = None

    async def receive(self) -> Message:
        if self.refused is not None:
            raise self.refused  # the app keeps reading after a refusal: it gets the same answer
        if self.complete:
            # Past the body only the disconnect is left, which a streamed answer waits for.
            return await self._receive()
        if self.waiting_left <= 0:
            raise self._refuse(too_slow(self.timeout))
        began = time.monotonic()
        try:
            with anyio.fail_after(self.waiting_left):
                message = await self._receive()
        except TimeoutError:
            raise self._refuse(too_slow(self.timeout)) from None
        finally:
            # Only time spent waiting for the client counts, not the app's own work in between.
            self.waiting_left -= time.monotonic() - began
        if message["type"] != "http.request":
            self.complete = True  # the client is gone; nothing more will arrive
            return message
        self.received += len(message.get("body", b""))
        if self.limit is not None and self.received > self.limit:
            raise self._refuse(too_large(self.limit))
        if not message.get("more_body", False):
            self.complete = True
        return message

    def _refuse(self, refusal: BodyRefused) -> BodyRefused:
        self.refused = refusal
        return refusal


def _closes(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(
        name.lower() == b"connection" and b"close" in value.lower() for name, value in headers
    )


async def _answer(refusal: BodyRefused, scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse(
        error_body(refusal.detail), status_code=refusal.status_code, headers=refusal.headers
    )
    await response(scope, receive, send)
