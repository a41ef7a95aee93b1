"""What one image costs, per model and resolution, in US dollars: the one price table.

List prices on Replicate, each with where and when it was read. An operator with other rates
(negotiated, or changed since) points CARSTUDIO_PRICES at a TOML or JSON file:

    [prices]
    "google/imagen-3" = 0.03            # a model at every resolution
    "google/nano-banana-2@2K" = 0.101   # one resolution of a model

A price nobody has confirmed is unknown, never guessed: estimates then say so.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from carstudio.errors import ConfigurationError
from carstudio.providers.models import MODELS, ImageModel

CURRENCY = "USD"
_LISTING = "Replicate model page, via third-party listings, January 2026"


@dataclass(frozen=True)
class Price:
    usd: Decimal | None
    """Per image; None when no source confirms it."""
    source: str
    as_of: str


def _listed(usd: str) -> Price:
    return Price(Decimal(usd), _LISTING, "2026-01")


UNKNOWN = Price(None, "no confirmed price (Google's own price for Imagen 3 was $0.03)", "")
FREE = Price(Decimal("0"), "drawn locally by the preview provider", "")

LIST_PRICES: Mapping[str, Price] = {
    "google/imagen-3": UNKNOWN,
    "google/imagen-3-fast": UNKNOWN,
    "google/imagen-4": _listed("0.04"),
    "google/imagen-4-fast": _listed("0.02"),
    "google/imagen-4-ultra": _listed("0.06"),
    "google/nano-banana": _listed("0.039"),
    "google/nano-banana-pro@1K": _listed("0.15"),
    "google/nano-banana-pro@2K": _listed("0.15"),
    "google/nano-banana-pro@4K": _listed("0.30"),
    "google/nano-banana-2@1K": _listed("0.067"),
    "google/nano-banana-2@2K": _listed("0.101"),
    "google/nano-banana-2@4K": _listed("0.151"),
    "google/nano-banana-2-lite": _listed("0.034"),
}


class PriceBook:
    """The list prices, with an operator's own file laid over them."""

    def __init__(self, overrides: Path | None = None) -> None:
        self._prices = dict(LIST_PRICES)
        if overrides is not None:
            self._prices |= _read_overrides(overrides)

    def price(self, model: ImageModel | None) -> Price:
        """The price of one image from `model` as Car Studio sends it; None: the preview."""
        if model is None:
            return FREE
        resolution = model.fixed.get("resolution")
        if resolution and f"{model.name}@{resolution}" in self._prices:
            return self._prices[f"{model.name}@{resolution}"]
        return self._prices.get(model.name, UNKNOWN)

    def per_image(self, model_name: str) -> Decimal | None:
        """USD per image for a job's model name ("preview" costs nothing)."""
        model = MODELS.get(model_name)
        return self.price(model).usd if model is not None else Decimal(0)


def _read_overrides(path: Path) -> dict[str, Price]:
    where = f"CARSTUDIO_PRICES={path}"
    try:
        raw = path.read_bytes()
        data = json.loads(raw) if path.suffix.lower() == ".json" else tomllib.loads(raw.decode())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{where} cannot be read ({exc}).") from exc
    table = data.get("prices", data) if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise ConfigurationError(f"{where} needs a [prices] table of model = USD per image.")
    prices: dict[str, Price] = {}
    for key, value in table.items():
        if str(key).split("@", 1)[0] not in MODELS:
            raise ConfigurationError(
                f"{where} prices {key!r}, which is not a supported model; "
                f"use one of {', '.join(MODELS)} (with @1K, @2K or @4K for a resolution)."
            )
        try:
            usd = Decimal(str(value))
        except InvalidOperation:
            usd = Decimal(-1)
        if usd < 0:
            raise ConfigurationError(f"{where}: the price of {key} must be a number of dollars.")
        prices[str(key)] = Price(usd, f"set by the operator in {path.name}", "")
    return prices
