"""The image checks: every image measured against what its row asked for.

Each check gives a verdict (`pass`, `warn`, `fail`, or `skipped` when it cannot judge), a
score and a sentence a dealer can read. They run on a reduced copy of the image (its long
edge at most ANALYSIS_EDGE pixels): shares, median colours and a 17x16 hash do not need more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from carstudio.delivery import OutputPreset, content_size, upscale_factor
from carstudio.quality import thresholds as t
from carstudio.quality.colour import Lab, chroma, delta_e_2000, describe, rgb_to_lab, srgb_to_lab
from carstudio.quality.fingerprint import bits, colour_gap, distance, fingerprint
from carstudio.quality.paints import PaintTable, paint_table
from carstudio.spec import AspectRatio, Background, CarSpec

Verdict = Literal["pass", "warn", "fail", "skipped"]
CHECK_NAMES = ("shape", "background", "colour", "blank", "duplicate")
"""Every check, in the order they are shown."""
CHECK_LABELS = {
    "shape": "Shape",
    "background": "Background",
    "colour": "Colour",
    "blank": "Blank or broken",
    "duplicate": "Duplicate",
}
ANALYSIS_EDGE = 200
_SEVERITY = {"fail": 3, "warn": 2, "pass": 1, "skipped": 0}


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    score: float | None
    sentence: str

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict,
            "score": self.score,
            "sentence": self.sentence,
        }


@dataclass(frozen=True)
class Neighbour:
    """Another row's image, made for a different car, that this one must not repeat."""

    label: str
    fingerprint: str


@dataclass(frozen=True)
class Inspection:
    """All checks of one image, and its fingerprint for later duplicate checks."""

    checks: tuple[Check, ...]
    fingerprint: str | None
    width: int = 0
    height: int = 0

    @property
    def verdict(self) -> Verdict:
        """The worst verdict of any check."""
        return max((c.verdict for c in self.checks), key=_SEVERITY.__getitem__, default="pass")

    @property
    def failed(self) -> bool:
        return self.verdict == "fail"

    @property
    def needs_review(self) -> bool:
        return self.verdict in ("fail", "warn")

    @property
    def sentence(self) -> str:
        """The sentences of the checks that did not pass, or that every check passed."""
        flagged = [c.sentence for c in self.checks if c.verdict in ("fail", "warn")]
        return " ".join(flagged) if flagged else "Every check passed."

    def better_than(self, other: Inspection) -> bool:
        """Fewer failures, then fewer warnings: the image to keep of two."""
        return self._rank() < other._rank()

    def _rank(self) -> tuple[int, int]:
        verdicts = [c.verdict for c in self.checks]
        return verdicts.count("fail"), verdicts.count("warn")

    def as_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "sentence": self.sentence,
            "fingerprint": self.fingerprint,
            "width": self.width,
            "height": self.height,
            "checks": [c.as_json() for c in self.checks],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Inspection:
        return cls(
            checks=tuple(
                Check(c["name"], c["verdict"], c.get("score"), c.get("sentence", ""))
                for c in data.get("checks", ())
            ),
            fingerprint=data.get("fingerprint"),
            width=int(data.get("width", 0)),
            height=int(data.get("height", 0)),
        )


def inspect_image(
    path: Path,
    *,
    spec: CarSpec,
    known_sizes: Mapping[str, tuple[int, int]],
    model_label: str,
    preset: OutputPreset = OutputPreset.ORIGINAL,
    neighbours: Sequence[Neighbour] = (),
    paints: PaintTable | None = None,
) -> Inspection:
    """Measure the image at `path` against the row's `spec`.

    `known_sizes`: the sizes the model draws, by aspect ratio (the model table's); the
    `neighbours` are other rows' images made for other cars.
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
            image.draft("RGB", (ANALYSIS_EDGE, ANALYSIS_EDGE))  # JPEG: decode at a fraction
            image.load()
            small = _reduced(image if image.mode == "RGB" else image.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        return _broken(exc)
    pixels = np.asarray(small)
    lab = srgb_to_lab(pixels)
    hash_ = fingerprint(small)
    checks = (
        check_shape(width, height, spec.aspect_ratio, known_sizes, model_label, preset),
        check_background(lab, spec.background),
        check_colour(lab, spec, paints or paint_table()),
        check_blank(pixels),
        check_duplicate(hash_, neighbours),
    )
    return Inspection(checks=checks, fingerprint=hash_, width=width, height=height)


def _reduced(image: Image.Image) -> Image.Image:
    """The image averaged down by a whole factor to about ANALYSIS_EDGE pixels or fewer."""
    factor = -(-max(image.size) // ANALYSIS_EDGE)
    return image.reduce(factor) if factor > 1 else image.copy()


def _broken(exc: Exception) -> Inspection:
    skipped = "The file could not be read, so this was not checked."
    checks = tuple(Check(name, "skipped", None, skipped) for name in CHECK_NAMES if name != "blank")
    broken = Check("blank", "fail", None, f"The file is not a readable image ({exc}).")
    return Inspection(checks=(*checks[:3], broken, *checks[3:]), fingerprint=None)


# -- shape --------------------------------------------------------------------------------------


def _ratio(aspect: AspectRatio) -> float:
    width, _, height = aspect.value.partition(":")
    return int(width) / int(height)


def _nearest_ratio(width: int, height: int) -> str:
    return min(AspectRatio, key=lambda a: abs(_ratio(a) / (width / height) - 1)).value


def check_shape(
    width: int,
    height: int,
    aspect: AspectRatio,
    known_sizes: Mapping[str, tuple[int, int]],
    model_label: str,
    preset: OutputPreset,
) -> Check:
    """Right ratio for the row (or the size the model is known to draw), and big enough for
    the output preset."""
    ratio = width / height
    nominal_off = abs(ratio / _ratio(aspect) - 1)
    known = known_sizes.get(aspect.value)
    known_off = abs(ratio / (known[0] / known[1]) - 1) if known else None
    score = round(min(nominal_off, known_off if known_off is not None else nominal_off), 4)
    size = f"{width}×{height}"
    if known is not None and (width, height) == known:
        sentence = f"{size} is what {model_label} draws for {aspect.value}."
    elif known is not None and known_off is not None and known_off <= t.KNOWN_RATIO_TOLERANCE:
        drawn = f"{known[0]}×{known[1]}"
        sentence = f"{size} has the shape {model_label} draws for {aspect.value} ({drawn})."
    elif nominal_off <= t.NOMINAL_RATIO_TOLERANCE:
        sentence = f"{size} is {aspect.value}, as the row asked."
    else:
        looks = _nearest_ratio(width, height)
        return Check(
            "shape",
            "fail",
            score,
            f"The image is {size} (about {looks}), but the row asked for {aspect.value}.",
        )
    factor = upscale_factor(preset, width, height)
    if factor > t.UPSCALE_WARN:
        new_width, new_height = content_size(preset, width, height)
        return Check(
            "shape",
            "warn",
            score,
            f"{sentence} The {preset.value} output enlarges it {factor:.1f}× to "
            f"{new_width}×{new_height}, so it may look soft.",
        )
    return Check("shape", "pass", score, sentence)


# -- background ---------------------------------------------------------------------------------


def _border(lab: NDArray[np.float64]) -> NDArray[np.float64]:
    height, width = lab.shape[:2]
    rows = max(1, round(height * t.BORDER_BAND))
    cols = max(1, round(width * t.BORDER_BAND))
    mask = np.zeros((height, width), dtype=bool)
    mask[:rows] = mask[-rows:] = True
    mask[:, :cols] = mask[:, -cols:] = True
    return lab[mask]


def _as_lab(values: NDArray[np.float64]) -> Lab:
    return float(values[0]), float(values[1]), float(values[2])


def check_background(lab: NDArray[np.float64], background: Background) -> Check:
    """White: the border is near-white and colourless. Hub: it is not a plain white studio."""
    border = _border(lab)
    near_white = (border[:, 0] >= t.WHITE_MIN_LIGHTNESS) & (
        np.hypot(border[:, 1], border[:, 2]) <= t.WHITE_MAX_CHROMA
    )
    share = round(float(near_white.mean()), 3)
    median = _as_lab(np.median(border, axis=0))
    # A backdrop is "light grey", not "silver": that word is for paint.
    seen = f"{describe(median).replace('silver', 'light grey')} (L* {median[0]:.0f})"
    percent = f"{share:.0%}"
    if background is Background.WHITE:
        if share >= t.WHITE_PASS_SHARE:
            return Check("background", "pass", share, f"{percent} of the border is near-white.")
        verdict: Verdict = "warn" if share >= t.WHITE_FAIL_SHARE else "fail"
        return Check(
            "background",
            verdict,
            share,
            f"Only {percent} of the border is near-white; a white background was asked for "
            f"and the border is mostly {seen}.",
        )
    if share >= t.HUB_FAIL_SHARE:
        return Check(
            "background",
            "fail",
            share,
            f"{percent} of the border is plain white: a white studio, not the showroom asked for.",
        )
    if share >= t.HUB_WARN_SHARE:
        return Check(
            "background",
            "warn",
            share,
            f"{percent} of the border is near-white: check the showroom is really there.",
        )
    return Check("background", "pass", share, f"A showroom setting: the border is mostly {seen}.")


# -- colour -------------------------------------------------------------------------------------


def car_colour(lab: NDArray[np.float64], background: Background, paint: Lab) -> Lab:
    """The dominant colour of the pixels that differ from the background in the central region.

    A paint the backdrop's own colour (a white car on white) cannot be told from it pixel by
    pixel: unless something coloured stands out, the whole central region counts."""
    height, width = lab.shape[:2]
    left, top, right, bottom = (
        t.HUB_CENTRAL_REGION if background is Background.HUB else (t.CENTRAL_REGION)
    )
    region = lab[
        round(top * height) : round(bottom * height), round(left * width) : round(right * width)
    ]
    central = region.reshape(-1, 3)
    backdrops = _backdrop_colours(_border(lab))
    gaps = np.linalg.norm(central[:, None, :] - backdrops[None, :, :], axis=2).min(axis=1)
    foreground = central[gaps > t.FOREGROUND_DELTA]
    if len(foreground) < t.MIN_FOREGROUND_SHARE * len(central):
        return _dominant(central)  # a car the colour of its background
    standing_out = _dominant(foreground)
    if (
        np.linalg.norm(backdrops - np.array(paint), axis=1).min() <= t.BLENDS_DELTA
        and chroma(standing_out) <= t.ACHROMATIC_WARN_CHROMA
    ):
        # What stands out from a white backdrop behind a white car is its tyres, glass and
        # shadow; a car of another colour would stand out in that colour.
        return _dominant(central)
    return standing_out


def _cells(pixels: NDArray[np.float64]) -> NDArray[np.int64]:
    """Each pixel's colour cell (COLOUR_CELL_L by COLOUR_CELL_AB by COLOUR_CELL_AB)."""
    sides = 256 // t.COLOUR_CELL_AB
    return (
        np.clip(pixels[:, 0] // t.COLOUR_CELL_L, 0, 100 // t.COLOUR_CELL_L).astype(np.int64)
        * sides
        * sides
        + np.clip((pixels[:, 1] + 128) // t.COLOUR_CELL_AB, 0, sides - 1).astype(np.int64) * sides
        + np.clip((pixels[:, 2] + 128) // t.COLOUR_CELL_AB, 0, sides - 1).astype(np.int64)
    )


def _backdrop_colours(border: NDArray[np.float64]) -> NDArray[np.float64]:
    """The colours the background is made of: the median of each colour cell holding a real
    share of the border (a studio's one white; a showroom's walls, floor and window frames)."""
    index = _cells(border)
    counts = np.bincount(index)
    common = np.flatnonzero(counts >= t.BACKDROP_CELL_SHARE * len(border))
    if not len(common):
        return np.median(border, axis=0)[None, :]
    return np.stack([np.median(border[index == cell], axis=0) for cell in common])


def _dominant(pixels: NDArray[np.float64]) -> Lab:
    """The median of the most populous colour cell, widened to the pixels near it so a shaded
    body counts as one colour."""
    index = _cells(pixels)
    mode = np.bincount(index).argmax()
    centre = np.median(pixels[index == mode], axis=0)
    near = pixels[np.linalg.norm(pixels - centre, axis=1) < t.COLOUR_WIDEN]
    return _as_lab(np.median(near, axis=0))


def check_colour(lab: NDArray[np.float64], spec: CarSpec, paints: PaintTable) -> Check:
    """The car's dominant colour against the reference of the row's colour phrase."""
    if not spec.color:
        return Check("colour", "skipped", None, "The row names no colour, so none was checked.")
    paint = paints.find(spec.color)
    if paint is None:
        return Check(
            "colour",
            "skipped",
            None,
            f"“{spec.color}” is not in the paint table, so the colour was not checked "
            "(an operator can add it in CARSTUDIO_PAINTS_FILE).",
        )
    reference = rgb_to_lab(paint.rgb)
    seen = car_colour(lab, spec.background, reference)
    delta = round(delta_e_2000(seen, reference), 1)
    looks = f"The car looks {describe(seen)}"
    asked = f"“{spec.color}” is {describe(reference)} ({paint.hex})"
    if chroma(reference) < t.ACHROMATIC_CHROMA:
        lightness_off = abs(seen[0] - reference[0])
        tint = chroma(seen)
        if tint <= t.ACHROMATIC_PASS_CHROMA and lightness_off <= t.ACHROMATIC_PASS_LIGHTNESS:
            verdict: Verdict = "pass"
        elif tint <= t.ACHROMATIC_WARN_CHROMA and lightness_off <= t.ACHROMATIC_WARN_LIGHTNESS:
            verdict = "warn"
        else:
            verdict = "fail"
        detail = f"lightness {seen[0]:.0f} against {reference[0]:.0f}, chroma {tint:.0f}"
    else:
        if delta <= t.CHROMATIC_PASS_DELTA:
            verdict = "pass"
        elif delta <= t.CHROMATIC_WARN_DELTA:
            verdict = "warn"
        else:
            verdict = "fail"
        detail = f"CIEDE2000 {delta:.0f}"
    return Check("colour", verdict, delta, f"{looks}; {asked} ({detail}).")


# -- blank and duplicates -----------------------------------------------------------------------


def check_blank(pixels: NDArray[np.uint8]) -> Check:
    """Nearly all of the image at one grey level: nothing was drawn."""
    grey = pixels.astype(np.int16) @ np.array([299, 587, 114], dtype=np.int16) // 1000
    share = round(float((np.abs(grey - np.median(grey)) <= t.BLANK_LEVEL_SPREAD).mean()), 3)
    if share >= t.BLANK_FAIL_SHARE:
        return Check(
            "blank", "fail", share, f"The image is blank: {share:.1%} of it is one flat tone."
        )
    if share >= t.BLANK_WARN_SHARE:
        return Check(
            "blank",
            "warn",
            share,
            f"{share:.0%} of the image is one flat tone: the car may be tiny.",
        )
    return Check("blank", "pass", share, "The image has content.")


def check_duplicate(hash_: str, neighbours: Iterable[Neighbour]) -> Check:
    """Not (nearly) the same picture as another row's image made for another car."""
    # Nearest first by the hash (cheap); the closest of these colours is then found after a
    # few colour comparisons, not one per image of the batch.
    ranked = sorted(
        (distance(hash_, n.fingerprint), n.label, n.fingerprint)
        for n in neighbours
        if n.fingerprint
    )
    found = next(
        (
            (bits_apart, label)
            for bits_apart, label, other in ranked
            if colour_gap(hash_, other) <= t.DUPLICATE_COLOUR_GAP
        ),
        None,
    )
    if found is None:
        return Check("duplicate", "pass", None, "No other image of these colours to compare with.")
    closest, label = found
    total = bits(hash_)
    score = round(closest / total, 3)
    if closest <= t.DUPLICATE_FAIL_BITS:
        return Check(
            "duplicate",
            "fail",
            score,
            f"Nearly identical to {label}'s image, made for another car "
            f"({closest} of {total} fingerprint bits differ).",
        )
    if closest <= t.DUPLICATE_WARN_BITS:
        return Check(
            "duplicate",
            "warn",
            score,
            f"Very like {label}'s image, made for another car ({closest} of {total} bits differ).",
        )
    return Check("duplicate", "pass", score, f"Unlike the other images (closest: {label}).")
