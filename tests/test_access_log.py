"""The access log has a line for every answer but a 304, a server error included, whatever the
scope holds."""

from __future__ import annotations

import asyncio
import logging

import pytest
from starlette.types import Message, Receive, Scope, Send

from carstudio.web.access_log import AccessLog


def _answer(status: int) -> AccessLog:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if status == 500:
            raise RuntimeError("a bug")  # the server's outermost middleware answers 500
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return AccessLog(app)


def _ask(app: AccessLog, **scope: object) -> None:
    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    base = {"type": "http", "method": "GET", "path": "/api/batches", "headers": []}
    asyncio.run(app(base | scope, receive, send))


def test_answers_are_logged_but_304s(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="carstudio.access")
    _ask(
        _answer(200), client=("10.0.0.7", 51234), raw_path=b"/api/batches", query_string=b"limit=5"
    )
    _ask(_answer(304), client=("10.0.0.7", 51235))
    _ask(_answer(404))  # no client, no raw path, no version: still a line, and no failure
    with pytest.raises(RuntimeError):
        _ask(_answer(500))
    assert [record.getMessage() for record in caplog.records] == [
        '10.0.0.7:51234 - "GET /api/batches?limit=5 HTTP/1.1" 200',
        '- - "GET /api/batches HTTP/1.1" 404',
        '- - "GET /api/batches HTTP/1.1" 500',
    ]
