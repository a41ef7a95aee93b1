"""File names for generated images: deterministic, portable, and unable to leave their folder.

A name follows a template of the registry's fields. The default puts the fields that identify
a car on the lot first (`{stock_number}_{vin}_...`), then those that describe it; a batch may
bring its own template (`--name-template`, the form's "File names"). Empty parts are dropped.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from carstudio.errors import InvalidInput
from carstudio.spec import REGISTRY, CarSpec

MAX_STEM = 120
MAX_TEMPLATE = 200
_UNSAFE = re.compile(r"[^a-z0-9]+")
_UNSAFE_KEEP_CASE = re.compile(r"[^A-Za-z0-9]+")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_LITERAL = re.compile(r"[A-Za-z0-9_-]*")
_SEPARATORS = re.compile(r"([-_])[-_]*")


def slug(text: str, *, keep_case: bool = False) -> str:
    """ASCII letters and digits joined by hyphens; accents folded, the rest dropped.

    Lowercase unless `keep_case`: a VIN or stock number is read as the dealer writes it.
    """
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    if keep_case:
        return _UNSAFE_KEEP_CASE.sub("-", folded).strip("-")
    return _UNSAFE.sub("-", folded.lower()).strip("-")


def default_template() -> str:
    """`{stock_number}_{vin}_{make}-{model}-...`: identity fields, then the car, per registry."""
    named = sorted((f for f in REGISTRY.values() if f.file_name), key=lambda f: f.file_name)
    ids = "_".join(f"{{{f.name}}}" for f in named if f.role == "identifies")
    car = "-".join(f"{{{f.name}}}" for f in named if f.role != "identifies")
    return "_".join(part for part in (ids, car) if part)


@dataclass(frozen=True)
class NameTemplate:
    """A checked file-name template: literal text and field names, in order."""

    text: str
    parts: tuple[tuple[str, bool], ...]
    """(text, is_field) pairs."""

    @classmethod
    def parse(cls, text: str | None) -> NameTemplate:
        """The template `text` (the default when empty); InvalidInput says what is wrong."""
        text = (text or "").strip() or default_template()
        fields = ", ".join(f"{{{name}}}" for name in REGISTRY)
        if len(text) > MAX_TEMPLATE:
            raise _bad(f"is {len(text)} characters long; the limit is {MAX_TEMPLATE}.")
        parts: list[tuple[str, bool]] = []
        at = 0
        for match in _PLACEHOLDER.finditer(text):
            parts.append((text[at : match.start()], False))
            name = match.group(1).strip()
            if name not in REGISTRY:
                raise _bad(f"names {{{name}}}, which is not a car field; use {fields}.")
            parts.append((name, True))
            at = match.end()
        parts.append((text[at:], False))
        for literal, is_field in parts:
            if not is_field and not _LITERAL.fullmatch(literal):
                odd = next(ch for ch in literal if not _LITERAL.fullmatch(ch))
                raise _bad(
                    f"may hold only letters, digits, - and _ besides the fields; “{odd}” is "
                    "not allowed, so a name can never leave its folder."
                )
        if not any(is_field for _, is_field in parts):
            raise _bad(f"needs at least one field, such as {{make}} ({fields}).")
        return cls(text, tuple((t, f) for t, f in parts if t))

    def render(self, spec: CarSpec) -> str:
        """The stem for `spec`: portable, never empty, never a path."""
        row = spec.as_row()
        pieces = [
            slug(row[text], keep_case=REGISTRY[text].role == "identifies") if is_field else text
            for text, is_field in self.parts
        ]
        stem = _SEPARATORS.sub(r"\1", "".join(pieces)).strip("-_")
        stem = stem[:MAX_STEM].strip("-_")
        return stem or "car"


def _bad(problem: str) -> InvalidInput:
    return InvalidInput(f"The file-name template {problem}")


def image_stem(spec: CarSpec, template: NameTemplate | None = None) -> str:
    """The file name (without suffix) of `spec`'s image under `template` (default: registry's)."""
    return (template or NameTemplate.parse(None)).render(spec)


def unique_stem(
    spec: CarSpec, row: int, taken: set[str], template: NameTemplate | None = None
) -> str:
    """The spec's stem, or stem-row<N> when another row already has that name (compared
    without case, as Windows and macOS do). Adds it to taken."""
    stem = image_stem(spec, template)
    if stem.casefold() in taken:
        stem = f"{stem}-row{row}"
    taken.add(stem.casefold())
    return stem


def file_stems(
    cars: list[tuple[int, CarSpec]], template: NameTemplate | None = None
) -> dict[int, str]:
    """Row number -> stem for a batch's cars, unique within it, in row order."""
    taken: set[str] = set()
    return {row: unique_stem(spec, row, taken, template) for row, spec in cars}
