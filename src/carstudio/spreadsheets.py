"""Excel workbooks (.xlsx): their sheets as rows of text, each cell as a person sees it.

openpyxl reads them in read-only mode, which streams a sheet row by row without building it
in memory, and with `data_only`, so a formula is read as the value Excel last computed.
(python-calamine, faster, was tried and refused: it builds the whole rectangle a sheet spans,
so a 5 KB file with one cell at A1 and one at XFD1048576 made it abort the process.) Before
openpyxl sees a byte, the ZIP is checked: what it unpacks to is capped, so a ZIP bomb is
refused with a sentence instead of filling the memory.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from carstudio.errors import InvalidInput

MAX_UNPACKED = 25 * 1024 * 1024
"""What a workbook may unpack to: a sheet of 50 cars and a few hundred columns needs a few
megabytes; more is a larger export, or a ZIP bomb."""
MAX_ENTRIES = 10_000
MAX_CELLS = 2_000_000
"""Cells read from one sheet, empty ones included, before it is refused as too large: a
sheet may declare one cell at A1 and the next at XFD1048576, and openpyxl fills the gap."""
MAX_SHEET_ROWS = 100_000
_CHUNK = 64 * 1024

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Sheet:
    """One worksheet, read lazily: `rows` yields (spreadsheet row number, cells as text)."""

    name: str
    rows: Iterator[tuple[int, list[str]]]


def write_workbook(sheet: str, rows: list[list[Any]]) -> bytes:
    """An .xlsx of one sheet holding `rows` (the first is the header, set in bold)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    page = book.create_sheet(sheet)
    bold = Font(bold=True)
    for number, row in enumerate(rows):
        if number == 0:
            header = []
            for value in row:
                cell = WriteOnlyCell(page, value=value)
                cell.font = bold
                header.append(cell)
            page.append(header)
        else:
            page.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def is_xlsx(data: bytes) -> bool:
    """An Office Open XML workbook: a ZIP whose parts live under xl/."""
    return data.startswith(b"PK\x03\x04") and b"xl/" in data


def read_sheets(data: bytes) -> Iterator[Sheet]:
    """The workbook's worksheets in their order (chart sheets skipped). Raises InvalidInput
    for a file that is not a workbook Car Studio can read, or that unpacks to too much."""
    _check_zip(data)
    from openpyxl import load_workbook  # imported here: most uploads are CSV

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # openpyxl raises many kinds for a damaged or odd file
        raise InvalidInput(
            "This Excel workbook cannot be read (it may be damaged or password-protected); "
            "open it in Excel and save it again as .xlsx or CSV UTF-8."
        ) from exc
    try:
        for sheet in book.worksheets:
            if hasattr(sheet, "iter_rows"):
                yield Sheet(sheet.title, _rows(sheet))
    finally:
        book.close()


def _rows(sheet: Any) -> Iterator[tuple[int, list[str]]]:
    # A sheet's declared size is ignored (rows are as wide as their own last cell), so a
    # dimension of A1:XFD1048576 does not turn into a million padded rows.
    sheet.reset_dimensions()
    cells = 0
    try:
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells += len(row)
            if cells > MAX_CELLS or number > MAX_SHEET_ROWS:
                raise InvalidInput(
                    f"The sheet “{sheet.title}” is far larger than 50 cars need; copy the cars "
                    "into a new workbook or save them as CSV."
                )
            yield number, [cell_text(value) for value in row]
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError) as exc:
        raise InvalidInput(
            f"The sheet “{sheet.title}” of this workbook cannot be read ({type(exc).__name__}); "
            "save it again as .xlsx or CSV UTF-8."
        ) from exc


def cell_text(value: Any) -> str:
    """A cell as a person sees it: 2024.0 is "2024", a date "2024-03-01", a time "09:30"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.15g}"  # Excel shows 15 significant digits
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds" if value.second else "minutes")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat(timespec="seconds" if value.second else "minutes")
    return str(value)


def _check_zip(data: bytes) -> None:
    """Refuse a workbook that unpacks to more than MAX_UNPACKED, by what its entries declare
    and by what they really inflate to (a declared size can lie)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_ENTRIES:
                raise _too_big(f"{len(entries):,} parts")
            declared = sum(entry.file_size for entry in entries)
            if declared > MAX_UNPACKED:
                raise _too_big(_mb(declared))
            total = 0
            for entry in entries:
                with archive.open(entry) as part:
                    while chunk := part.read(_CHUNK):
                        total += len(chunk)
                        if total > MAX_UNPACKED:
                            raise _too_big(f"more than {_mb(MAX_UNPACKED)}")
    except InvalidInput:
        raise
    except Exception as exc:  # zipfile and zlib raise many kinds for a damaged archive
        raise InvalidInput(
            "This Excel workbook is damaged (its ZIP structure cannot be read); open it in "
            "Excel and save it again."
        ) from exc


def _too_big(size: str) -> InvalidInput:
    return InvalidInput(
        f"This workbook unpacks to {size}, far more than 50 cars need (the limit is "
        f"{_mb(MAX_UNPACKED)}); copy the cars into a new workbook or save them as CSV."
    )


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):,.0f} MB"
