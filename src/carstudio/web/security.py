"""What every request passes before it reaches a route, and what every answer carries.

- The Host header must name this server (`CARSTUDIO_ALLOWED_HOSTS`): a page that rebinds its
  own DNS name to 127.0.0.1 still sends its own name, and is refused before routing.
- A state-changing request a browser marks as coming from another site is refused, whether
  or not anyone is signed in, as Go 1.25's CrossOriginProtection does: `Sec-Fetch-Site`
  when the browser sends it, else the `Origin` header. Requests with neither (curl, the CLI,
  scripts) go on to authentication as usual.
- Every answer says `nosniff` and `same-origin` referrers; the page gets a strict Content
  Security Policy that also forbids framing it; everything else (JSON, images, ZIPs) gets a
  policy that runs nothing at all if a browser is ever talked into rendering it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from fastapi import HTTPException, Request
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carstudio.web.errors import error_body

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SAME_SITE = frozenset({"same-origin", "none"})
"""`Sec-Fetch-Site` values of requests this server's own page (or the person) made."""

PAGE_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
FILE_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"
"""For every answer that is not the page: nothing in it may run, load or be framed."""

COMMON_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


def require_json(request: Request) -> None:
    """JSON endpoints take JSON only: a form or text body is what another site's page can
    send without asking, so it is never read as a request."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(415, "Send the request body as JSON (Content-Type: application/json).")


def host_name(host_header: str) -> str:
    """The host part of a Host or Origin authority: "[::1]:8000" -> "::1", "A.lan" -> "a.lan"."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


class SecurityMiddleware:
    """Host allow-list, cross-site refusal and security headers, for HTTP requests."""

    def __init__(
        self, app: ASGIApp, *, allowed_hosts: Iterable[str], open_paths: Iterable[str] = ()
    ) -> None:
        self.app = app
        hosts = {host_name(host) for host in allowed_hosts}
        self.any_host = "*" in hosts
        self.allowed_hosts = frozenset(hosts - {"*"})
        self.open_paths = tuple(open_paths)
        """Paths served with their own policy (the API docs, when they are on)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not self.any_host and host_name(host) not in self.allowed_hosts:
            shown = host[:100] or "(none)"
            await refuse(
                send,
                400,
                f"Car Studio does not answer to the address {shown!r}; if that is how people "
                "reach it, add the name to CARSTUDIO_ALLOWED_HOSTS.",
            )
            return
        if scope["method"] in UNSAFE_METHODS and _cross_site(headers, host):
            await refuse(
                send,
                403,
                "This request came from another web site, so Car Studio refused it; "
                "use Car Studio's own page, or call the API from a script.",
                [{"field": "origin", "message": "cross-site requests are not accepted"}],
            )
            return
        path: str = scope["path"]
        policy = None if path.startswith(self.open_paths) else FILE_POLICY

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))
                names = {name.lower() for name, _ in raw}
                raw.extend(header for header in COMMON_HEADERS if header[0] not in names)
                if policy is not None and b"content-security-policy" not in names:
                    is_page = any(
                        name.lower() == b"content-type" and value.startswith(b"text/html")
                        for name, value in raw
                    )
                    raw.append(
                        (b"content-security-policy", (PAGE_POLICY if is_page else policy).encode())
                    )
                    if is_page:
                        raw.append((b"x-frame-options", b"DENY"))
                message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _cross_site(headers: Headers, host: str) -> bool:
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site.strip().lower() not in SAME_SITE
    origin = headers.get("origin")
    if origin is None:
        return False  # not a browser, or a browser too old to say: authentication decides
    if "://" not in origin:
        return True  # "null": a sandboxed frame, a file, a redirect across sites
    authority = origin.split("://", 1)[1].split("/", 1)[0]
    return authority.lower() != host.strip().lower()


def refusal(
    message: str,
    details: list[dict[str, str]] | None = None,
    *,
    extra_headers: tuple[tuple[bytes, bytes], ...] = (),
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and body of a refusal given before routing: the usual `{error}` sentence,
    the security headers, and the connection closed after it."""
    body = json.dumps(error_body(message, details)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *extra_headers,
        *COMMON_HEADERS,
        (b"content-security-policy", FILE_POLICY.encode()),
    ]
    return headers, body


async def refuse(
    send: Send,
    status: int,
    message: str,
    details: list[dict[str, str]] | None = None,
    *,
    extra_headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """Send a `refusal` as the ASGI answer."""
    headers, body = refusal(message, details, extra_headers=extra_headers)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
