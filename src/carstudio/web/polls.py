"""Progress polls, answered before routing.

An open Car Creation page asks for its batch's progress again and again, sending the `ETag` of
the last answer; nearly every such poll finds nothing new, and the rest find the answer the
other pages watching that batch were just given. Routing each through FastAPI (matching every
route, solving the route's dependencies) costs several times what the answer itself does, so
`ProgressPolls` answers a poll of a batch whose progress was read a moment ago itself: a 304
when its `If-None-Match` names that answer, else the answer. It asks the same functions the
route asks: who the viewer is (`current_viewer`), the moment-old progress
(`BatchService.recent_status`), and the answer (`progress_answer`). Whatever it cannot answer
(a batch it has no recent answer for, a viewer not signed in, another user's batch) goes on to
the route untouched, which reads the store or gives the refusal in its own words.

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
from carstudio.web.batch_api import progress_answer

POLL = re.compile(r"/api/batch/([0-9a-f]{32})")
"""The progress route's path, for the ids Car Studio gives batches."""


class ProgressPolls:
    """Answers `GET /api/batch/{id}` from the batch's moment-old progress, when there is one."""

    def __init__(self, app: ASGIApp, *, batches: BatchService) -> None:
        self.app = app
        self.batches = batches

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            poll = POLL.fullmatch(scope["path"])
            if poll is not None and await self._answered(scope, poll[1], send):
                return
        await self.app(scope, receive, send)

    async def _answered(self, scope: Scope, job_id: str, send: Send) -> bool:
        """Answer the poll from the batch's recent progress; False when there is none here."""
        try:
            viewer = await current_viewer(Request(scope))
            status = self.batches.recent_status(job_id, viewer)
        except CarStudioError:
            return False  # the route gives the refusal in its own words
        if status is None:
            return False
        if_none_match = next(
            (value for name, value in scope["headers"] if name == b"if-none-match"), None
        )
        code, headers, body = progress_answer(
            status, viewer, None if if_none_match is None else if_none_match.decode("latin-1")
        )
        raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
        if code != 304:
            raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": code, "headers": raw})
        await send({"type": "http.response.body", "body": body})
        return True
