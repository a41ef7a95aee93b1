"""The car spec, prompt building and file naming."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from pydantic import ValidationError

from carstudio.errors import ConfigurationError, InvalidInput
from carstudio.naming import NameTemplate, file_stems, image_stem, slug, unique_stem
from carstudio.prompts import load_prompt_book
from carstudio.spec import AspectRatio, Background, CarSpec, vin_check_digit, vin_warning


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


# --- identity fields: VIN and stock number ---------------------------------------------------


@pytest.mark.parametrize(
    "vin",
    # The textbook Honda example, the VIN in Meta's automotive feed sample, and all ones
    # (weights 8+7+6+5+4+3+2+10+0+9+8+7+6+5+4+3+2 = 89, and 89 mod 11 = 1).
    ["1HGCM82633A004352", "1FADP5AU6DL536022", "11111111111111111"],
)
def test_north_american_vins_pass_the_check_digit(vin: str) -> None:
    assert vin_check_digit(vin) == vin[8]
    assert vin_warning(vin) is None
    assert CarSpec(make="X", vin=vin).vin == vin


def test_a_wrong_check_digit_is_a_warning_not_an_error() -> None:
    spec = CarSpec(make="Honda", vin="1HGCM82633A004353")
    assert spec.vin == "1HGCM82633A004353"
    warning = vin_warning(spec.vin)
    assert warning is not None and "check digit" in warning and "give 5" in warning


def test_a_european_vin_without_a_check_digit_is_not_doubted() -> None:
    assert vin_warning("WVWZZZ1KZ8W000001") is None


def test_vins_are_read_as_written_in_upper_case_without_spaces() -> None:
    assert CarSpec(make="X", vin=" 1hgcm8263 3a0-04352 ").vin == "1HGCM82633A004352"


@pytest.mark.parametrize(
    ("vin", "words"),
    [("1HGCM8263", "17 characters; this one has 9"), ("1HGCM82633A00435O", "never I, O or Q")],
)
def test_malformed_vins_are_refused_with_a_reason(vin: str, words: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(words)):
        CarSpec(make="X", vin=vin)


def test_identity_fields_never_reach_the_prompt() -> None:
    spec = CarSpec(make="Kia", model="Sorento", vin="5XYPG4A30GG123456", stock_number="K-17")
    prompt = load_prompt_book().build(spec)
    assert "5XYPG4A30GG123456" not in prompt and "K-17" not in prompt
    assert "Kia Sorento" in prompt


def test_stock_number_and_vin_lead_the_file_name() -> None:
    spec = CarSpec(
        make="Kia",
        model="Sorento",
        year=2015,
        trim="LX",
        vin="5XYPG4A30GG123456",
        stock_number="K-17/b",
    )
    assert image_stem(spec) == "K-17-b_5XYPG4A30GG123456_kia-sorento-2015-lx-white"
    assert image_stem(CarSpec(make="Kia", stock_number="K17")) == "K17_kia-white"
    assert image_stem(CarSpec(make="Kia", vin="5XYPG4A30GG123456")) == (
        "5XYPG4A30GG123456_kia-white"
    )


def test_two_identical_cars_are_told_apart_by_stock_number() -> None:
    first = CarSpec(make="Kia", model="Sorento", year=2015, trim="LX", stock_number="K17")
    second = first.model_copy(update={"stock_number": "K18"})
    stems = file_stems([(2, first), (7, second)])
    assert stems == {2: "K17_kia-sorento-2015-lx-white", 7: "K18_kia-sorento-2015-lx-white"}


def test_a_name_template_names_the_files_and_drops_empty_parts() -> None:
    template = NameTemplate.parse("{stock_number}-{make}_{model}_{color}")
    spec = CarSpec(make="BMW", model="X5", stock_number="B7")
    assert image_stem(spec, template) == "B7-bmw_x5"
    assert image_stem(CarSpec(make="BMW", model="X5"), template) == "bmw_x5"


def test_names_stay_unique_without_regard_to_case() -> None:
    template = NameTemplate.parse("{stock_number}")
    stems = file_stems(
        [(2, CarSpec(make="A", stock_number="ab1")), (3, CarSpec(make="B", stock_number="AB1"))],
        template,
    )
    assert stems == {2: "ab1", 3: "AB1-row3"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{colour}", "{colour}, which is not a car field"),
        ("../{make}", "“.” is not allowed"),
        ("{make}/{model}", "“/” is not allowed"),
        ("cars", "needs at least one field"),
        ("{make}" * 40, "the limit is 200"),
    ],
)
def test_bad_name_templates_are_refused_with_a_sentence(text: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        NameTemplate.parse(text)
    assert words in caught.value.message
    assert caught.value.message.startswith("The file-name template")


def test_a_template_cannot_make_a_name_leave_its_folder() -> None:
    template = NameTemplate.parse("{make}_{stock_number}")
    stem = image_stem(CarSpec(make="../..", stock_number="/etc/passwd"), template)
    assert stem == "etc-passwd"
