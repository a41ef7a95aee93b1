"""Reviewing a finished image: its checks, whether it is made again, which of two is kept,
and the labelled file delivered from it. Shared by batch rows and single images."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carstudio.config import Settings
from carstudio.decoding import one_at_a_time
from carstudio.delivery import Labels, OutputPreset, deliver
from carstudio.providers.models import known_sizes, model_label
from carstudio.quality import thresholds as t
from carstudio.quality.checks import (
    Check,
    Inspection,
    Neighbour,
    check_duplicate,
    check_shape,
    inspect_image,
)
from carstudio.quality.colour import load_library
from carstudio.quality.fingerprint import hash_of
from carstudio.quality.paints import PaintTable, paint_table
from carstudio.spec import IDENTITY_FIELDS, CarSpec

_THRESHOLDS = {name: repr(getattr(t, name)) for name in dir(t) if name.isupper()}
"""Every threshold the checks apply: checks kept with a cached image stand while these do."""

ALTERNATES = "alternates"
"""The folder, beside a batch's images and inside its ZIP, of the images not kept."""


@dataclass(frozen=True)
class Reviewer:
    rerolls: int
    """Images made again at most per row or single image (CARSTUDIO_QC_REROLLS)."""
    paints: PaintTable
    default_output: OutputPreset = OutputPreset.ORIGINAL

    @classmethod
    def of(cls, settings: Settings) -> Reviewer:
        return cls(
            rerolls=settings.qc_rerolls,
            paints=paint_table(settings.paints_file),
            default_output=OutputPreset(settings.output),
        )

    def load(self) -> None:
        """Load now what the first check would load mid-batch."""
        load_library()

    def inspect(
        self,
        image: Path,
        *,
        spec: CarSpec,
        model: str,
        preset: OutputPreset,
        neighbours: tuple[Neighbour, ...] = (),
        kept: Mapping[str, Any] | None = None,
    ) -> Inspection:
        """Every check of `image`, made by `model` for `spec`.

        `kept`: what the image cache kept of the image's checks (`kept_with_image`), when the
        cache answered with it. Those checks stand when they were made to the same standard
        (the car's colour phrase and its paint, its background, the thresholds): only the
        image's shape against the output preset and whether it repeats another image are
        judged again, and the image is not decoded again."""
        if kept and kept.get("standard") == self._standard(spec):
            known = Inspection.from_json(kept["inspection"])
            shape = check_shape(
                known.width,
                known.height,
                spec.aspect_ratio,
                known_sizes(model),
                model_label(model),
                preset,
            )
            return _judged_again(known, shape=shape, neighbours=neighbours)
        return one_at_a_time(
            inspect_image,
            image,
            spec=spec,
            known_sizes=known_sizes(model),
            model_label=model_label(model),
            preset=preset,
            neighbours=neighbours,
            paints=self.paints,
        )

    def kept_with_image(self, inspection: Inspection, *, spec: CarSpec) -> dict[str, Any]:
        """What the image cache keeps of an image's checks, for `inspect` to use again."""
        return {"standard": self._standard(spec), "inspection": inspection.as_json()}

    def _standard(self, spec: CarSpec) -> str:
        """Names what the checks kept with an image measured it against, besides the image:
        the same name, the same verdicts and sentences."""
        paint = self.paints.find(spec.color) if spec.color else None
        measure = {
            "colour": spec.color,
            "paint": None if paint is None else list(paint.rgb),
            "background": spec.background.value,
            "thresholds": _THRESHOLDS,
        }
        return hashlib.sha256(json.dumps(measure, sort_keys=True).encode()).hexdigest()[:32]

    def wants_reroll(self, inspection: Inspection, rerolls_done: int) -> bool:
        """A failed check, and a re-roll left: the image is made once more."""
        return inspection.failed and rerolls_done < self.rerolls


def _judged_again(
    known: Inspection, *, shape: Check, neighbours: tuple[Neighbour, ...]
) -> Inspection:
    """An image's checks kept from before, with its shape check (made anew by the caller) and
    its duplicate check made anew."""
    again = {
        "shape": shape,
        "duplicate": check_duplicate(known.fingerprint or "", neighbours),
    }
    return Inspection(
        checks=tuple(again.get(check.name, check) for check in known.checks),
        fingerprint=known.fingerprint,
        width=known.width,
        height=known.height,
    )


def keeps_first(first: Inspection, second: Inspection) -> bool:
    """Of an image and its re-roll, the first is kept only when it is strictly better."""
    return first.better_than(second)


def labels(*, model: str, prompt: str, values: Mapping[str, str]) -> Labels:
    """What a delivered file says of itself; the VIN and stock number from the row's values."""
    return Labels(
        model=model,
        prompt=prompt,
        vin=values.get("vin", ""),
        stock_number=values.get("stock_number", ""),
    )


def deliver_in_place(
    image: Path, *, preset: OutputPreset, labels: Labels, spec: CarSpec, stem: str | None = None
) -> Path:
    """Deliver `image` beside itself (as `stem` plus the preset's suffix) and remove the
    original when the delivered file has another name."""
    final = deliver(
        image,
        image.with_name(stem or image.stem),
        preset=preset,
        labels=labels,
        background=spec.background,
    )
    if final != image:
        image.unlink(missing_ok=True)
    return final


@dataclass(frozen=True)
class MadeImage:
    """A finished image of a batch, as the duplicate check across the batch sees it."""

    label: str
    spec: object
    """What the row asked for; two rows asking for the same car may share a picture."""
    checks: Mapping[str, Any]


def another_car(first: object, second: object) -> bool:
    """Whether two rows (their specs as stored) describe different cars: two cars alike but
    for their VIN or stock number (two white Sorentos on one lot) may share a picture."""
    return _described(first) != _described(second)


def _described(spec: object) -> object:
    """A row's spec without the fields that tell one car on the lot from its twin."""
    if not isinstance(spec, Mapping):
        return spec
    return {name: value for name, value in spec.items() if name not in IDENTITY_FIELDS}


def duplicates_across(images: list[MadeImage]) -> dict[int, dict[str, Any]]:
    """The checks (by position) of images that repeat an earlier image made for another car
    and were checked before that one was done (rows finish side by side): their duplicate
    check judged again against every earlier image.

    Only an earlier image within `DUPLICATE_WARN_BITS` of the hash can make a repeat, so the
    others (in a batch of different cars, all of them) are passed over by the hash alone."""
    prints = [str(image.checks.get("fingerprint") or "") for image in images]
    hashes = [hash_of(fp) if fp else None for fp in prints]
    cars = [_described(image.spec) for image in images]
    changed: dict[int, dict[str, Any]] = {}
    for index, image in enumerate(images):
        mine = hashes[index]
        if mine is None:
            continue
        earlier = tuple(
            Neighbour(images[other].label, prints[other])
            for other, theirs in enumerate(hashes[:index])
            if theirs is not None
            and (mine ^ theirs).bit_count() <= t.DUPLICATE_WARN_BITS
            and cars[other] != cars[index]
        )
        if not earlier:
            continue
        again = check_duplicate(prints[index], earlier)
        before = Inspection.from_json(image.checks)
        if again.verdict not in ("fail", "warn") or any(
            c.name == "duplicate" and c.verdict == again.verdict for c in before.checks
        ):
            continue
        checks = tuple(again if c.name == "duplicate" else c for c in before.checks)
        changed[index] = Inspection(
            checks=checks,
            fingerprint=before.fingerprint,
            width=before.width,
            height=before.height,
        ).as_json()
    return changed
