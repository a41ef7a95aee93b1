"""Progress polls that find nothing new, answered before routing.

An open Car Creation page asks for its batch's progress again and again, sending the `ETag` of
the last answer, and nearly every such poll finds nothing new. Routing it through FastAPI
(matching every route, solving the route's dependencies) costs several times what the answer
itself does, so `ProgressPolls` answers those polls with their 304 first. It asks the same
functions the route asks: who the viewer is (`current_viewer`), the moment-old progress
(`BatchService.recent_status`), the answer's ETag (`status_etag`). Whatever it cannot answer
with a 304 (no `If-None-Match`, a batch that changed, one it has no recent answer for, a viewer
not signed in, another user's batch) goes on to the route untouched, which answers it in full.

It sits inside the security, limit and session middleware, so the Host check, the security
headers and the session cookie are the same as for every other answer.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from carstudio.errors import CarStudioError
from carstudio.jobs.service import BatchService
from carstudio.web.auth import current_viewer
from carstudio.web.batch_api import etag_matches, progress_headers, status_etag

POLL = re.compile(r"/api/batch/([0-9a-f]{32})")
"""The progress route's path, for the ids Car Studio gives batches."""


class ProgressPolls:
    """Answers `GET /api/batch/{id}` with a 304 when its `If-None-Match` is still current."""

    def __init__(self, app: ASGIApp, *, batches: BatchService) -> None:
        self.app = app
        self.batches = batches

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            poll = POLL.fullmatch(scope["path"])
            if poll is not None:
                headers = await self._unchanged(scope, poll[1])
                if headers is not None:
                    await send({"type": "http.response.start", "status": 304, "headers": headers})
                    await send({"type": "http.response.body", "body": b""})
                    return
        await self.app(scope, receive, send)

    async def _unchanged(self, scope: Scope, job_id: str) -> list[tuple[bytes, bytes]] | None:
        """The 304's headers when the poll's ETag names the current answer, else None."""
        if_none_match = next(
            (value for name, value in scope["headers"] if name == b"if-none-match"), None
        )
        if if_none_match is None:
            return None
        try:
            viewer = await current_viewer(Request(scope))
            status = self.batches.recent_status(job_id, viewer)
        except CarStudioError:
            return None  # the route gives the refusal in its own words
        if status is None:
            return None
        etag = status_etag(status, viewer)
        if not etag_matches(if_none_match.decode("latin-1"), etag):
            return None
        headers = progress_headers(etag)
        return [(name.lower().encode(), value.encode()) for name, value in headers.items()]
