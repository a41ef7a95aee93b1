"""Real inventory exports in, traceable images out.

The fixtures in tests/fixtures/inventory follow the formats' public specifications: a dealer
management system's CSV export (Stock #, VIN, Year, Make, Model, Trim, Body, Ext Color, ...), a
Google Merchant Center vehicle ads feed (tab-separated: id, store_code, vin, brand, model, year,
color, ...) and a Meta automotive catalog (vehicle_id, make, model, year, body_style, vin,
exterior_color, state_of_vehicle, ...; its own sample row included).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from carstudio.errors import InvalidInput
from carstudio.intake import IntakeReport, read_intake
from tests.batch_helpers import read_zip
from tests.fixtures.inventory.workbooks import german_export
from tests.waiting import wait_until

FIXTURES = Path(__file__).parent / "fixtures" / "inventory"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def mapped(report: IntakeReport) -> dict[str, str]:
    """Header as written -> the field it supplies."""
    return {h.name: h.mapped_to for h in report.headers if h.mapped_to and h.used}


def notices(report: IntakeReport) -> list[str]:
    return [notice.message for notice in report.notices]


# --- each family of export -------------------------------------------------------------------


def test_a_dms_export_keeps_colour_body_vin_and_stock_number() -> None:
    report = read_intake(fixture("dms_export.csv"))
    assert report.ok and len(report.valid_rows) == 6
    assert mapped(report) == {
        "Stock #": "stock_number",
        "VIN": "vin",
        "Year": "year",
        "Make": "make",
        "Model": "model",
        "Trim": "trim",
        "Body": "body_style",
        "Ext Color": "color",
    }
    first = report.rows[0]
    assert first.values["color"] == "Snow White Pearl"
    assert first.values["body_style"] == "SUV"
    assert (first.values["stock_number"], first.values["vin"]) == ("K1507", "5XYKT3A18FG612345")
    assert first.extra == {
        "Int Color": "Black",
        "Miles": "84211",
        "Price": "12995",
        "Certified": "N",
        "Days In Stock": "41",
    }
    assert notices(report) == [
        "“Int Color” looks like a colour column but was not used; the colour comes from "
        "“Ext Color”."
    ]
    # One VIN in the file has a wrong check digit: said, and the row still runs.
    [doubt] = report.row_warnings
    assert (doubt.row, doubt.column) == (6, "vin") and "check digit" in doubt.message


def test_a_dms_report_with_its_title_and_print_date_above_the_header() -> None:
    """A dealer system's report saved as CSV from Excel: the report's name and the time it
    was printed come first, each padded with the delimiter across the columns."""
    lines = fixture("dms_export.csv").decode().splitlines()
    width = lines[0].count(",")
    titled = [
        "Inventory Report - Smith Motors, Inc." + "," * width,
        "Printed 12/07/2026 9:14 AM, all locations" + "," * width,
        "," * width,
        *lines,
    ]
    report = read_intake("\r\n".join(titled).encode())
    assert report.ok and len(report.valid_rows) == 6
    assert mapped(report)["Stock #"] == "stock_number"
    assert report.delimiter == ","
    assert [row.row for row in report.rows] == [5, 6, 7, 8, 9, 10], "spreadsheet row numbers"
    assert report.rows[0].values["stock_number"] == "K1507"


def test_a_semicolon_report_whose_title_has_no_semicolon() -> None:
    """The title line alone would look comma-separated; the header line decides."""
    lines = fixture("dms_export.csv").decode().splitlines()
    data = "Bestandsliste, Autohaus Beispiel\n\n" + "\n".join(
        line.replace(",", ";") for line in lines
    )
    report = read_intake(data.encode())
    assert report.delimiter == ";"
    assert report.ok and len(report.valid_rows) == 6
    assert report.rows[0].row == 4


def test_a_file_without_a_recognisable_header_is_read_from_its_first_row() -> None:
    """No row names a make or model: the first row is the header, and its columns are
    judged (and refused in words) as written."""
    data = b"Marque du vehicule,Couleur\nPeugeot,bleu\nRenault,rouge\n"
    with pytest.raises(InvalidInput) as refused:
        read_intake(data)
    assert "Marque du vehicule" in str(refused.value.message)


def test_a_google_vehicle_ads_feed_reads_id_as_the_stock_number() -> None:
    report = read_intake(fixture("google_vehicle_ads.tsv"))
    assert report.ok and len(report.valid_rows) == 4
    assert report.delimiter == "\t"
    assert mapped(report) == {
        "id": "stock_number",
        "vin": "vin",
        "brand": "make",
        "model": "model",
        "year": "year",
        "trim": "trim",
        "color": "color",
    }
    assert report.rows[0].values["stock_number"] == "U5512"
    assert report.rows[0].extra["store_code"] == "MV-FORD-01"
    assert notices(report) == [] and report.row_warnings == []


def test_a_meta_automotive_catalog_reads_vehicle_id_body_style_and_exterior_color() -> None:
    report = read_intake(fixture("meta_automotive_catalog.csv"))
    assert report.ok and len(report.valid_rows) == 3
    assert mapped(report) == {
        "vehicle_id": "stock_number",
        "make": "make",
        "model": "model",
        "year": "year",
        "body_style": "body_style",
        "vin": "vin",
        "exterior_color": "color",
    }
    first = report.rows[0]
    assert (first.values["vin"], first.values["body_style"]) == ("1FADP5AU6DL536022", "HATCHBACK")
    assert first.extra["state_of_vehicle"] == "USED"
    assert first.extra["address"].startswith('{"addr1": "550 Auto Center Dr"')
    assert notices(report) == [] and report.row_warnings == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Marke;Modell;Baujahr;Farbe;Karosserie;Ausstattung;FIN;Interne Nummer", "de"),
        ("Marque;Modèle;Année;Couleur;Carrosserie;Finition;VIN;Référence", "fr"),
        ("Marca;Modelo;Año;Color;Carrocería;Acabado;Número de bastidor;Referencia", "es"),
        ("Marca;Modello;Anno;Colore;Carrozzeria;Allestimento;Telaio;Riferimento", "it"),
        ("Merk;Model;Bouwjaar;Kleur;Carrosserie;Uitvoering;Chassisnummer;Voorraadnummer", "nl"),
        ("Marka;Model;Rok produkcji;Kolor;Nadwozie;Wersja;Numer VIN;Numer magazynowy", "pl"),
    ],
)
def test_european_exports_map_every_column(header: str, expected: str) -> None:
    row = "Peugeot;308;2022;Gris Artense;Break;Allure;VF3LBHNS7NS123456;P-0042"
    report = read_intake(f"{header}\n{row}\n".encode())
    assert report.ok, expected
    assert [h.mapped_to for h in report.headers] == [
        "make",
        "model",
        "year",
        "color",
        "body_style",
        "trim",
        "vin",
        "stock_number",
    ]
    assert report.rows[0].values["color"] == "Gris Artense"
    assert notices(report) == []


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("ExteriorColor", "color"),
        ("Ext. Color", "color"),
        ("exterior", "color"),
        ("paint_color", "color"),
        ("OEM Color Name", "color"),
        ("Vehicle Style", "body_style"),
        ("Vehicle Type", "body_style"),
        ("type", "body_style"),
        ("class", "body_style"),
        ("VClass", "body_style"),
        ("BodyStyle", "body_style"),
        ("ModelYear", "year"),
        ("Series", "trim"),
        ("Version", "trim"),
        ("Stock No.", "stock_number"),
        ("StockNumber", "stock_number"),
        ("vehicle_id", "stock_number"),
        ("manufacturer", "make"),
    ],
)
def test_headers_as_real_exports_spell_them(header: str, field: str) -> None:
    report = read_intake(f"brand,{header}\nKia,x\n".encode())
    assert report.headers[1].mapped_to == field


def test_a_header_that_looks_like_a_field_is_pointed_out() -> None:
    report = read_intake(b"Marke,Modell,Farbe,Farbe Innen\nVW,Golf,Blau,Schwarz\n")
    assert notices(report) == [
        "“Farbe Innen” looks like a colour column but was not used; the colour comes from “Farbe”."
    ]
    assert report.rows[0].extra == {"Farbe Innen": "Schwarz"}


def test_a_file_of_which_only_one_field_was_understood_must_be_confirmed() -> None:
    # Czech headers: only "Model" is a word Car Studio knows.
    data = "Značka,Model,Rok výroby,Barva,Karoserie\nŠkoda,Octavia,2021,Bílá,Kombi\n".encode()
    report = read_intake(data)
    assert report.valid_rows and report.needs_confirmation
    [warning] = [notice for notice in report.notices if notice.confirm]
    assert warning.kind == "few_fields"
    assert warning.message.startswith("Only the model was understood (from “Model”);")
    assert "“Značka”, “Rok výroby”, “Barva”, “Karoserie” were not used" in warning.message
    assert "“Rok výroby” looks like a year column but was not used" in notices(report)[0]


def test_a_well_understood_file_needs_no_confirmation() -> None:
    assert not read_intake(fixture("dms_export.csv")).needs_confirmation


# --- a batch from a DMS export -----------------------------------------------------------------


def run(client: TestClient, data: bytes, name: str, **form: str) -> dict:
    kind = XLSX if name.endswith(".xlsx") else "text/csv"
    answer = client.post("/api/car-batch", files={"file": (name, data, kind)}, data=form)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["jobId"]
    return wait_until(lambda: (b := client.get(f"/api/batch/{job_id}").json())["zipUrl"] and b)


def test_dms_and_excel_batches_name_images_by_stock_number_and_keep_every_column(
    client_for: Callable[..., TestClient],
) -> None:
    # One app for every step: starting one is the costly part of this test.
    client = client_for()
    files = {"file": ("dms.csv", fixture("dms_export.csv"), "text/csv")}
    bad = client.post("/api/car-batch", files=files, data={"nameTemplate": "../{vin}"})
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("The file-name template may hold only letters")
    check = client.post(
        "/api/car-batch/validate", files=files, data={"nameTemplate": "{stock_number}-{model}"}
    )
    assert [row["fileName"] for row in check.json()["preview"][:2]] == [
        "K1507-sorento",
        "K1512-sorento",
    ]

    # One car the file cannot describe (no make or model), to fail and come back in the CSV.
    data = fixture("dms_export.csv") + b"X0001,,2018,,,,,,,,,N,3\n"
    status = run(client, data, "dms_export.csv", skipInvalid="true")
    assert (status["done"], status["failed"]) == (6, 1)
    tiles = {row["row"]: row for row in status["rows"]}
    assert tiles[2]["identity"] == {"vin": "5XYKT3A18FG612345", "stock_number": "K1507"}

    archive = client.get(status["zipUrl"]).content
    images, manifest, failed = read_zip(archive)
    # The two white 2015 Kia Sorento LX are told apart by their stock numbers.
    assert sorted(images) == [
        "C2290_1G1ZD5ST1LF012345_chevrolet-malibu-2020-sedan-lt-white.png",
        "F2210_1FTEW1EP0MFA12345_ford-f-150-2021-crew-cab-pickup-xlt-white.png",
        "H2077_2HKRW2H85KH612345_honda-cr-v-2019-suv-ex-l-white.png",
        "K1507_5XYKT3A18FG612345_kia-sorento-2015-suv-lx-white.png",
        "K1512_5XYKT3A16FG654321_kia-sorento-2015-suv-lx-white.png",
        "T2301_4T1B11HK8KU123456_toyota-camry-2019-sedan-se-white.png",
    ]
    first = manifest["rows"][0]
    assert first["values"]["vin"] == "5XYKT3A18FG612345"
    assert first["identity"] == {"vin": "5XYKT3A18FG612345", "stock_number": "K1507"}
    assert first["extra"]["Miles"] == "84211" and first["extra"]["Int Color"] == "Black"
    assert "5XYKT3A18FG612345" not in first["prompt"] and "K1507" not in first["prompt"]

    assert failed is not None and failed[0]["extra"]["Days In Stock"] == "3"
    served = client.get(f"/api/batch/{status['jobId']}/failed_rows.json").json()
    assert served[0]["extra"] == failed[0]["extra"]

    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        packed = zf.read("failed_rows.csv").decode("utf-8-sig")
    answer = client.get(status["failedRowsCsvUrl"])
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.content.decode("utf-8-sig") == packed
    table = list(csv.reader(io.StringIO(packed)))
    header = fixture("dms_export.csv").decode().splitlines()[0].split(",")
    assert table[0] == [*header, "reason"]
    assert table[1][:-1] == ["X0001", "", "2018", "", "", "", "", "", "", "", "", "N", "3"]
    assert "make or a model" in table[1][-1]

    # The German Excel export, through the same API.
    xlsx = {"file": ("fahrzeuge.xlsx", german_export(), XLSX)}
    check = client.post("/api/car-batch/validate", files=xlsx).json()
    assert check["ok"] and check["sheet"] == "Fahrzeuge"
    assert check["encodingLabel"] == "Excel workbook"
    status = run(client, german_export(), "fahrzeuge.xlsx")
    images, manifest, _ = read_zip(client.get(status["zipUrl"]).content)
    assert sorted(images)[0] == (
        "4711_WVWZZZAUZLW012345_volkswagen-golf-2020-limousine-life-white.png"
    )
    assert manifest["source"] == "fahrzeuge.xlsx"
    assert manifest["rows"][0]["extra"]["Erstzulassung"] == "2020-05-14"


def test_a_stock_number_twice_is_pointed_out_and_both_rows_run() -> None:
    data = b"Stock #,Make,Model\nK17,Kia,Rio\nK18,Kia,Rio\nk17,Kia,Ceed\n"
    report = read_intake(data)
    assert report.ok and len(report.valid_rows) == 3
    [repeated] = report.row_warnings
    assert (repeated.row, repeated.column) == (4, "stock_number")
    assert repeated.message == "Stock number k17 is also in row 2."
