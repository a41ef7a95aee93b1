"""The web application factory: the CLI's `serve` and the tests build the app the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from carstudio import __version__
from carstudio.config import Settings, get_settings
from carstudio.generation import Studio
from carstudio.web import api, pages
from carstudio.web.errors import install_error_handlers

STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the Car Studio app for `settings` (the process settings when omitted)."""
    settings = settings or get_settings()
    studio = Studio(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            studio.close()

    app = FastAPI(
        title="Car Studio",
        version=__version__,
        summary="Photographic car images from a description or a CSV of up to 50 cars.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.studio = studio
    install_error_handlers(app)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
