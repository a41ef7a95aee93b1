"""The web application factory: the CLI's `serve` and the tests build the app the same way."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from carstudio import __version__
from carstudio.accounts.service import Accounts
from carstudio.config import Settings, get_settings
from carstudio.errors import ConfigurationError
from carstudio.generation import Studio
from carstudio.jobs.service import BatchService
from carstudio.web import api, auth, batch_api, pages
from carstudio.web.access_log import AccessLog
from carstudio.web.auth import current_viewer, install_sessions
from carstudio.web.errors import document_error_answers, install_error_handlers
from carstudio.web.limits import RequestLimitsMiddleware
from carstudio.web.polls import ProgressPolls
from carstudio.web.security import SecurityMiddleware

STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the Car Studio app for `settings` (the process settings when omitted)."""
    settings = settings or get_settings()
    studio = Studio(settings)
    batches = BatchService(settings, studio)
    accounts = Accounts(batches.store)
    if settings.sign_in_required and not accounts.has_users():
        batches.store.close()
        studio.close()
        raise ConfigurationError(
            f"Sign-in is required (CARSTUDIO_AUTH={settings.auth}, listening on "
            f"{settings.host}) but there are no users yet; create one with "
            "`carstudio users add NAME --admin`, or set CARSTUDIO_AUTH=off on a trusted network."
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batches.start(workers=settings.embedded_worker, periodic=settings.periodic)
        # What starting made (modules, the app, the settings) lives as long as the server, so
        # the collector need not walk it again and again: a full collection then takes a
        # few milliseconds instead of around a hundred, during which no request is answered.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            batches.stop()
            studio.close()

    app = FastAPI(
        title="Car Studio",
        version=__version__,
        summary="Photographic car images from a description or a CSV of up to 50 cars.",
        lifespan=lifespan,
        # Operation ids are the route functions' names, so a generated client reads well.
        generate_unique_id_function=lambda route: route.name,
        docs_url="/docs" if settings.api_docs else None,
        redoc_url="/redoc" if settings.api_docs else None,
        telemetry={
            "tracing": settings.telemetry,
            "metrics": settings.telemetry,
            "logs": settings.telemetry,
        },
    )
    # Innermost, so polls it answers pass the session, limit and security middleware too.
    app.add_middleware(ProgressPolls, batches=batches)
    install_sessions(app, settings)
    # Inside the security checks, so its refusals carry the same headers; outside everything
    # that reads a body, so nothing reads one past its limits.
    app.add_middleware(RequestLimitsMiddleware, body_timeout=settings.body_timeout)
    app.add_middleware(
        SecurityMiddleware,
        allowed_hosts=settings.hosts_answered,
        # The docs pages start their CDN scripts inline; the page's policy would stop them.
        open_paths=("/docs", "/redoc") if settings.api_docs else (),
    )
    # Outermost, so it logs every answer the app gives, the security refusals included.
    app.add_middleware(AccessLog)
    app.state.settings = settings
    app.state.studio = studio
    app.state.batches = batches
    app.state.accounts = accounts
    install_error_handlers(app)
    document_error_answers(app)
    # Every batch route needs a viewer, so none can be added that forgets to ask. First, as
    # the progress polls are most of the requests: each route before theirs is one more try.
    app.include_router(batch_api.router, dependencies=[Depends(current_viewer)])
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(auth.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
