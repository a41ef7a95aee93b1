"""File names for generated images: deterministic, portable, and unable to leave their folder."""

from __future__ import annotations

import re
import unicodedata

from carstudio.spec import CarSpec

MAX_STEM = 120
_UNSAFE = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    """Lowercase ASCII letters and digits joined by hyphens; accents folded, the rest dropped."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _UNSAFE.sub("-", folded.lower()).strip("-")


def image_stem(spec: CarSpec) -> str:
    """make-model-year-body_style-trim-background, sanitized; never empty, never a path."""
    parts = [spec.make, spec.model, str(spec.year or ""), spec.body_style, spec.trim]
    parts.append(spec.background.value)
    stem = "-".join(part for part in (slug(p) for p in parts) if part)
    stem = stem[:MAX_STEM].strip("-")
    return stem or "car"


def unique_stem(spec: CarSpec, row: int, taken: set[str]) -> str:
    """The spec's stem, or stem-row<N> when another row already has that name. Adds it to taken."""
    stem = image_stem(spec)
    if stem in taken:
        stem = f"{stem}-row{row}"
    taken.add(stem)
    return stem
