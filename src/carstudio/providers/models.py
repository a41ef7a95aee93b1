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


_IMAGEN4 = frozenset({"prompt", "aspect_ratio", "safety_filter_level", "output_format"})

MODELS: dict[str, ImageModel] = {
    m.name: m
    for m in (
        ImageModel(
            "google/imagen-3",
            "Imagen 3",
            frozenset({"prompt", "aspect_ratio", "negative_prompt", "safety_filter_level"}),
            retiring=True,
        ),
        ImageModel(
            "google/imagen-3-fast",
            "Imagen 3 Fast",
            frozenset({"prompt", "aspect_ratio", "safety_filter_level"}),
            retiring=True,
        ),
        ImageModel("google/imagen-4", "Imagen 4", _IMAGEN4, retiring=True),
        ImageModel("google/imagen-4-fast", "Imagen 4 Fast", _IMAGEN4, retiring=True),
        ImageModel("google/imagen-4-ultra", "Imagen 4 Ultra", _IMAGEN4, retiring=True),
        ImageModel(
            "google/nano-banana",
            "Nano Banana (Gemini 2.5 Flash Image)",
            frozenset({"prompt", "aspect_ratio", "output_format"}),
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
        ),
        ImageModel(
            "google/nano-banana-2-lite",
            "Nano Banana 2 Lite",
            frozenset({"prompt", "aspect_ratio", "output_format"}),
        ),
    )
}

REPLACEMENT = "google/nano-banana-2"
"""Google's named replacement for its Imagen models (gemini-3.1-flash-image)."""


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
