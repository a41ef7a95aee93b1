"""What the image checks cost per 1024x1024 image (decoding included), beside the cost of only
decoding the same file; and, from the fake Replicate's scripted wrong pictures, which check
catches which wrong image and how many good images any check flags (the confusion table)."""

from __future__ import annotations

import io
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tests.fakes.replicate import IMAGE_FAULTS, _render

from bench.common import median
from carstudio.prompts import load_prompt_book
from carstudio.providers.models import known_sizes
from carstudio.providers.preview import render_placeholder
from carstudio.quality.checks import CHECK_NAMES, Neighbour, inspect_image
from carstudio.spec import Background, CarSpec

IMAGES = 24
SIZE = (1024, 1024)
COLOURS = ("Kings Red", "pearl white", "agate black", "Celestial Silver", "blue", "gris foncé")
GOOD_CASES = 60


def _photo_like(spec: CarSpec, seed: int) -> Image.Image:
    """The preview's car at 1024x1024 with sensor-like noise, so the PNG decodes as slowly as a
    photograph does (flat drawings compress, and decode, far faster than photographs)."""
    image = render_placeholder(spec).resize(SIZE, Image.Resampling.BICUBIC)
    noise = np.random.default_rng(seed).integers(-3, 4, size=(*SIZE[::-1], 3), dtype=np.int16)
    pixels = np.clip(np.asarray(image, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def _speed(work: Path) -> dict[str, Any]:
    paths: list[tuple[Path, CarSpec]] = []
    for n in range(IMAGES):
        spec = CarSpec(
            make="Carmaker", model=f"Model {n}", color=COLOURS[n % len(COLOURS)],
            background="hub" if n % 3 == 0 else "white",
        )  # fmt: skip
        image = _photo_like(spec, n)
        png = work / f"{n}.png"
        image.save(png, compress_level=6)
        jpg = work / f"{n}.jpg"
        image.save(jpg, quality=90)
        paths += [(png, spec), (jpg, spec)]
    neighbours = tuple(Neighbour(f"row {n}", "0" * 144 + ":" + "00" * 48) for n in range(49))
    timings: dict[str, list[float]] = {"png": [], "jpg": [], "png_decode": [], "jpg_decode": []}
    for _ in range(3):
        for path, spec in paths:
            kind = path.suffix.lstrip(".")
            began = time.perf_counter()
            with Image.open(path) as image:
                image.load()
            timings[f"{kind}_decode"].append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            inspect_image(
                path, spec=spec, known_sizes=known_sizes("google/imagen-3"),
                model_label="Imagen 3", neighbours=neighbours,
            )  # fmt: skip
            timings[kind].append((time.perf_counter() - began) * 1000)
    png = sorted(timings["png"])
    return {
        "qc_ms_median_png": round(median(png), 1),
        "qc_ms_p95_png": round(png[int(len(png) * 0.95) - 1], 1),
        "decode_ms_median_png": round(median(timings["png_decode"]), 1),
        "qc_ms_median_jpeg": round(median(timings["jpg"]), 1),
        "decode_ms_median_jpeg": round(median(timings["jpg_decode"]), 1),
    }


def confusion(work: Path) -> dict[str, dict[str, int]]:
    """For each scripted wrong picture, how many of its images each check failed; for good
    pictures (the `good` line), how many each check flagged (failed or warned)."""
    prompts = load_prompt_book()
    rng = random.Random(7)
    table: dict[str, dict[str, int]] = {}
    cases = [(kind, n) for kind in sorted(IMAGE_FAULTS - {"duplicate"}) for n in range(12)]
    cases += [("duplicate", n) for n in range(12)] + [("good", n) for n in range(GOOD_CASES)]
    seen: list[Neighbour] = []
    for kind, n in cases:
        spec = CarSpec(
            make=rng.choice(["Audi", "Toyota", "Ford", "Volkswagen"]), model=f"M{n}{kind[:2]}",
            trim=rng.choice(["", "SE", "GTI"]), year=2020 + n % 6,
            color=rng.choice(COLOURS), background=rng.choice(["white", "hub"]),
            aspect_ratio=rng.choice(["1:1", "4:3", "16:9", "3:4", "9:16"]),
        )  # fmt: skip
        if kind == "grey_background":  # the wrong background of a row that asked for white
            spec = spec.model_copy(update={"background": Background.WHITE})
        prompt = prompts.build(spec)
        drawn, picture = prompt, None if kind in ("good", "duplicate") else kind
        neighbours = seen[-5:]
        if kind == "duplicate":
            other = spec.model_copy(update={"model": f"Other{n}"})
            first = work / f"dup-{n}.png"
            first.write_bytes(_render(spec.aspect_ratio.value, "png", 0, prompts.build(other)))
            original = inspect_image(
                first, spec=other, known_sizes=known_sizes("google/imagen-3"), model_label="x"
            )
            neighbours = [Neighbour("the other row", original.fingerprint or "")]
            drawn = prompts.build(other)
        path = work / f"{kind}-{n}.png"
        path.write_bytes(_render(spec.aspect_ratio.value, "png", 0, drawn, picture))
        inspection = inspect_image(
            path, spec=spec, known_sizes=known_sizes("google/imagen-3"),
            model_label="Imagen 3", neighbours=neighbours,
        )  # fmt: skip
        if kind == "good" and inspection.fingerprint:
            seen.append(Neighbour(f"good {n}", inspection.fingerprint))
        line = table.setdefault(kind, {"images": 0} | dict.fromkeys(CHECK_NAMES, 0))
        line["images"] += 1
        for check in inspection.checks:
            flagged = check.verdict == "fail" or (kind == "good" and check.verdict == "warn")
            line[check.name] += flagged
    return table


def run(work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    figures = _speed(work)
    table = confusion(work)
    good = table["good"]
    figures["qc_good_images_flagged"] = sum(good[name] for name in CHECK_NAMES)
    figures["qc_wrong_images_missed"] = sum(
        line["images"]
        - line[
            {
                "wrong_colour": "colour",
                "grey_background": "background",
                "wrong_aspect": "shape",
            }.get(kind, kind)
        ]  # fmt: skip
        for kind, line in table.items()
        if kind != "good"
    )
    figures["details"] = {"confusion": table, "images": IMAGES * 2, "size": list(SIZE)}
    buffer = io.StringIO()
    for kind, line in table.items():
        buffer.write(f"{kind}: {line}\n")
    print(buffer.getvalue(), end="")
    return figures
