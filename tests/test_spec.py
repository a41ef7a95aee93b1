"""The car spec, prompt building and file naming."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from carstudio.errors import ConfigurationError
from carstudio.naming import image_stem, slug, unique_stem
from carstudio.prompts import load_prompt_book
from carstudio.spec import AspectRatio, Background, CarSpec


def test_a_spec_needs_a_make_or_a_model() -> None:
    with pytest.raises(ValidationError, match="at least a make or a model"):
        CarSpec(color="red")
    assert CarSpec(model="Corolla").model == "Corolla"


def test_defaults_are_white_background_and_square() -> None:
    spec = CarSpec(make="Toyota")
    assert spec.background is Background.WHITE
    assert spec.aspect_ratio is AspectRatio.SQUARE


@pytest.mark.parametrize("value", ["HUB", " hub ", "Hub"])
def test_background_is_read_in_any_case(value: str) -> None:
    assert CarSpec(make="Kia", background=value).background is Background.HUB


def test_unknown_background_says_what_is_allowed() -> None:
    with pytest.raises(ValidationError, match="background must be one of white, hub"):
        CarSpec(make="Kia", background="beach")


def test_unknown_aspect_ratio_says_what_is_allowed() -> None:
    with pytest.raises(ValidationError, match="1:1, 16:9, 9:16, 4:3, 3:4"):
        CarSpec(make="Kia", aspect_ratio="2:1")


@pytest.mark.parametrize(
    ("raw", "year"),
    [("2024", 2024), ("2024.0", 2024), ("2024,0", 2024), (2024.0, 2024), ("", None)],
)
def test_year_accepts_excel_floats(raw: object, year: int | None) -> None:
    assert CarSpec(make="Kia", year=raw).year == year


@pytest.mark.parametrize("raw", ["24", "20x4", "2024.5", "1700", str(dt.date.today().year + 5)])
def test_implausible_years_are_refused(raw: str) -> None:
    with pytest.raises(ValidationError, match="year"):
        CarSpec(make="Kia", year=raw)


def test_text_is_trimmed_and_control_characters_removed() -> None:
    spec = CarSpec(make="  Toy\x00ota\u200b ", model="Co\trolla")
    assert spec.make == "Toy ota"
    assert spec.model == "Co rolla"


def test_invisible_formatting_characters_do_not_split_words() -> None:
    assert CarSpec(make="Citro\u200bën").make == "Citroën"


def test_overlong_text_is_an_error_not_silently_cut() -> None:
    with pytest.raises(ValidationError, match="make is 61 characters long; the limit is 60"):
        CarSpec(make="x" * 61)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="colour"):
        CarSpec.model_validate({"make": "Kia", "colour": "red"})


def test_prompt_fills_fields_and_collapses_whitespace() -> None:
    book = load_prompt_book()
    prompt = book.build(
        CarSpec(make="Toyota", model="Corolla", year=2024, color="red", body_style="sedan")
    )
    assert "red 2024 Toyota Corolla sedan" in prompt
    assert "  " not in prompt and "{{" not in prompt
    assert "front three-quarter" in prompt
    assert "No text, no watermark" in prompt and "no people" in prompt


def test_empty_fields_leave_no_gaps_in_the_prompt() -> None:
    prompt = load_prompt_book().build(CarSpec(model="Civic"))
    assert "of a Civic," in prompt


def test_hub_prompt_is_a_showroom() -> None:
    prompt = load_prompt_book().build(CarSpec(make="Kia", background="hub"))
    assert "showroom" in prompt and "white studio background" not in prompt


def test_operator_templates_are_used(tmp_path) -> None:
    path = tmp_path / "prompts.toml"
    path.write_text('[templates]\nwhite = "W {{make}}"\nhub = "H {{ model }}"\n')
    book = load_prompt_book(path)
    assert book.build(CarSpec(make="Kia", model="EV6")) == "W Kia"
    assert book.build(CarSpec(make="Kia", model="EV6", background="hub")) == "H EV6"


def test_broken_template_file_names_itself(tmp_path) -> None:
    path = tmp_path / "prompts.toml"
    path.write_text("[templates]\nwhite = 'only one'\n")
    with pytest.raises(ConfigurationError, match="prompts.toml"):
        load_prompt_book(path)


def test_file_name_follows_the_fields_in_order() -> None:
    spec = CarSpec(
        make="Mercedes-Benz",
        model="C 300",
        year=2024,
        body_style="Sedan",
        trim="AMG Line",
        background="hub",
    )
    assert image_stem(spec) == "mercedes-benz-c-300-2024-sedan-amg-line-hub"


@pytest.mark.parametrize(
    "make", ["../../etc/passwd", "..\\..\\boot.ini", "/abs/path", "CON", "ÄÖü ÿ", "a\x00b", "💥"]
)
def test_file_names_are_portable_and_cannot_escape(make: str) -> None:
    stem = image_stem(CarSpec(make=make, model="X"))
    assert stem == slug(stem)
    assert "/" not in stem and "\\" not in stem and ".." not in stem
    assert stem and not stem.startswith("-")


def test_collisions_get_the_row_number() -> None:
    taken: set[str] = set()
    spec = CarSpec(make="Kia", model="EV6")
    assert unique_stem(spec, 2, taken) == "kia-ev6-white"
    assert unique_stem(spec, 3, taken) == "kia-ev6-white-row3"
