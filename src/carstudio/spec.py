"""What a car is in Car Studio: the spec, its allowed values, and the rules that forms
and CSV rows share."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
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


VIN_LENGTH = 17
# ISO 3779 / 49 CFR 565: letters stand for digits, each position has a weight; I, O and Q
# are never used, so they cannot be mistaken for 1 and 0.
_VIN_VALUES = dict(
    zip(
        "ABCDEFGHJKLMNPRSTUVWXYZ",
        (1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9),
        strict=True,
    )
)
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_VIN = re.compile(r"[A-HJ-NPR-Z0-9]{17}")


def parse_vin(value: Any) -> str:
    """A VIN as written, upper case, without spaces or dashes; empty means none. Seventeen
    letters and digits (no I, O or Q), or a ValueError that says what is wrong."""
    text = re.sub(r"[\s\-]", "", clean_text(value)).upper()
    if not text:
        return ""
    if len(text) != VIN_LENGTH:
        raise ValueError(
            f"a VIN has {VIN_LENGTH} characters; this one has {len(text)} ({text[:24]!r})"
        )
    if not _VIN.fullmatch(text):
        odd = sorted({ch for ch in text if not _VIN.fullmatch(ch * VIN_LENGTH)})
        raise ValueError(
            f"a VIN holds only letters and digits, never I, O or Q (found {''.join(odd)!r})"
        )
    return text


def vin_check_digit(vin: str) -> str:
    """The North American check digit (position 9) a 17-character VIN should carry."""
    total = sum(
        (int(ch) if ch.isdigit() else _VIN_VALUES[ch]) * weight
        for ch, weight in zip(vin, _VIN_WEIGHTS, strict=True)
    )
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def vin_warning(vin: str) -> str | None:
    """Why a valid-looking VIN may hold a typo, or None. Only a VIN whose 9th character is a
    check digit (0-9 or X, as every North American VIN has) is checked; European makers
    often put a letter there, which is allowed."""
    if len(vin) != VIN_LENGTH or not (vin[8].isdigit() or vin[8] == "X"):
        return None
    expected = vin_check_digit(vin)
    if vin[8] == expected:
        return None
    return (
        f"VIN {vin}: its check digit (9th character) is {vin[8]} but its other characters "
        f"give {expected}; check it for a typo."
    )


# --- the field registry ----------------------------------------------------------------------

Role = Literal["describes", "identifies", "renders"]
"""What a field is for: it describes the car (the prompt), identifies it on the lot (the file
name and the manifest, never the prompt), or says how the image is made."""


@dataclass(frozen=True)
class CarField:
    """How one CarSpec field is named, explained, offered and read; declared beside the field.

    `headers` are the column names it is read from, as real exports spell them, most specific
    first: where a file has two of them ("Exterior Color" and "Color"), the earlier one is used.
    `looks_like` are words that, in a header matching nothing, suggest this field was meant.
    """

    label: str
    help: str
    role: Role = "describes"
    headers: tuple[str, ...] = ()
    looks_like: tuple[str, ...] = ()
    placeholder: str = ""
    suggestions: tuple[str, ...] = ()
    choices: tuple[tuple[str, str], ...] = ()
    """(value, label) of each allowed value, for fields that take only those."""
    file_name: int = 0
    """Where the default file name carries it (1 first, then 2, ...; 0 not at all). Fields
    that identify the car come before those that describe it, whatever their numbers."""
    core: bool = False
    """One of the fields without which a file says little about its cars."""
    warning: Callable[[str], str | None] | None = None
    """Why a valid value may still be wrong (a VIN's check digit), shown but not refused."""
    name: str = ""
    default: str = ""
    example: str = ""
    max_length: int | None = None
    number: bool = False
    """Whether it holds a whole number (the year), so forms offer a number input."""

    @property
    def prompt(self) -> bool:
        """Whether the prompt templates may use it (`{{name}}`)."""
        return self.role == "describes"

    @property
    def input(self) -> Literal["text", "number", "select"]:
        """The form control it gets: a select of its choices, a number, or text."""
        if self.choices:
            return "select"
        return "number" if self.number else "text"

    def public(self) -> dict[str, Any]:
        """The field as the page's script reads it (the registry passed to the page as JSON)."""
        return {
            "name": self.name,
            "label": self.label,
            "help": self.help,
            "role": self.role,
            "default": self.default,
            "choices": [{"value": value, "label": label} for value, label in self.choices],
            "prompt": self.prompt,
            "fileName": self.file_name,
            "core": self.core,
            "input": self.input,
            "placeholder": self.placeholder,
            "suggestions": list(self.suggestions),
            "maxLength": self.max_length,
            "looksLike": list(self.looks_like),
        }


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


def _text(value: Any, info: ValidationInfo) -> str:
    if value is not None and not isinstance(value, str | int | float):
        raise ValueError("must be text")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a stock number typed into Excel as 1234 arrives as 1234.0
    text = clean_text(value)
    if len(text) > MAX_TEXT:
        label = (info.field_name or "text").replace("_", " ")
        raise ValueError(f"{label} is {len(text)} characters long; the limit is {MAX_TEXT}")
    return text


Text = Annotated[str, BeforeValidator(_text), Field(max_length=MAX_TEXT)]


class CarSpec(BaseModel):
    """One car to photograph. A make or a model is required; everything else may be empty.

    Each field declares, as a `CarField`, everything the rest of Car Studio derives from it:
    forms, CLI options, CSV headers, the template, the prompt's placeholders and file names.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    make: Annotated[
        Text,
        CarField(
            "Make",
            "Manufacturer, e.g. Toyota.",
            headers=(
                "Make",
                "Make Name",
                "Vehicle Make",
                "Brand",
                "Manufacturer",
                "Marque",
                "Marke",
                "Hersteller",
                "Fabricant",
                "Marca",
                "Merk",
                "Marka",
            ),
            looks_like=(
                "make",
                "brand",
                "manufacturer",
                "marque",
                "marke",
                "hersteller",
                "fabricant",
                "marca",
                "merk",
                "marka",
                "producent",
            ),
            placeholder="Toyota",
            core=True,
            file_name=1,
        ),
    ] = Field(default="", examples=["Toyota"])
    model: Annotated[
        Text,
        CarField(
            "Model",
            "Model name, e.g. Corolla.",
            headers=(
                "Model",
                "Model Name",
                "Vehicle Model",
                "Modell",
                "Modellbezeichnung",
                "Modèle",
                "Modelo",
                "Modello",
            ),
            looks_like=("model", "modell", "modele", "modelo", "modello"),
            placeholder="Corolla",
            core=True,
            file_name=2,
        ),
    ] = Field(default="", examples=["Corolla"])
    body_style: Annotated[
        Text,
        CarField(
            "Body style",
            "e.g. sedan, SUV, hatchback.",
            headers=(
                "Body Style",
                "Body Type",
                "Bodystyle",
                "Bodytype",
                "Vehicle Style",
                "Body",
                "Style",
                "Vehicle Type",
                "Vehicle Class",
                "VClass",
                "Class",
                "Type",
                "Karosserieform",
                "Karosserie",
                "Aufbau",
                "Type de carrosserie",
                "Carrosserie",
                "Tipo de carrocería",
                "Carrocería",
                "Tipo di carrozzeria",
                "Carrozzeria",
                "Carrosserievorm",
                "Typ nadwozia",
                "Nadwozie",
            ),
            looks_like=(
                "body",
                "karosserie",
                "carrosserie",
                "carroceria",
                "carrozzeria",
                "nadwozie",
                "bodystyle",
            ),
            placeholder="Sedan",
            suggestions=(
                "Sedan",
                "Hatchback",
                "SUV",
                "Crossover",
                "Coupe",
                "Convertible",
                "Wagon",
                "Pickup truck",
                "Minivan",
                "Van",
            ),
            core=True,
            file_name=4,
        ),
    ] = Field(default="", examples=["sedan"])
    trim: Annotated[
        Text,
        CarField(
            "Trim",
            "e.g. XSE.",
            headers=(
                "Trim",
                "Trim Level",
                "Trimlevel",
                "Series",
                "Version",
                "Grade",
                "Variant",
                "Ausstattungslinie",
                "Ausstattung",
                "Finition",
                "Acabado",
                "Allestimento",
                "Versione",
                "Uitvoering",
                "Wersja",
            ),
            looks_like=("trim", "ausstattung", "finition", "allestimento", "uitvoering"),
            placeholder="XSE",
            file_name=5,
        ),
    ] = Field(default="", examples=["XSE"])
    year: Annotated[
        int | None,
        BeforeValidator(parse_year),
        CarField(
            "Year",
            "Model year, four digits.",
            headers=(
                "Model Year",
                "Modelyear",
                "Year",
                "Yr",
                "Modelljahr",
                "Baujahr",
                "Année modèle",
                "Année",
                "Año modelo",
                "Año",
                "Anno",
                "Modeljaar",
                "Bouwjaar",
                "Rok produkcji",
                "Rocznik",
                "Rok",
            ),
            looks_like=("year", "jahr", "baujahr", "annee", "ano", "anno", "bouwjaar", "rok"),
            core=True,
            file_name=3,
        ),
    ] = Field(default=None, examples=[2024])
    color: Annotated[
        Text,
        CarField(
            "Colour",
            "Paint colour, e.g. pearl white.",
            headers=(
                "Exterior Color",
                "Exteriorcolor",
                "Extcolor",
                "Ext Color",
                "Exterior Colour",
                "Ext Colour",
                "Exterior",
                "OEM Color Name",
                "Color Name",
                "Colour Name",
                "Paint Color",
                "Paint Colour",
                "Color",
                "Colour",
                "Paint",
                "Außenfarbe",
                "Farbe",
                "Lackierung",
                "Couleur extérieure",
                "Couleur",
                "Teinte",
                "Color exterior",
                "Colore esterno",
                "Colore",
                "Kleur",
                "Lakkleur",
                "Kolor nadwozia",
                "Kolor",
            ),
            looks_like=(
                "color",
                "colour",
                "paint",
                "farbe",
                "lackierung",
                "couleur",
                "teinte",
                "colore",
                "kleur",
                "kolor",
            ),
            placeholder="Pearl white",
            suggestions=("White", "Black", "Silver", "Grey", "Red", "Blue", "Green"),
            core=True,
        ),
    ] = Field(default="", examples=["pearl white"])
    background: Annotated[
        Background,
        _choice(Background, Background.WHITE, "background"),
        CarField(
            "Background",
            "White studio or delivery hub.",
            role="renders",
            headers=(
                "Background",
                "BG",
                "Backdrop",
                "Scene",
                "Hintergrund",
                "Fond",
                "Fondo",
                "Sfondo",
                "Achtergrond",
                "Tło",
            ),
            choices=(("white", "White studio"), ("hub", "Delivery hub")),
            file_name=6,
        ),
    ] = Background.WHITE
    aspect_ratio: Annotated[
        AspectRatio,
        _choice(AspectRatio, AspectRatio.SQUARE, "aspect ratio"),
        CarField(
            "Aspect ratio",
            "Shape of the image.",
            role="renders",
            headers=("Aspect Ratio", "Aspectratio", "Aspect", "Ratio", "Seitenverhältnis"),
            choices=(
                ("1:1", "1:1 Square"),
                ("16:9", "16:9 Wide"),
                ("9:16", "9:16 Tall"),
                ("4:3", "4:3 Landscape"),
                ("3:4", "3:4 Portrait"),
            ),
        ),
    ] = AspectRatio.SQUARE

    vin: Annotated[
        str,
        BeforeValidator(parse_vin),
        CarField(
            "VIN",
            "Vehicle identification number, 17 characters; never sent to the image model.",
            role="identifies",
            headers=(
                "VIN",
                "VIN Number",
                "Vehicle Identification Number",
                "VIN Code",
                "FIN",
                "Fahrgestellnummer",
                "Fahrzeug-Identifizierungsnummer",
                "Numéro VIN",
                "Numéro de série",
                "Número de bastidor",
                "Bastidor",
                "Numero di telaio",
                "Telaio",
                "Chassisnummer",
                "Numer VIN",
                "Numer nadwozia",
            ),
            looks_like=("vin", "fin", "fahrgestellnummer", "bastidor", "telaio", "chassis"),
            placeholder="1HGCM82633A004352",
            file_name=2,
            warning=vin_warning,
        ),
    ] = Field(default="", examples=["1HGCM82633A004352"])
    stock_number: Annotated[
        Text,
        CarField(
            "Stock number",
            "The dealer's own number for the car; never sent to the image model.",
            role="identifies",
            # "id" last: a Google vehicle feed's stock number, unless a clearer column exists.
            headers=(
                "Stock Number",
                "Stocknumber",
                "Stockno",
                "Stock #",
                "Stock No.",
                "Stock Num",
                "Stock Nbr",
                "Stock ID",
                "Stock",
                "Inventory Number",
                "Vehicle ID",
                "Bestandsnummer",
                "Interne Nummer",
                "Fahrzeugnummer",
                "Numéro de stock",
                "N° de stock",
                "Référence",
                "Número de stock",
                "Referencia",
                "Numero di stock",
                "Riferimento",
                "Voorraadnummer",
                "Numer magazynowy",
                "ID",
            ),
            looks_like=("stock_no", "stock_num", "stocknr", "bestandsnummer", "voorraadnummer"),
            placeholder="A1234",
            file_name=1,
        ),
    ] = Field(default="", examples=["T24-0117"])

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
        return {field.name: field.default for field in REGISTRY.values()}

    def as_row(self) -> dict[str, str]:
        """The spec as flat strings in FIELDS order, the way a CSV row holds it."""
        return {name: _as_text(getattr(self, name)) for name in FIELDS}

    def prompt_values(self) -> dict[str, str]:
        """The fields a prompt template may use, plus `title`; identity fields never."""
        row = self.as_row()
        return {name: row[name] for name in PROMPT_FIELDS} | {"title": self.title}


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def _registry() -> dict[str, CarField]:
    found: dict[str, CarField] = {}
    for name, info in CarSpec.model_fields.items():
        declared = [item for item in info.metadata if isinstance(item, CarField)]
        if len(declared) != 1:
            raise TypeError(f"CarSpec.{name} needs exactly one CarField")
        examples = info.examples or []
        found[name] = replace(
            declared[0],
            name=name,
            default=_as_text(info.default),
            example=_as_text(examples[0] if examples else info.default),
            max_length=MAX_TEXT if info.annotation is str else None,
            number=int in get_args(info.annotation) or info.annotation is int,
        )
    return found


REGISTRY: dict[str, CarField] = _registry()
"""Every car field by name, in CarSpec's order: the one source forms, CLI, CSV and page use."""
FIELDS: tuple[str, ...] = tuple(REGISTRY)
TEXT_FIELDS: tuple[str, ...] = tuple(name for name, f in REGISTRY.items() if f.max_length)
PROMPT_FIELDS: tuple[str, ...] = tuple(name for name, f in REGISTRY.items() if f.prompt)
IDENTITY_FIELDS: tuple[str, ...] = tuple(
    name for name, f in REGISTRY.items() if f.role == "identifies"
)
CORE_FIELDS: tuple[str, ...] = tuple(name for name, f in REGISTRY.items() if f.core)
FIELD_LABELS: dict[str, str] = {name: f.label for name, f in REGISTRY.items()}
"""How each car field is named to people, in forms, previews and messages."""


def instructions(max_rows: int, concurrency: int) -> str:
    """The Batch tab's sentence saying what a CSV holds, from the registry."""
    columns = ", ".join(
        f"{name} ({'/'.join(value for value, _ in f.choices)})" if f.choices else name
        for name, f in REGISTRY.items()
    )
    images = "image" if concurrency == 1 else "images"
    return (
        f"Upload a CSV or Excel file (max {max_rows} rows) with columns: {columns}. "
        f"The batch runs {concurrency} {images} in parallel. You’ll receive a ZIP when "
        "finished. Failed rows recorded in failed_rows.json."
    )
