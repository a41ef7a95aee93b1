"""What a car is in Car Studio: the spec, its allowed values, and the rules that forms
and CSV rows share."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

MAX_TEXT = 60
"""Longest value kept for a text field; longer input is an error, not silently cut."""

FIRST_CAR_YEAR = 1886
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Invisible formatting (zero-width, direction marks, BOM) would split words if made a space.
_INVISIBLE = re.compile(r"[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


class Background(StrEnum):
    WHITE = "white"
    HUB = "hub"


class AspectRatio(StrEnum):
    SQUARE = "1:1"
    WIDE = "16:9"
    TALL = "9:16"
    LANDSCAPE = "4:3"
    PORTRAIT = "3:4"


TEXT_FIELDS = ("make", "model", "body_style", "trim", "color")
FIELDS = ("make", "model", "body_style", "trim", "year", "color", "background", "aspect_ratio")
FIELD_LABELS = {
    "make": "Make",
    "model": "Model",
    "body_style": "Body style",
    "trim": "Trim",
    "year": "Year",
    "color": "Colour",
    "background": "Background",
    "aspect_ratio": "Aspect ratio",
}
"""How each car field is named to people, in forms, previews and messages."""


def clean_text(value: Any) -> str:
    """Trim, drop control and invisible formatting characters, fold inner whitespace."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFC", str(value))
    text = _CONTROL.sub(" ", _INVISIBLE.sub("", text))
    return " ".join(text.split())


def latest_model_year() -> int:
    return dt.date.today().year + 2


def parse_year(value: Any) -> int | None:
    """Read a model year: 2024, "2024", or Excel's "2024.0". Empty means unknown."""
    if value is None or isinstance(value, bool):
        return None if value is None else _bad_year(value)
    if isinstance(value, int):
        year = value
    elif isinstance(value, float):
        if not value.is_integer():
            return _bad_year(value)
        year = int(value)
    else:
        text = clean_text(value)
        if not text:
            return None
        # Excel writes 2024.0, or 2024,0 where the decimal separator is a comma.
        match = re.fullmatch(r"(\d{4})(?:[.,]0+)?", text)
        if not match:
            return _bad_year(text)
        year = int(match.group(1))
    if not FIRST_CAR_YEAR <= year <= latest_model_year():
        raise ValueError(
            f"year {year} is out of range; use a year from {FIRST_CAR_YEAR} "
            f"to {latest_model_year()}"
        )
    return year


def _bad_year(value: Any) -> int:
    raise ValueError(f"year must be four digits, like 2024 (got {str(value)[:20]!r})")


def _choice(enum: type[StrEnum], default: StrEnum, label: str) -> Any:
    allowed = ", ".join(member.value for member in enum)

    def parse(value: Any) -> Any:
        if isinstance(value, enum):
            return value
        text = clean_text(value).lower()
        if not text:
            return default
        try:
            return enum(text)
        except ValueError:
            raise ValueError(f"{label} must be one of {allowed} (got {text[:20]!r})") from None

    return BeforeValidator(parse)


class CarSpec(BaseModel):
    """One car to photograph. A make or a model is required; everything else may be empty."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    make: str = Field(default="", max_length=MAX_TEXT, examples=["Toyota"])
    model: str = Field(default="", max_length=MAX_TEXT, examples=["Corolla"])
    body_style: str = Field(default="", max_length=MAX_TEXT, examples=["sedan"])
    trim: str = Field(default="", max_length=MAX_TEXT, examples=["XSE"])
    year: Annotated[int | None, BeforeValidator(parse_year)] = Field(default=None, examples=[2024])
    color: str = Field(default="", max_length=MAX_TEXT, examples=["pearl white"])
    background: Annotated[Background, _choice(Background, Background.WHITE, "background")] = (
        Background.WHITE
    )
    aspect_ratio: Annotated[
        AspectRatio, _choice(AspectRatio, AspectRatio.SQUARE, "aspect ratio")
    ] = AspectRatio.SQUARE

    @field_validator(*TEXT_FIELDS, mode="before")
    @classmethod
    def _clean(cls, value: Any, info: ValidationInfo) -> str:
        if value is not None and not isinstance(value, str | int | float):
            raise ValueError("must be text")
        text = clean_text(value)
        if len(text) > MAX_TEXT:
            label = (info.field_name or "text").replace("_", " ")
            raise ValueError(f"{label} is {len(text)} characters long; the limit is {MAX_TEXT}")
        return text

    @model_validator(mode="after")
    def _needs_make_or_model(self) -> CarSpec:
        if not self.make and not self.model:
            raise ValueError("a car needs at least a make or a model")
        return self

    @property
    def title(self) -> str:
        """A human name for the car: "2024 Toyota Corolla XSE"."""
        parts = [str(self.year) if self.year else "", self.make, self.model, self.trim]
        return " ".join(part for part in parts if part)

    @classmethod
    def defaults(cls) -> dict[str, str]:
        """What a car gets for each field left empty, the way a CSV row holds it."""
        return {
            name: str(getattr(field.default, "value", field.default) or "")
            for name, field in cls.model_fields.items()
        }

    def as_row(self) -> dict[str, str]:
        """The spec as flat strings, the way a CSV row holds it."""
        return {
            "make": self.make,
            "model": self.model,
            "body_style": self.body_style,
            "trim": self.trim,
            "year": str(self.year) if self.year else "",
            "color": self.color,
            "background": self.background.value,
            "aspect_ratio": self.aspect_ratio.value,
        }
