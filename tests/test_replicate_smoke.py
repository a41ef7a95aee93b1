"""One real image from the real Replicate: runs only when REPLICATE_API_TOKEN is set."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PIL import Image

from carstudio.config import PUBLIC_REPLICATE_URL
from carstudio.prompts import load_prompt_book
from carstudio.providers.models import get_model
from carstudio.providers.replicate import ReplicateProvider
from carstudio.spec import CarSpec

# Read at import: the suite's autouse fixture hides the developer's token from other tests.
TOKEN = os.environ.get("REPLICATE_API_TOKEN", "").strip()
MODEL = os.environ.get("CARSTUDIO_MODEL", "google/imagen-3")

pytestmark = pytest.mark.skipif(not TOKEN, reason="set REPLICATE_API_TOKEN to run the smoke test")


def test_one_real_image(tmp_path: Path) -> None:
    book = load_prompt_book()
    spec = CarSpec(make="Toyota", model="Corolla", year=2024, color="red", aspect_ratio="16:9")
    provider = ReplicateProvider(
        token=TOKEN,
        base_url=PUBLIC_REPLICATE_URL,
        model=get_model(MODEL),
        negative_prompt=book.negative_prompt,
    )
    try:
        prediction = provider.create(prompt=book.build(spec), spec=spec)
        prediction = provider.wait(prediction, deadline=time.monotonic() + 300)
        stored = provider.download(prediction, tmp_path / "car")
    finally:
        provider.close()
    with Image.open(stored.path) as image:
        width, height = image.size
    assert width > height
