"""The image models Car Studio can drive on Replicate, and the inputs each one accepts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from carstudio.errors import ConfigurationError, InvalidInput


@dataclass(frozen=True)
class ImageModel:
    name: str
    label: str
    inputs: frozenset[str]
    retiring: bool = False
    """Google has announced this model's shutdown; its replacement is `REPLACEMENT`."""
    sizes: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """The pixel sizes the model is known to draw, by aspect ratio, where they are further than
    2 % from the nominal ratio (the image checks accept these shapes)."""
    fixed: Mapping[str, str] = field(default_factory=dict)
    """Inputs always sent as given, so the image (and its price) never rests on a default
    that Replicate may change: a Gemini model's resolution, for one."""

    def build_input(
        self, *, prompt: str, aspect_ratio: str, negative_prompt: str, safety_filter_level: str
    ) -> dict[str, Any]:
        """The `input` object for a prediction, holding only the keys this model takes."""
        wanted: dict[str, Any] = {
            "prompt": prompt,
            "aspect_ratio": aspect_ratio,
            "negative_prompt": negative_prompt,
            "safety_filter_level": safety_filter_level,
            "output_format": "png",
            **self.fixed,
        }
        # aspect_ratio is always sent: the Gemini models default to `match_input_image`,
        # which has nothing to match without an input image.
        return {key: value for key, value in wanted.items() if key in self.inputs and value}


IMAGEN_SIZES: Mapping[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "4:3": (1280, 896),
    "3:4": (896, 1280),
    "16:9": (1408, 768),
    "9:16": (768, 1408),
}
"""Imagen 3's sizes (Google's Imagen documentation, echoed by Replicate's model page); Imagen 4
draws the same shapes, its 2K variant at twice the size. 4:3 is 7 % off the nominal ratio."""

GEMINI_1K_SIZES: Mapping[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "4:3": (1184, 864),
    "3:4": (864, 1184),
    "16:9": (1344, 768),
    "9:16": (768, 1344),
}
"""The Gemini image models' 1K sizes, as Google's image-generation documentation lists them;
4:3 is 2.8 % off the nominal ratio. Their 2K and 4K sizes keep these shapes."""

_IMAGEN4 = frozenset({"prompt", "aspect_ratio", "safety_filter_level", "output_format"})

MODELS: dict[str, ImageModel] = {
    m.name: m
    for m in (
        ImageModel(
            "google/imagen-3",
            "Imagen 3",
            frozenset({"prompt", "aspect_ratio", "negative_prompt", "safety_filter_level"}),
            retiring=True,
            sizes=IMAGEN_SIZES,
        ),
        ImageModel(
            "google/imagen-3-fast",
            "Imagen 3 Fast",
            frozenset({"prompt", "aspect_ratio", "safety_filter_level"}),
            retiring=True,
            sizes=IMAGEN_SIZES,
        ),
        ImageModel("google/imagen-4", "Imagen 4", _IMAGEN4, retiring=True, sizes=IMAGEN_SIZES),
        ImageModel(
            "google/imagen-4-fast", "Imagen 4 Fast", _IMAGEN4, retiring=True, sizes=IMAGEN_SIZES
        ),
        ImageModel(
            "google/imagen-4-ultra", "Imagen 4 Ultra", _IMAGEN4, retiring=True, sizes=IMAGEN_SIZES
        ),
        ImageModel(
            "google/nano-banana",
            "Nano Banana (Gemini 2.5 Flash Image)",
            frozenset({"prompt", "aspect_ratio", "output_format"}),
            sizes=GEMINI_1K_SIZES,
        ),
        ImageModel(
            "google/nano-banana-pro",
            "Nano Banana Pro (Gemini 3 Pro Image)",
            frozenset(
                {"prompt", "aspect_ratio", "resolution", "output_format", "safety_filter_level"}
            ),
            fixed={"resolution": "2K"},
        ),
        ImageModel(
            "google/nano-banana-2",
            "Nano Banana 2 (Gemini 3.1 Flash Image)",
            frozenset({"prompt", "aspect_ratio", "resolution", "output_format"}),
            fixed={"resolution": "1K"},
            sizes=GEMINI_1K_SIZES,
        ),
        ImageModel(
            "google/nano-banana-2-lite",
            "Nano Banana 2 Lite",
            frozenset({"prompt", "aspect_ratio", "output_format"}),
            sizes=GEMINI_1K_SIZES,
        ),
    )
}

REPLACEMENT = "google/nano-banana-2"
"""Google's named replacement for its Imagen models (gemini-3.1-flash-image)."""


PREVIEW_MODEL = "preview"
"""The offline placeholder's model name; it draws Imagen's shapes at half their size."""


def known_sizes(name: str) -> Mapping[str, tuple[int, int]]:
    """The sizes `name` is known to draw by aspect ratio (none known: empty)."""
    if name == PREVIEW_MODEL:
        return IMAGEN_SIZES
    model = MODELS.get(name)
    return model.sizes if model is not None else {}


def model_label(name: str) -> str:
    """How a model is named to people; the name itself for one outside the table."""
    model = MODELS.get(name)
    if model is not None:
        return model.label
    return "the preview" if name == PREVIEW_MODEL else name


def get_model(name: str, *, setting: str = "CARSTUDIO_MODEL") -> ImageModel:
    """The supported model called `name`, or a ConfigurationError naming the setting."""
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(MODELS)
        raise ConfigurationError(
            f"{setting}={name!r} is not a supported model; choose one of {known}."
        ) from None


def requested_model(name: str, *, field: str = "image_model") -> ImageModel:
    """The supported model a request asked for, or a 400 naming the ones there are."""
    try:
        return MODELS[name]
    except KeyError:
        message = f"{name[:80]!r} is not a model Car Studio supports; choose one of " + (
            ", ".join(MODELS) + "."
        )
        raise InvalidInput(message, [{"field": field, "message": message}]) from None
