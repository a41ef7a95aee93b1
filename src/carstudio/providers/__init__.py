"""Image providers: the real Replicate client and the offline preview renderer."""

from __future__ import annotations

from carstudio.config import Settings
from carstudio.errors import ConfigurationError
from carstudio.prompts import PromptBook
from carstudio.providers.base import Prediction, Provider, StoredImage
from carstudio.providers.models import ImageModel, get_model
from carstudio.providers.preview import PreviewProvider
from carstudio.providers.replicate import ReplicateProvider
from carstudio.quality.paints import paint_table

__all__ = ["Prediction", "Provider", "StoredImage", "build_provider"]


def build_provider(
    settings: Settings, prompts: PromptBook, model: ImageModel | None = None
) -> Provider:
    """The provider the settings ask for: Replicate with a token, the offline preview without.

    `model` overrides the setting's model, for a request that chose its own.
    """
    model = model or get_model(settings.model)
    if settings.provider_name == "preview":
        return PreviewProvider(settings.data_dir / "scratch", paint_table(settings.paints_file))
    if not settings.token:
        raise ConfigurationError(
            "CARSTUDIO_PROVIDER=replicate needs REPLICATE_API_TOKEN; set the token, "
            "or use CARSTUDIO_PROVIDER=preview to work offline."
        )
    return ReplicateProvider(
        token=settings.token,
        base_url=settings.replicate_base_url,
        model=model,
        negative_prompt=prompts.negative_prompt,
        safety_filter_level=settings.safety_filter_level,
        timeout=settings.http_timeout,
        wait_seconds=settings.wait_seconds,
        poll_interval=settings.poll_interval,
    )
