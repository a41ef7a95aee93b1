"""The access log: a line per answer, in uvicorn's own format, but none for a 304.

Open pages poll their batch every second or two, and nearly every poll finds nothing new: a
line for each would be most of the log. uvicorn builds every line's record before any filter
can drop it, which costs a poll answered 304 a tenth of its time on the event loop, so the
server runs with uvicorn's access log off and this middleware writes the lines worth writing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

if TYPE_CHECKING:
    from uvicorn._types import HTTPScope

ACCESS = logging.getLogger("carstudio.access")
"""Not uvicorn's own access logger, which uvicorn silences when its access log is off."""


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        http = cast("HTTPScope", scope)

        async def logged(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] != 304:
                ACCESS.info(
                    '%s - "%s %s HTTP/%s" %d',
                    get_client_addr(http),
                    scope["method"],
                    get_path_with_query_string(http),
                    scope["http_version"],
                    message["status"],
                )
            await send(message)

        await self.app(scope, receive, logged)
