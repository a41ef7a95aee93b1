"""CSV intake: what Car Studio reads from an uploaded file, and what it refuses and why."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carstudio.errors import InvalidInput, TooLarge
from carstudio.intake import (
    MAX_BYTES,
    MAX_ROWS,
    PREVIEW_ROWS,
    IntakeReport,
    read_intake,
    template_csv,
)
from carstudio.spec import FIELDS, MAX_TEXT, CarSpec, clean_text
from carstudio.web.schemas import IntakeReportOut

HEADER = ",".join(FIELDS)


def csv_bytes(*lines: str, encoding: str = "utf-8", newline: str = "\n") -> bytes:
    return (newline.join(lines) + newline).encode(encoding)


def refused(data: bytes, **kwargs: int) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        read_intake(data, **kwargs)
    return caught.value


# --- the template and the happy path ----------------------------------------------------------


def test_template_reads_back_ok_with_all_columns() -> None:
    report = read_intake(template_csv().encode())
    assert report.ok
    assert [h.mapped_to for h in report.headers] == list(FIELDS)
    assert report.unknown_headers == []
    assert 3 <= report.row_count <= 4
    backgrounds = {row.values["background"] for row in report.rows}
    ratios = {row.values["aspect_ratio"] for row in report.rows}
    assert backgrounds == {"white", "hub"}
    assert len(ratios) >= 3
    assert any(row.values["year"] == "" and row.values["color"] == "" for row in report.rows)


def test_valid_rows_carry_a_spec_and_normalized_values() -> None:
    report = read_intake(csv_bytes(HEADER, "Toyota,Corolla,sedan,XSE,2024,pearl white,HUB,16:9"))
    [row] = report.rows
    assert row.row == 2
    assert row.errors == []
    assert row.spec == CarSpec(
        make="Toyota",
        model="Corolla",
        body_style="sedan",
        trim="XSE",
        year=2024,
        color="pearl white",
        background="hub",
        aspect_ratio="16:9",
    )
    assert row.values == row.spec.as_row()
    assert list(row.values) == list(FIELDS)
    assert report.valid_rows == [row]
    assert report.invalid_rows == []
    assert report.encoding == "utf-8"
    assert report.delimiter == ","


def test_empty_optional_values_get_their_defaults() -> None:
    report = read_intake(csv_bytes("make,model,background,aspect_ratio", "Mazda,,,"))
    values = report.rows[0].values
    assert values["background"] == "white"
    assert values["aspect_ratio"] == "1:1"
    assert values["model"] == ""
    assert values["year"] == ""


def test_background_is_matched_in_any_case() -> None:
    report = read_intake(csv_bytes("make,background", "Kia,HUB", "Kia, White "))
    assert [row.values["background"] for row in report.rows] == ["hub", "white"]
    assert report.ok


def test_excel_float_year() -> None:
    report = read_intake(csv_bytes("make,year", "Honda,2024.0", "Honda,2019"))
    assert [row.values["year"] for row in report.rows] == ["2024", "2019"]
    assert report.rows[0].spec is not None and report.rows[0].spec.year == 2024


def test_cells_are_trimmed_and_control_characters_removed() -> None:
    report = read_intake(csv_bytes("make,model", '  Audi\x07 ,"A4\u200b  Avant"'))
    assert report.rows[0].values["make"] == "Audi"
    assert report.rows[0].values["model"] == "A4 Avant"


def test_columns_may_come_in_any_order_and_be_missing() -> None:
    report = read_intake(csv_bytes("color,model", "red,Miata"))
    row = report.rows[0]
    assert row.values["model"] == "Miata"
    assert row.values["color"] == "red"
    assert row.values["make"] == ""
    assert report.ok


def test_short_rows_read_missing_cells_as_empty() -> None:
    report = read_intake(csv_bytes(HEADER, "Fiat,500"))
    assert report.ok
    assert report.rows[0].values["trim"] == ""


# --- headers ------------------------------------------------------------------------------


def test_synonym_headers_are_mapped() -> None:
    header = (
        "Brand,Model Name,Body Style,Trim Level,Model Year,Colour,BG,Aspect Ratio,"
        "Vehicle Identification Number,Stock No."
    )
    report = read_intake(csv_bytes(header, "BMW,X5,SUV,M50i,2023,black,hub,4:3,,A7"))
    assert [h.mapped_to for h in report.headers] == list(FIELDS)
    assert [h.name for h in report.headers] == header.split(",")
    assert report.rows[0].spec is not None
    assert report.rows[0].spec.color == "black"


@pytest.mark.parametrize(
    ("header", "column"),
    [
        (" Body-Style ", "body_style"),
        ("ASPECT.RATIO", "aspect_ratio"),
        ("aspect__ratio", "aspect_ratio"),
        ("Model  Year", "year"),
        ("manufacturer", "make"),
        ("marque", "make"),
        ("exterior_color", "color"),
        ("paint", "color"),
        ("yr", "year"),
        ("backdrop", "background"),
        ("scene", "background"),
        ("variant", "trim"),
        ("grade", "trim"),
        ("body_type", "body_style"),
        ("bodystyle", "body_style"),
        ("ratio", "aspect_ratio"),
    ],
)
def test_header_names_are_folded_before_matching(header: str, column: str) -> None:
    report = read_intake(csv_bytes(f"make_name_unused,model,{header}", "x,Civic,y"))
    assert report.headers[2].mapped_to == column


def test_unknown_columns_are_reported_and_not_used_for_the_car() -> None:
    report = read_intake(csv_bytes("make,Lot Location,model,Sunroof", "Volvo,B4,XC60,yes"))
    assert report.unknown_headers == ["Lot Location", "Sunroof"]
    assert report.headers[1].mapped_to is None
    assert report.ok
    assert report.rows[0].values["make"] == "Volvo"
    assert report.rows[0].values["model"] == "XC60"
    assert "B4" not in report.rows[0].values.values()


def test_empty_header_cell_with_data_is_an_unknown_column() -> None:
    report = read_intake(csv_bytes("make,model,,,", "Seat,Leon,,note,"))
    assert report.unknown_headers == ["(column 4)"]
    assert [h.name for h in report.headers] == ["make", "model", "(column 4)"]


def test_empty_header_cells_without_data_are_ignored_silently() -> None:
    report = read_intake(csv_bytes("make,,model,,", "Seat,,Leon,,"))
    assert report.unknown_headers == []
    assert [h.name for h in report.headers] == ["make", "model"]


def test_the_same_column_twice_is_an_error() -> None:
    error = refused(csv_bytes("make,Colour,model,colour ", "Opel,red,Corsa,blue"))
    assert "Colour" in error.message and "colour" in error.message
    assert "color" in error.message
    assert error.details[0]["column"] == "color"


def test_the_more_specific_of_two_columns_wins_and_the_report_says_so() -> None:
    header = "Make,Model,Color,Exterior Color,Body,Body Style"
    report = read_intake(csv_bytes(header, "Opel,Corsa,red,Flame Red,car,hatchback"))
    assert report.ok
    assert report.rows[0].values["color"] == "Flame Red"
    assert report.rows[0].values["body_style"] == "hatchback"
    assert report.rows[0].extra == {"Color": "red", "Body": "car"}
    status = {h.name: h.status for h in report.headers}
    assert status["Color"] == status["Body"] == "unused"
    assert (status["Exterior Color"], status["Body Style"]) == ("mapped", "known")
    said = [notice.message for notice in report.notices]
    assert (
        "The colour comes from “Exterior Color”, the more specific column; “Color” is kept "
        "as extra." in said
    )
    assert any("“Body Style”" in message for message in said)


def test_file_without_make_or_model_column_is_rejected() -> None:
    error = refused(csv_bytes("color,year", "red,2020"))
    assert "make or model column" in error.message


def test_file_without_a_header_row_is_rejected() -> None:
    error = refused(csv_bytes("Toyota,Corolla,2024", "Honda,Civic,2020"))
    assert "header" in error.message
    assert '"Toyota"' in error.message


# --- delimiters ----------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
def test_delimiter_is_sniffed(delimiter: str) -> None:
    lines = [delimiter.join(FIELDS), delimiter.join(["Skoda", "Octavia", "", "", "2021"])]
    report = read_intake(csv_bytes(*lines))
    assert report.delimiter == delimiter
    assert report.rows[0].values["model"] == "Octavia"
    assert report.rows[0].values["year"] == "2021"


def test_semicolon_delimiter_is_sniffed() -> None:
    # Excel in much of Europe writes semicolons, and commas appear inside values.
    report = read_intake(csv_bytes("make;model;color", "Renault;Clio;grey, metallic"))
    assert report.delimiter == ";"
    assert report.rows[0].values["color"] == "grey, metallic"


def test_quoted_header_names_do_not_confuse_sniffing() -> None:
    report = read_intake(csv_bytes('"make";"model";"colour, outside"', "Peugeot;208;blue"))
    assert report.delimiter == ";"
    assert report.rows[0].values["model"] == "208"


def test_single_column_file_reads_with_comma() -> None:
    report = read_intake(csv_bytes("model", "Mustang", "Bronco"))
    assert report.delimiter == ","
    assert [row.values["model"] for row in report.rows] == ["Mustang", "Bronco"]


# --- encodings -----------------------------------------------------------------------------


def test_excel_utf8_bom_is_read() -> None:
    report = read_intake(b"\xef\xbb\xbf" + csv_bytes("make,model", "Citroën,C3", newline="\r\n"))
    assert report.encoding == "utf-8-sig"
    assert report.headers[0].name == "make"
    assert report.rows[0].values["make"] == "Citroën"


def test_utf16_unicode_text_from_excel_is_read() -> None:
    data = csv_bytes("make\tmodel", "Škoda\tSuperb", encoding="utf-16", newline="\r\n")
    report = read_intake(data)
    assert report.encoding == "utf-16"
    assert report.delimiter == "\t"
    assert report.rows[0].values["make"] == "Škoda"


def test_cp1252_file_is_detected_and_reported() -> None:
    report = read_intake(
        csv_bytes("make,model,color", "Citroën,C4,crème – 2 tone", encoding="cp1252")
    )
    assert report.encoding == "cp1252"
    assert report.rows[0].values["make"] == "Citroën"
    assert report.rows[0].values["color"] == "crème – 2 tone"


def test_bytes_cp1252_cannot_read_fall_back_to_latin1() -> None:
    # 0x81 is unassigned in cp1252 but a (removed) control character in latin-1.
    report = read_intake(b"make,model\nAlfa\x81,Giulia \xe9\n")
    assert report.encoding == "latin-1"
    assert report.rows[0].values["make"] == "Alfa"
    assert report.rows[0].values["model"] == "Giulia é"


def test_broken_utf8_after_a_bom_is_rejected() -> None:
    error = refused(b"\xef\xbb\xbfmake\n\xff\xfe\xfa\n")
    assert "UTF-8" in error.message


def test_utf16_without_bom_gets_advice() -> None:
    error = refused("make,model\nKia,Rio\n".encode("utf-16-le"))
    assert "UTF-16" in error.message


# --- files that are not CSV ----------------------------------------------------------------


def test_empty_file_is_rejected() -> None:
    assert "empty" in refused(b"").message


def test_only_blank_lines_are_rejected() -> None:
    assert "blank" in refused(b"\n\r\n   \n\t\n").message
    assert "blank" in refused(b",,,\n,,\n\n").message


def test_header_only_is_rejected() -> None:
    error = refused(csv_bytes(HEADER, "", ",,,"))
    assert "no cars" in error.message


def test_a_broken_xlsx_upload_gets_a_sentence() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr("xl/workbook.xml", "<workbook/>")
        book.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")
    error = refused(buffer.getvalue())
    assert error.message == (
        "This Excel workbook cannot be read (it may be damaged or password-protected); "
        "open it in Excel and save it again as .xlsx or CSV UTF-8."
    )


def test_old_xls_upload_gets_save_as_csv_advice() -> None:
    error = refused(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))
    assert "Excel workbook" in error.message


@pytest.mark.parametrize(
    ("data", "word"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image"),
        (b"GIF89a\x01\x00", "image"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image"),
        (b"\x1f\x8b\x08\x00\x00\x00", "gzip"),
        (b"PK\x03\x04\x14\x00\x00\x00photos/car.jpg", "ZIP"),
    ],
)
def test_other_file_types_are_named(data: bytes, word: str) -> None:
    assert word in refused(data).message


def test_binary_data_is_not_text() -> None:
    assert "not CSV text" in refused(bytes(range(256)) * 4).message
    assert "not CSV text" in refused(b"make,model\nA,\x00B\n").message


def test_control_character_soup_is_not_text() -> None:
    assert "not CSV text" in refused(bytes([1, 2, 3, 4, 5, 6, 7, 8, 14, 15]) * 20).message


# --- malformed CSV -------------------------------------------------------------------------


def test_unbalanced_quote_is_a_clear_error() -> None:
    error = refused(csv_bytes("make,model", "Jeep,Wrangler", 'Jeep,"Cherokee', "Ram,1500"))
    assert "row 3" in error.message
    assert "quote" in error.message
    assert error.details[0]["row"] == 3


def test_text_after_a_closing_quote_is_a_clear_error() -> None:
    error = refused(csv_bytes("make,model", '"Land" Rover,Defender'))
    assert "Row 2" in error.message
    assert "closing quote" in error.message


def test_oversize_cell_is_reported_without_changing_the_global_limit() -> None:
    limit = csv.field_size_limit()
    error = refused(b'make,model\nA,"' + b"x" * (limit + 10) + b'"\n')
    assert "Row 2" in error.message
    assert csv.field_size_limit() == limit


def test_extra_cells_are_a_row_error_not_a_file_error() -> None:
    report = read_intake(csv_bytes("make,model,color", "Nissan,Leaf,blue, pearl", "Nissan,Ariya,"))
    bad, good = report.rows
    assert bad.row == 2
    assert bad.spec is None
    assert bad.errors[0].column is None
    assert "more cells" in bad.errors[0].message
    assert "comma" in bad.errors[0].message
    assert good.errors == []


def test_empty_extra_cells_are_ignored() -> None:
    report = read_intake(csv_bytes("make,model", "Nissan,Leaf,,,"))
    assert report.ok


# --- row numbers and counting ------------------------------------------------------------


def test_blank_lines_do_not_count_but_keep_row_numbers() -> None:
    data = csv_bytes("make,model", "", "Subaru,Outback", ",,", "", "Subaru,Forester", "")
    report = read_intake(data)
    assert [row.row for row in report.rows] == [3, 6]


def test_quoted_newlines_stay_in_one_spreadsheet_row() -> None:
    data = csv_bytes("make,model,trim", 'Lexus,RX,"F Sport\nLuxury"', "Lexus,NX,")
    report = read_intake(data)
    assert [row.row for row in report.rows] == [2, 3]
    assert report.rows[0].values["trim"] == "F Sport Luxury"


def test_blank_lines_before_the_header_keep_spreadsheet_numbers() -> None:
    report = read_intake(csv_bytes("", "make,model", "Mini,Cooper"))
    assert report.rows[0].row == 3


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_any_line_ending_is_read(newline: str) -> None:
    report = read_intake(csv_bytes("make,model", "Smart,ForTwo", "Smart,#1", newline=newline))
    assert [row.row for row in report.rows] == [2, 3]


def test_55_rows_are_rejected_before_submission() -> None:
    data = csv_bytes("make,model", *[f"Car{i},Model{i}" for i in range(55)])
    error = refused(data)
    assert error.message == (
        "This file has 55 car rows; a batch takes at most 50. Split it into smaller files."
    )


def test_50_rows_with_blank_lines_between_are_accepted() -> None:
    lines = []
    for i in range(MAX_ROWS):
        lines += [f"Car{i},Model{i}", ""]
    report = read_intake(csv_bytes("make,model", *lines))
    assert report.row_count == MAX_ROWS
    assert report.rows[-1].row == 2 * MAX_ROWS


def test_max_rows_can_be_lowered() -> None:
    data = csv_bytes("make", "a", "b", "c")
    assert "at most 2" in refused(data, max_rows=2).message
    assert read_intake(data, max_rows=3).row_count == 3


def test_file_over_5_mb_is_too_large() -> None:
    with pytest.raises(TooLarge) as caught:
        read_intake(b"x" * int(6.2 * 1024 * 1024))
    assert caught.value.message == "This file is 6.2 MB; the limit is 5 MB."


def test_file_just_over_the_limit_never_looks_equal_to_it() -> None:
    with pytest.raises(TooLarge) as caught:
        read_intake(b"x" * (MAX_BYTES + 1))
    assert caught.value.message == "This file is 5.1 MB; the limit is 5 MB."


# --- row errors ----------------------------------------------------------------------------


def test_row_without_make_or_model_is_an_error_with_row_number() -> None:
    report = read_intake(csv_bytes("make,model,color", "Dacia,Duster,", "", ",,red"))
    assert not report.ok
    [error] = report.row_errors
    assert error.row == 4
    assert error.column in (None, "make")
    assert "make or a model" in error.message
    assert report.invalid_rows[0].values["color"] == "red"


def test_bad_values_are_row_errors_named_by_column() -> None:
    report = read_intake(
        csv_bytes("make,year,background,aspect_ratio", "Genesis,twenty,garage,2:1")
    )
    errors = {error.column: error.message for error in report.row_errors}
    assert set(errors) == {"year", "background", "aspect_ratio"}
    assert errors["year"].startswith("Year must be four digits")
    assert "white, hub" in errors["background"]
    assert "16:9" in errors["aspect_ratio"]
    assert not any(message.startswith("Value error") for message in errors.values())
    assert all(error.row == 2 for error in report.row_errors)


def test_year_out_of_range_is_a_row_error() -> None:
    report = read_intake(csv_bytes("make,year", "Benz,1850"))
    assert report.row_errors[0].column == "year"
    assert "1850" in report.row_errors[0].message


def test_invalid_rows_keep_raw_text_where_wrong_and_normalize_the_rest() -> None:
    report = read_intake(csv_bytes("make,year,background,aspect_ratio", "Polestar,2024.0,HUB,5:4"))
    row = report.rows[0]
    assert row.spec is None
    assert row.values["aspect_ratio"] == "5:4"
    assert row.values["year"] == "2024"
    assert row.values["background"] == "hub"


def test_overlong_value_is_an_error_not_truncated() -> None:
    long_model = "M" * (MAX_TEXT + 5)
    report = read_intake(csv_bytes("make,model", f"Cupra,{long_model}"))
    [error] = report.row_errors
    assert error.column == "model"
    assert str(MAX_TEXT) in error.message
    assert report.rows[0].values["model"] == long_model


def test_huge_invalid_cells_are_not_echoed_in_full() -> None:
    report = read_intake(csv_bytes("make,color", "Fisker," + "z" * 100_000))
    assert report.row_errors[0].column == "color"
    assert len(report.rows[0].values["color"]) < 1000


def test_rows_are_judged_independently() -> None:
    report = read_intake(csv_bytes("make,year", "Lotus,2022", "Lotus,abc", "Lotus,2023"))
    assert [row.row for row in report.valid_rows] == [2, 4]
    assert [row.row for row in report.invalid_rows] == [3]
    assert not report.ok


# --- the report as JSON --------------------------------------------------------------------


def as_json(report: IntakeReport) -> dict:
    return IntakeReportOut.of(report).model_dump(mode="json", by_alias=True)


def test_the_report_in_json_matches_the_api_contract() -> None:
    lines = [f"Car{i},Model{i},{'2020' if i != 3 else 'soon'}" for i in range(12)]
    report = read_intake(csv_bytes("make,Model,Model Year,extra", *lines))
    body = as_json(report)
    json.dumps(body)
    assert {
        "ok",
        "rowCount",
        "headers",
        "unknownHeaders",
        "preview",
        "rowErrors",
        "encoding",
        "delimiter",
        "maxRows",
    } <= set(body)
    assert body["ok"] is False
    assert body["rowCount"] == 12
    assert body["maxRows"] == MAX_ROWS
    assert body["headers"][2] == {"name": "Model Year", "mappedTo": "year", "status": "mapped"}
    assert body["headers"][3] == {"name": "extra", "mappedTo": None, "status": "ignored"}
    assert body["unknownHeaders"] == ["extra"]
    assert len(body["preview"]) == PREVIEW_ROWS
    first, bad = body["preview"][0], body["preview"][3]
    assert first == {
        "row": 2,
        "values": {**dict.fromkeys(FIELDS, ""), "make": "Car0", "model": "Model0"}
        | {"year": "2020", "background": "white", "aspect_ratio": "1:1"},
        "errors": [],
        "valid": True,
        "fileName": None,
        "warnings": [],
    }
    assert bad["valid"] is False
    assert bad["errors"][0]["column"] == "year"
    assert body["rowErrors"] == [
        {"row": 5, "column": "year", "message": bad["errors"][0]["message"]}
    ]
    assert body["encoding"] == "utf-8"
    assert body["delimiter"] == ","


# --- awkward files at the size limit (`python -m bench intake` times them) -----------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            (HEADER + "\n" + "Toyota,Corolla,sedan,XSE,2024,white,hub,1:1\n" * 120_000).encode()[
                :MAX_BYTES
            ],
            id="many-rows",
        ),
        pytest.param(b"make\n" + b"\n" * (MAX_BYTES - 10) + b"a\n", id="blank-lines"),
        pytest.param(b"make\n" + "\u200b\n".encode() * 1_300_000 + b"a\n", id="invisible-lines"),
        pytest.param(b"make,model" + b"," * (MAX_BYTES - 20) + b"\na,b\n", id="wide-header"),
        pytest.param(b"make,model\na,b" + b",x" * (MAX_BYTES // 2 - 20) + b"\n", id="wide-row"),
        pytest.param(
            b"make,model,color\n" + (b"A,B," + b"x" * 100_000 + b"\n") * MAX_ROWS,
            id="huge-cells",
        ),
    ],
)
def test_awkward_5_mb_files_give_a_report_or_invalid_input(data: bytes) -> None:
    assert len(data) <= MAX_BYTES
    read_or_refuse(data)


# --- whatever the bytes: a report or InvalidInput, nothing else -------------------------


def check_report(report: IntakeReport, max_rows: int = MAX_ROWS) -> None:
    assert 1 <= report.row_count <= max_rows
    numbers = [row.row for row in report.rows]
    assert numbers == sorted(set(numbers))
    assert numbers[0] >= 2
    for row in report.rows:
        assert list(row.values) == list(FIELDS)
        assert (row.spec is not None) == (not row.errors)
        if row.spec is not None:
            assert row.values == row.spec.as_row()
        assert all(error.row == row.row for error in row.errors)
    json.dumps(as_json(report))


def read_or_refuse(data: bytes, max_rows: int = MAX_ROWS) -> None:
    try:
        report = read_intake(data, max_rows=max_rows)
    except InvalidInput as error:
        assert error.message and "\n" not in error.message
        json.dumps(error.details)
    else:
        check_report(report, max_rows)


# Examples per property come from the Hypothesis profile (tests/conftest.py).
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=2000))
def test_any_bytes_give_a_report_or_invalid_input(data: bytes) -> None:
    read_or_refuse(data)


@FUZZ
@given(
    st.text(max_size=1500),
    st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32", "cp1252", "latin-1"]),
)
def test_any_text_in_any_encoding_gives_a_report_or_invalid_input(text: str, encoding: str) -> None:
    read_or_refuse(text.encode(encoding, errors="ignore"))


# Control characters are left to the byte-level tests: here they would mostly make the whole
# file read as binary and hide the CSV paths.
CELL_TEXT = st.text(
    alphabet=st.sampled_from(list('ab Z,;|\t"\n\r\u200b\ufeffé€2024.0:19HUBwhitemake')),
    max_size=12,
)
HEADER_CELL = st.one_of(
    st.sampled_from(
        [*FIELDS, "Make", "Model Year", "colour", "BG", "Aspect Ratio", "brand", "", "notes"]
    ),
    CELL_TEXT,
)
HEADER_ROW = st.one_of(
    st.lists(HEADER_CELL, min_size=1, max_size=9),
    st.tuples(st.sampled_from(["make", "Model", "brand"]), st.lists(HEADER_CELL, max_size=8)).map(
        lambda first_and_rest: [first_and_rest[0], *first_and_rest[1]]
    ),
)


@FUZZ
@given(
    header=HEADER_ROW,
    rows=st.lists(st.lists(CELL_TEXT, max_size=10), max_size=8),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    quote_all=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    bom=st.booleans(),
    max_rows=st.integers(min_value=1, max_value=6),
)
def test_csv_like_tables_give_a_report_or_invalid_input(
    header: list[str],
    rows: list[list[str]],
    delimiter: str,
    quote_all: bool,
    newline: str,
    bom: bool,
    max_rows: int,
) -> None:
    def line(cells: list[str]) -> str:
        if quote_all:
            return delimiter.join('"' + cell.replace('"', '""') + '"' for cell in cells)
        return delimiter.join(cells)

    text = newline.join(line(cells) for cells in [header, *rows])
    read_or_refuse((("\ufeff" if bom else "") + text).encode("utf-8"), max_rows)


@FUZZ
@given(
    rows=st.lists(
        st.fixed_dictionaries({name: CELL_TEXT for name in FIELDS}), min_size=1, max_size=6
    ),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
)
def test_well_formed_csv_always_reads_and_keeps_every_row(
    rows: list[dict[str, str]], delimiter: str
) -> None:
    rows = [{**row, "make": "Make" + row["make"]} for row in rows]  # never a blank line
    out = io.StringIO()
    writer = csv.DictWriter(out, FIELDS, delimiter=delimiter, quoting=csv.QUOTE_ALL)
    writer.writeheader()
    writer.writerows(rows)
    report = read_intake(out.getvalue().encode())
    check_report(report)
    assert report.row_count == len(rows)
    assert report.delimiter == delimiter
    for row, written in zip(report.rows, rows, strict=True):
        assert row.values["make"] == clean_text(written["make"])
