"""The Car Creation page: one server-rendered HTML page; the browser does the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from carstudio import intake
from carstudio.config import Settings
from carstudio.errors import ConfigurationError
from carstudio.providers.models import REPLACEMENT, get_model
from carstudio.spec import FIRST_CAR_YEAR, latest_model_year

BACKGROUNDS = (("white", "White studio"), ("hub", "Delivery hub"))
ASPECT_RATIOS = (
    ("1:1", "1:1 Square"),
    ("16:9", "16:9 Wide"),
    ("9:16", "9:16 Tall"),
    ("4:3", "4:3 Landscape"),
    ("3:4", "3:4 Portrait"),
)

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter()


def page_context(settings: Settings) -> dict[str, Any]:
    """What the page needs to know about this server's settings; never any secret."""
    try:
        model = get_model(settings.model)
        model_label, retiring = model.label, model.retiring
    except ConfigurationError:
        model_label, retiring = settings.model, False
    return {
        "provider": settings.provider_name,
        "model_name": settings.model,
        "model_label": model_label,
        "retiring": retiring,
        "replacement_model": REPLACEMENT,
        "concurrency": settings.concurrency,
        "max_rows": intake.MAX_ROWS,
        "max_upload_mb": intake.MAX_BYTES // (1024 * 1024),
        "max_upload_bytes": intake.MAX_BYTES,
        "backgrounds": BACKGROUNDS,
        "aspect_ratios": ASPECT_RATIOS,
        "first_year": FIRST_CAR_YEAR,
        "last_year": latest_model_year(),
    }


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def car_creation_page(request: Request) -> HTMLResponse:
    """The Car Creation page with its Single and Batch tabs."""
    settings: Settings = request.app.state.settings
    return templates.TemplateResponse(request, "index.html", page_context(settings))
