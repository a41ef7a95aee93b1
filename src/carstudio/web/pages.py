"""The Car Creation page: one server-rendered HTML page; the browser does the rest."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carstudio import intake
from carstudio.accounts.viewer import Viewer
from carstudio.billing.ledger import dollars
from carstudio.config import Settings
from carstudio.delivery import PRESET_LABELS
from carstudio.errors import ConfigurationError
from carstudio.jobs.service import BatchService
from carstudio.naming import default_template
from carstudio.providers.models import MODELS, REPLACEMENT, get_model
from carstudio.providers.prices import PriceBook
from carstudio.spec import FIRST_CAR_YEAR, REGISTRY, instructions, latest_model_year
from carstudio.web.auth import page_viewer
from carstudio.web.templating import templates

# Every icon the page draws, once: 24x24 stroke paths, rendered by the `icon` macro of
# index.html so the page's script never carries SVG of its own.
ICONS: dict[str, tuple[str, ...]] = {
    "upload": (
        "M7 18.5h-.5a4 4 0 0 1-.6-7.95A5.5 5.5 0 0 1 16.6 8.6 4.5 4.5 0 0 1 17.5 18.5H17",
        "M12 12.5v8",
        "M9 15.5l3-3 3 3",
    ),
    "image": (
        "M4 6.5A2.5 2.5 0 0 1 6.5 4h11A2.5 2.5 0 0 1 20 6.5v11a2.5 2.5 0 0 1-2.5 2.5h-11"
        "A2.5 2.5 0 0 1 4 17.5z",
        "M4 16l4.5-4.5a1.5 1.5 0 0 1 2.1 0L16 17",
        "M14 14.5l1.4-1.4a1.5 1.5 0 0 1 2.1 0L20 15.6",
        "M15.5 8.5h.01",
    ),
    "alert": ("M12 3.5l9 16H3z", "M12 10v4.5", "M12 17.2v.01"),
    "download": ("M12 4v11", "M7.5 10.5L12 15l4.5-4.5", "M5 19.5h14"),
    "retry": (
        "M4.5 12a7.5 7.5 0 0 1 13-5.1L19.5 9",
        "M19.5 4.5V9H15",
        "M19.5 12a7.5 7.5 0 0 1-13 5.1L4.5 15",
        "M4.5 19.5V15H9",
    ),
    "stop": ("M12 3.5a8.5 8.5 0 1 0 0 17 8.5 8.5 0 0 0 0-17z", "M9.5 9.5h5v5h-5z"),
    "plus": ("M12 5v14", "M5 12h14"),
    "forward": ("M5 12h14", "M13 6l6 6-6 6"),
}

router = APIRouter()


def car_fields() -> list[dict[str, Any]]:
    """The field registry as the page renders its form and its script reads it (as JSON), so
    neither keeps a list of fields of its own."""
    return [field.public() for field in REGISTRY.values()]


def price_words(usd: Decimal | None, *, preview: bool) -> str:
    """One image's price as the model selects and the Single tab say it."""
    if preview:
        return "free in preview mode"
    if usd is None:
        return "price unknown"
    cents = usd.quantize(Decimal("0.01"))
    # A sub-cent price keeps its digits ($0.039): rounded to cents it would misstate a
    # 50-image batch by up to 25 cents.
    amount = dollars(usd) if cents == usd else f"${usd.normalize():,f}"
    return f"{amount} per image"


def image_models(prices: PriceBook, *, preview: bool) -> list[dict[str, Any]]:
    """Every model a person can choose, in the table's order, with its price: so the page's
    selects and its script's labels come from the models table, never from a list of their own."""
    return [
        {
            "name": model.name,
            "label": model.label,
            "retiring": model.retiring,
            "price": price_words(prices.price(model).usd, preview=preview),
        }
        for model in MODELS.values()
    ]


def month_spend(batches: BatchService, viewer: Viewer) -> dict[str, str]:
    """This month's spending for the header: the viewer's own, or everyone's for an admin and
    with sign-in off, as GET /api/usage counts it."""
    everyone = viewer.user_id is None or viewer.admin
    spent = batches.ledger.spent_this_month(viewer.user_id, everyone=everyone)
    cap = batches.settings.budget_monthly
    whose = "everyone's images" if viewer.admin else "images" if everyone else "your images"
    return {
        "spent": dollars(spent),
        # The budget caps the whole deployment, so only everyone's spending is set against it.
        "budget": dollars(cap) if cap is not None and everyone else "",
        "title": f"What {whose} cost this month (UTC)",
    }


def page_context(settings: Settings, prices: PriceBook) -> dict[str, Any]:
    """What the page needs to know about this server's settings and prices; never any secret."""
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
        "replacement_label": MODELS[REPLACEMENT].label,
        "image_models": image_models(prices, preview=settings.provider_name == "preview"),
        "concurrency": settings.concurrency,
        "max_rows": intake.MAX_ROWS,
        "max_upload_mb": intake.MAX_BYTES // (1024 * 1024),
        "max_upload_bytes": intake.MAX_BYTES,
        "picker_types": ",".join(intake.PICKER_TYPES),
        "instructions": instructions(intake.MAX_ROWS, settings.concurrency),
        "default_name_template": default_template(),
        "output_presets": [
            {"value": preset.value, "label": label} for preset, label in PRESET_LABELS.items()
        ],
        "default_output": settings.output,
        "first_year": FIRST_CAR_YEAR,
        "last_year": latest_model_year(),
        "car_fields": car_fields(),
        "icons": ICONS,
    }


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def car_creation_page(
    request: Request, viewer: Annotated[Viewer | None, Depends(page_viewer)]
) -> Response:
    """The Car Creation page with its Single and Batch tabs; strangers are sent to sign in."""
    if viewer is None:
        return RedirectResponse("/login", status_code=303)
    settings: Settings = request.app.state.settings
    batches: BatchService = request.app.state.batches
    context = page_context(settings, batches.prices) | {
        "user_name": viewer.name,
        "month": month_spend(batches, viewer),
    }
    return templates.TemplateResponse(request, "index.html", context)
