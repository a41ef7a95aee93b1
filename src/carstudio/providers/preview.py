"""The offline provider: a clearly labelled placeholder drawn locally, so the whole workflow
can be tried for free and without a network."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

from PIL import Image, ImageColor, ImageDraw, ImageFont

from carstudio.errors import Failure, GenerationError
from carstudio.providers.base import Prediction, StoredImage, publish
from carstudio.providers.models import IMAGEN_SIZES, PREVIEW_MODEL
from carstudio.quality.paints import PaintTable, paint_table
from carstudio.spec import AspectRatio, Background, CarSpec

# Imagen 3's output sizes, halved: the placeholder has the shape the real image would have.
SIZES: dict[AspectRatio, tuple[int, int]] = {
    ratio: (IMAGEN_SIZES[ratio.value][0] // 2, IMAGEN_SIZES[ratio.value][1] // 2)
    for ratio in AspectRatio
}
_NAMED = {
    "pearl": "#f1efe9",
    "silver": "#c0c4c8",
    "grey": "#8a8f96",
    "gray": "#8a8f96",
    "champagne": "#d8c8a8",
    "burgundy": "#7a1f2b",
    "bronze": "#8c6239",
    "graphite": "#41454b",
    "midnight": "#1c2340",
    "navy": "#1f2d5a",
}


class PreviewProvider:
    """Draws the placeholder at create time into a scratch folder; the rest is bookkeeping."""

    name = "preview"
    model = PREVIEW_MODEL

    def __init__(self, scratch_dir: Path, paints: PaintTable | None = None) -> None:
        self._scratch = scratch_dir
        self._scratch.mkdir(parents=True, exist_ok=True)
        self._paints = paints or paint_table()

    def input_for(self, *, prompt: str, spec: CarSpec) -> dict[str, Any]:
        """The placeholder is drawn from the car itself (its colour, background and shape)."""
        return {"prompt": prompt, "car": spec.model_dump(mode="json")}

    def create(self, *, prompt: str, spec: CarSpec, deadline: float | None = None) -> Prediction:
        prediction_id = f"preview-{uuid.uuid4().hex[:20]}"
        path = self._scratch / f"{prediction_id}.png"
        tmp = path.with_suffix(".part")
        render_placeholder(spec, self._paints).save(tmp, format="PNG")
        os.replace(tmp, path)
        return Prediction(id=prediction_id, status="succeeded", output=str(path))

    def get(self, prediction_id: str) -> Prediction:
        path = self._scratch / f"{Path(prediction_id).name}.png"
        if not path.exists():
            return Prediction(id=prediction_id, status="failed", error="preview image was lost")
        return Prediction(id=prediction_id, status="succeeded", output=str(path))

    def wait(self, prediction: Prediction, *, deadline: float) -> Prediction:
        if not prediction.ready:
            raise GenerationError(
                Failure.TRANSIENT,
                "The preview image was lost; it will be drawn again.",
                prediction_id=prediction.id,
            )
        return prediction

    def download(self, prediction: Prediction, dest: Path) -> StoredImage:
        source = self._scratch / f"{prediction.id}.png"
        if not source.exists():
            raise GenerationError(Failure.TRANSIENT, "The preview image was lost.")
        dest.parent.mkdir(parents=True, exist_ok=True)
        final = publish(source, dest, "png")
        return StoredImage(path=final, media_type="image/png", size=final.stat().st_size)

    def cancel(self, prediction_id: str) -> None:
        (self._scratch / f"{Path(prediction_id).name}.png").unlink(missing_ok=True)

    def find_created(
        self, *, prompt: str, spec: CarSpec, since: float, exclude: frozenset[str] = frozenset()
    ) -> Prediction | None:
        return None  # drawing again costs nothing

    def close(self) -> None:
        return None


def paint_color(text: str, paints: PaintTable | None = None) -> tuple[int, int, int]:
    """An RGB for a colour as people write it ("pearl white", "Midnight Blue"): the paint
    table's reference, so the image checks find the colour asked for; stable otherwise."""
    paint = (paints or paint_table()).find(text) if text else None
    if paint is not None:
        return paint.rgb
    words = text.lower().replace("-", " ").split()
    for word in [text.lower().replace(" ", ""), *reversed(words)]:
        if word in _NAMED:
            red, green, blue, *_ = ImageColor.getrgb(_NAMED[word])
            return red, green, blue
        try:
            red, green, blue, *_ = ImageColor.getrgb(word)
            return red, green, blue
        except ValueError:
            continue
    digest = hashlib.sha256(text.encode()).digest() if text else b"\x5a\x6b\x7c"
    return digest[0] // 2 + 64, digest[1] // 2 + 64, digest[2] // 2 + 64


def render_placeholder(spec: CarSpec, paints: PaintTable | None = None) -> Image.Image:
    """A labelled drawing of a car silhouette in the requested colour, background and shape;
    its proportions follow the car, so two cars never share one picture."""
    width, height = SIZES[spec.aspect_ratio]
    seed = hashlib.sha256(f"{spec.title}|{spec.body_style}".encode()).digest()
    length = 2.5 + seed[0] / 255 * 0.9  # half the body's length, in units
    roof = 2.0 + seed[1] / 255 * 0.8
    shift = (seed[2] / 255 - 0.5) * 2.0
    hub = spec.background is Background.HUB
    image = Image.new("RGB", (width, height), (52, 58, 68) if hub else (250, 250, 250))
    draw = ImageDraw.Draw(image)
    if hub:  # a showroom floor and window lines
        floor = int(height * 0.68)
        draw.rectangle((0, floor, width, height), fill=(92, 98, 108))
        for x in range(0, width, max(width // 6, 1)):
            draw.line((x, 0, x, floor), fill=(70, 77, 88), width=2)
    body = paint_color(spec.color, paints)
    unit = min(width / 8.5, height / 5.6)
    cx, base = width / 2 + shift * unit, height * 0.74
    shadow = (40, 44, 50) if hub else (215, 215, 215)
    draw.ellipse(
        (
            cx - (length + 0.2) * unit,
            base - 0.2 * unit,
            cx + (length + 0.2) * unit,
            base + 0.35 * unit,
        ),
        fill=shadow,
    )
    draw.rounded_rectangle(
        (cx - length * unit, base - 1.5 * unit, cx + length * unit, base - 0.3 * unit),
        radius=int(unit * 0.4),
        fill=body,
        outline=(30, 30, 30),
        width=2,
    )
    draw.polygon(
        [
            (cx - 1.9 * unit, base - 1.5 * unit),
            (cx - 1.1 * unit, base - roof * unit),
            (cx + 1.2 * unit, base - roof * unit),
            (cx + 2.1 * unit, base - 1.5 * unit),
        ],
        fill=body,
        outline=(30, 30, 30),
    )
    glass = (170, 200, 225)
    draw.polygon(
        [
            (cx - 1.65 * unit, base - 1.55 * unit),
            (cx - 1.0 * unit, base - (roof - 0.15) * unit),
            (cx + 1.1 * unit, base - (roof - 0.15) * unit),
            (cx + 1.8 * unit, base - 1.55 * unit),
        ],
        fill=glass,
    )
    for wheel_x in (cx - (length - 1.2) * unit, cx + (length - 1.2) * unit):
        draw.ellipse(
            (wheel_x - 0.6 * unit, base - 0.9 * unit, wheel_x + 0.6 * unit, base + 0.3 * unit),
            fill=(25, 25, 25),
        )
        draw.ellipse(
            (wheel_x - 0.3 * unit, base - 0.6 * unit, wheel_x + 0.3 * unit, base),
            fill=(150, 150, 150),
        )
    text_color = (245, 245, 245) if hub else (40, 44, 52)
    # The title is large: it tells the placeholders of two cars apart at a glance, and to the
    # duplicate check, which sees the image at 17x16 cells.
    font = ImageFont.load_default(size=max(12, int(min(height / 11, width / 14))))
    small = ImageFont.load_default(size=max(10, int(height / 34)))
    draw.text(
        (width / 2, height * 0.1),
        "PREVIEW · not a photo",
        font=small,
        fill=(200, 60, 40),
        anchor="mm",
    )
    title = spec.title or spec.make or spec.model
    draw.text((width / 2, height * 0.22), title[:48], font=font, fill=text_color, anchor="mm")
    subtitle = " · ".join(
        part
        for part in (spec.color, spec.body_style, f"{spec.background.value} background")
        if part
    )
    draw.text((width / 2, height * 0.9), subtitle[:64], font=small, fill=text_color, anchor="mm")
    return image
