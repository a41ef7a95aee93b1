"""Excel workbooks (.xlsx) in: the first sheet with a header row, cells as a person sees them,
the CSV limits, and a ZIP bomb refused with a sentence."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from carstudio.cli import app
from carstudio.errors import InvalidInput
from carstudio.intake import IntakeReport, read_intake
from carstudio.spreadsheets import MAX_UNPACKED, cell_text
from tests.fixtures.inventory.workbooks import (
    dms_workbook,
    french_export,
    german_export,
    workbook,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def refused(data: bytes) -> str:
    with pytest.raises(InvalidInput) as caught:
        read_intake(data)
    return caught.value.message


def mapped(report: IntakeReport) -> dict[str, str]:
    return {h.name: h.mapped_to for h in report.headers if h.mapped_to and h.used}


def test_a_german_export_is_read_from_its_cars_sheet() -> None:
    report = read_intake(german_export())
    assert report.ok and len(report.valid_rows) == 3
    # The notes sheet before it has no header row.
    assert report.sheet == "Fahrzeuge"
    assert (report.encoding_label, report.delimiter_label) == (
        "Excel workbook",
        "sheet “Fahrzeuge”",
    )
    assert mapped(report) == {
        "Interne Nummer": "stock_number",
        "FIN": "vin",
        "Marke": "make",
        "Modell": "model",
        "Ausstattungslinie": "trim",
        "Karosserieform": "body_style",
        "Baujahr": "year",
        "Außenfarbe": "color",
    }
    first = report.rows[0]
    assert first.row == 2
    # 2020.0 and 4711.0 are numbers in the sheet; a person sees 2020 and 4711.
    assert (first.values["year"], first.values["stock_number"]) == ("2020", "4711")
    assert first.values["color"] == "Mondsteingrau"
    # A formula is read as the value Excel cached; a date as the date.
    assert first.extra["Preis (EUR)"] == "21990"
    assert first.extra["Erstzulassung"] == "2020-05-14"
    assert [n.message for n in report.notices] == [
        "“Farbe Innen” looks like a colour column but was not used; the colour comes from "
        "“Außenfarbe”."
    ]
    assert report.row_warnings == []


def test_a_french_export_with_a_title_above_its_header() -> None:
    report = read_intake(french_export())
    assert report.ok and len(report.valid_rows) == 4
    assert report.sheet == "Stock"
    assert set(mapped(report).values()) == {
        "stock_number",
        "vin",
        "make",
        "model",
        "trim",
        "body_style",
        "year",
        "color",
    }
    # The header is spreadsheet row 3, so the first car is row 4.
    assert [row.row for row in report.rows] == [4, 5, 6, 7]
    assert report.rows[2].values["make"] == "Citroën"
    assert report.rows[2].values["color"] == "Blanc Nacré"
    assert report.source_header[0] == "Référence"
    assert report.notices == [] and report.row_warnings == []


def test_a_dms_export_saved_as_xlsx_reads_like_its_csv() -> None:
    from tests.test_inventory import fixture

    book, text = read_intake(dms_workbook()), read_intake(fixture("dms_export.csv"))
    assert [row.values for row in book.rows] == [row.values for row in text.rows]
    assert [row.extra for row in book.rows] == [row.extra for row in text.rows]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2024.0, "2024"),
        (19990.5, "19990.5"),
        (0.1 + 0.2, "0.3"),
        (True, "TRUE"),
        (None, ""),
        (dt.datetime(2024, 3, 1, 9, 30), "2024-03-01 09:30"),
        (dt.datetime(2024, 3, 1), "2024-03-01"),
        (dt.time(9, 30, 15), "09:30:15"),
    ],
)
def test_cells_read_as_a_person_sees_them(value: object, text: str) -> None:
    assert cell_text(value) == text


def test_51_cars_on_a_sheet_are_refused_naming_the_sheet() -> None:
    rows = [("Make", "Model"), *[("Kia", f"Rio {n}") for n in range(51)]]
    assert refused(workbook({"Cars": rows})) == (
        "The sheet “Cars” has 51 car rows; a batch takes at most 50. Split it into smaller files."
    )


def test_a_workbook_without_a_header_row_names_its_sheets() -> None:
    message = refused(workbook({"Summary": [("Total", 3)], "Prices": [("A", 1), ("B", 2)]}))
    assert message.startswith("No sheet of this workbook (“Summary”, “Prices”) has a header row")


def test_a_zip_bomb_is_refused_with_a_sentence() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr("xl/workbook.xml", "<workbook/>")
        book.writestr("xl/worksheets/sheet1.xml", b"<" + b" " * (MAX_UNPACKED + 1) + b">")
    data = buffer.getvalue()
    assert len(data) < 100_000
    message = refused(data)
    assert message.startswith("This workbook unpacks to") and "ZIP" not in message


def test_a_zip_that_lies_about_its_size_is_refused_all_the_same() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("xl/workbook.xml", "<workbook/>")
        book.writestr("xl/worksheets/sheet1.xml", b" " * (MAX_UNPACKED + 1))
    data = bytearray(buffer.getvalue())
    # Declare the big part tiny, in its local header and in the central directory.
    big = (MAX_UNPACKED + 1).to_bytes(4, "little")
    data = data.replace(big, (10).to_bytes(4, "little"))
    message = refused(bytes(data))
    assert "unpacks to" in message or "damaged" in message


def test_a_sheet_spanning_the_whole_grid_is_refused_quickly() -> None:
    rows: list[tuple[object, ...]] = [("Make", "Model"), ("Kia", "Rio")]
    rows += [()] * 200_000
    rows.append(("x",))
    assert "far larger than 50 cars need" in refused(workbook({"Cars": rows}))


def test_a_damaged_workbook_gets_a_sentence() -> None:
    data = german_export()
    message = refused(data[:2000] + b"\0" * 100 + data[2100:])
    assert message.startswith("This Excel workbook") and "save it again" in message
    assert refused(b"PK\x03\x04xl/" + bytes(200)).startswith("This Excel workbook is damaged")


def test_an_old_xls_workbook_is_told_to_become_xlsx() -> None:
    assert "Excel Workbook (.xlsx)" in refused(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))


def test_a_dry_run_names_the_sheet_and_says_what_to_check(tmp_path: Path) -> None:
    source = tmp_path / "bestand.xlsx"
    source.write_bytes(german_export())
    result = CliRunner().invoke(app, ["batch", str(source), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Read from the sheet “Fahrzeuge”." in result.output
    assert "Check: “Farbe Innen” looks like a colour column but was not used" in result.output


_BOOK = german_export()


@settings(deadline=None, max_examples=12, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_BOOK) - 1), st.integers(0, 255)), max_size=8))
def test_a_damaged_workbook_gives_a_report_or_a_sentence(flips: list[tuple[int, int]]) -> None:
    data = bytearray(_BOOK)
    for at, value in flips:
        data[at] = value
    try:
        report = read_intake(bytes(data))
    except InvalidInput as error:
        assert error.message and "\n" not in error.message
    else:
        assert report.sheet is not None
