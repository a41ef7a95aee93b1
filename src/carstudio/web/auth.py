"""Who is asking: a signed session cookie from the sign-in page, or an API token.

With sign-in off (the default on a laptop, where Car Studio listens on 127.0.0.1 only),
everyone is the one person and sees everything. With it on, every API call needs a session
or `Authorization: Bearer <token>` (401 otherwise), the page sends strangers to `/login`,
and each batch and image belongs to whoever made it.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.middleware.sessions import SessionMiddleware

from carstudio.accounts.service import Accounts
from carstudio.accounts.viewer import ANYONE, Viewer
from carstudio.config import Settings
from carstudio.errors import CarStudioError, NotSignedIn, TryLater
from carstudio.web.templating import templates

SESSION_COOKIE = "carstudio_session"
SESSION_DAYS = 14
_KEY_FILE = "session.key"

router = APIRouter(include_in_schema=False)


def install_sessions(app: FastAPI, settings: Settings) -> None:
    """Signed, HttpOnly, SameSite=Lax session cookies (Secure when asked to)."""
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_key(settings),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_DAYS * 24 * 3600,
        same_site="lax",
        https_only=settings.secure_cookies,
    )


def session_key(settings: Settings) -> str:
    """CARSTUDIO_SECRET_KEY, or a random key made once and kept, owner-only, in the data dir."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    if not settings.sign_in_required:
        return secrets.token_urlsafe(48)  # nobody signs in, so no session outlives the process
    path = settings.data_dir / _KEY_FILE
    if not path.exists():
        _write_private(path, secrets.token_urlsafe(48))
    return path.read_text(encoding="utf-8").strip()


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".part"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    # Two processes starting together: the first key to land wins, and both then read it.
    try:
        os.link(path.with_suffix(".part"), path)
    except FileExistsError:
        pass
    finally:
        path.with_suffix(".part").unlink(missing_ok=True)


async def get_accounts(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


AccountsDep = Annotated[Accounts, Depends(get_accounts)]


async def current_viewer(request: Request) -> Viewer:
    """The signed-in user (or ANYONE with sign-in off); 401 when sign-in is required.

    With sign-in off it answers on the event loop: every API request asks, and a hop to a
    worker thread costs more than the rest of a cached progress answer. For the same reason
    it takes the accounts from the app rather than as a dependency of its own, which FastAPI
    would solve (twice on a batch route) on every request."""
    settings: Settings = request.app.state.settings
    if not settings.sign_in_required:
        return ANYONE
    return await run_in_threadpool(viewer_of, request, request.app.state.accounts)


def viewer_of(request: Request, accounts: Accounts) -> Viewer:
    """`current_viewer`, for code already on a worker thread (it may read the store)."""
    settings: Settings = request.app.state.settings
    if not settings.sign_in_required:
        return ANYONE
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        viewer = accounts.viewer_for_token(token.strip()) if scheme.lower() == "bearer" else None
        if viewer is None:
            raise NotSignedIn(
                "That API token is not valid; create one with `carstudio tokens create`."
            )
        return viewer
    user_id, version = request.session.get("uid"), request.session.get("v")
    if isinstance(user_id, int) and isinstance(version, int):
        viewer = accounts.viewer(user_id, version)
        if viewer is not None:
            return viewer
        request.session.clear()
    raise NotSignedIn(
        "Sign in first: open Car Studio's page, or send an API token as "
        "'Authorization: Bearer <token>'."
    )


CurrentViewer = Annotated[Viewer, Depends(current_viewer)]


def page_viewer(request: Request, accounts: AccountsDep) -> Viewer | None:
    """For the page: the viewer, or None when the person has to sign in first."""
    try:
        return viewer_of(request, accounts)
    except NotSignedIn:
        return None


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    if not settings.sign_in_required:
        return RedirectResponse("/", status_code=303)
    return _login(request)


RETURN_TO = re.compile(r"#batch/[0-9a-f]{32}")
"""Where the page may send a person back to once signed in: a batch's own address, as a
shared link names it. Nothing else is followed, so the form cannot redirect anywhere."""


@router.post("/login", response_class=HTMLResponse)
def sign_in(
    request: Request,
    accounts: AccountsDep,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    return_to: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    address = request.client.host if request.client else "unknown"
    back = return_to if RETURN_TO.fullmatch(return_to) else ""
    try:
        viewer = accounts.sign_in(username, password, address=address)
    except TryLater as exc:
        return _login(
            request,
            error=exc.message,
            username=username,
            return_to=back,
            status=429,
            headers={"Retry-After": str(int(exc.retry_after))},
        )
    except CarStudioError as exc:
        return _login(request, error=exc.message, username=username, return_to=back, status=401)
    request.session.clear()
    request.session.update({"uid": viewer.user_id, "v": viewer.session_version})
    return RedirectResponse("/" + back, status_code=303)


@router.post("/logout")
def sign_out(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


def _login(
    request: Request,
    *,
    error: str = "",
    username: str = "",
    return_to: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    context: dict[str, Any] = {
        "error": error,
        "username": username,
        "return_to": return_to,
        "return_to_pattern": RETURN_TO.pattern,
    }
    return templates.TemplateResponse(
        request, "login.html", context, status_code=status, headers=headers
    )
