"""The access log: a line per answer, in uvicorn's own format, but none for a 304.

Open pages poll their batch every second or two, and nearly every poll finds nothing new: a
line for each would be most of the log. uvicorn builds every line's record before any filter
can drop it, which costs a poll answered 304 a tenth of its time on the event loop, so the
server runs with uvicorn's access log off and this middleware writes the lines worth writing.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ACCESS = logging.getLogger("carstudio.access")
"""Not uvicorn's own access logger, which uvicorn silences when its access log is off."""


class AccessLog:
    """Logs each HTTP answer but a 304 as it starts, to `carstudio.access`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = False

        async def logged(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if message["status"] != 304:
                    _line(scope, message["status"])
            await send(message)

        try:
            await self.app(scope, receive, logged)
        except Exception:
            if not started:
                _line(scope, 500)  # the answer Starlette's outermost middleware gives
            raise


def _line(scope: Scope, status: int) -> None:
    log_answer(
        scope.get("client"),
        scope["method"],
        _target(scope),
        scope.get("http_version", "1.1"),
        status,
    )


def log_answer(
    client: tuple[str, int] | None, method: str, target: str, http_version: str, status: int
) -> None:
    """The access line of one answer; the server's protocol writes those it gives itself."""
    ACCESS.info(
        '%s - "%s %s HTTP/%s" %d',
        f"{client[0]}:{client[1]}" if client else "-",
        method,
        target,
        http_version,
        status,
    )


def _target(scope: Scope) -> str:
    """The path and query as the request line gave them."""
    path: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    return (path + b"?" + query if query else path).decode("latin-1")
