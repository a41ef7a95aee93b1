"""CSV intake: uploaded bytes become an intake report of cleaned, validated car rows.

The preview (validate endpoint) and the real submission both call `read_intake`, so what a
person sees in the preview is exactly what will run. Problems with the file as a whole raise
`InvalidInput` (or `TooLarge`); problems with single rows are reported per row.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from carstudio import spreadsheets
from carstudio.columns import (
    ColumnMapping,
    HeaderInfo,
    Notice,
    few_fields,
    is_blank,
    map_header,
    match_header,
)
from carstudio.errors import InvalidInput, TooLarge
from carstudio.spec import (
    FIELD_LABELS,
    FIELDS,
    IDENTITY_FIELDS,
    MAX_TEXT,
    REGISTRY,
    TEXT_FIELDS,
    CarSpec,
    clean_text,
)

MAX_ROWS = 50
MAX_BYTES = 5 * 1024 * 1024
PICKER_TYPES = (
    ".csv",
    ".tsv",
    ".txt",
    ".xlsx",
    "text/csv",
    "text/tab-separated-values",
    spreadsheets.XLSX_TYPE,
)
"""What the page's file picker offers: the files intake reads. It tells them apart by their
content, not their names, so a file picked under "All files" is read the same."""
PREVIEW_ROWS = 10
DELIMITERS = ",;\t|"
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
ENCODING_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "utf-16": "UTF-16",
    "utf-32": "UTF-32",
    "cp1252": "Windows-1252 (Western European)",
    "latin-1": "Latin-1",
    "xlsx": "Excel workbook",
}
"""How each encoding the intake may read a file with is named to people."""

EXCEL_ADVICE = (
    "This is an old-style Excel workbook (.xls): in Excel choose File > Save As > "
    "Excel Workbook (.xlsx) or CSV UTF-8."
)

_SHOWN_CHARS = 200
"""How much of an invalid cell the report echoes back; enough to recognise it, never megabytes."""

_MIB = 1024 * 1024

_QUOTED = re.compile(r'"[^"]*"')
# C0 controls other than tab/newline/return, and DEL: plain text has almost none of these.
_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BINARY_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BINARY_SAMPLE = 64 * 1024
_SNIFF_SAMPLE = 4 * 1024

_BOMS: tuple[tuple[bytes, str, str], ...] = (
    # UTF-32 first: its little-endian mark begins with UTF-16's.
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)


@dataclass(frozen=True)
class ColumnInfo:
    """One car field as this file supplies it: present, or filled with its default."""

    name: str
    label: str
    present: bool
    default: str


@dataclass(frozen=True)
class RowError:
    """A problem with one row; `row` is the spreadsheet row number (header is row 1)."""

    row: int
    column: str | None
    message: str


@dataclass
class IntakeRow:
    """One car row: cleaned values in FIELDS order, its spec when valid, and its errors."""

    row: int
    values: dict[str, str]
    spec: CarSpec | None
    errors: list[RowError]
    warnings: list[RowError] = field(default_factory=list)
    """What may be wrong in a valid row (a VIN's check digit); shown, never refused."""
    extra: dict[str, str] = field(default_factory=dict)
    """The columns not used for the car, {header as uploaded: value}: kept, never lost."""
    cells: list[str] = field(default_factory=list)
    """The row as uploaded, in the file's own column order."""

    @property
    def valid(self) -> bool:
        return self.spec is not None and not self.errors


@dataclass
class IntakeReport:
    """Everything Car Studio read from one uploaded CSV."""

    rows: list[IntakeRow]
    headers: list[HeaderInfo]
    unknown_headers: list[str]
    encoding: str
    delimiter: str
    sheet: str | None = None
    """The worksheet the cars came from, for an Excel workbook."""
    max_rows: int = MAX_ROWS
    file_names: dict[int, str] = field(default_factory=dict)
    """Row number -> the name its image would get (filled in by the batch service)."""
    notices: list[Notice] = field(default_factory=list)
    source_header: list[str] = field(default_factory=list)
    """The header row as uploaded, every cell in order (failed_rows.csv repeats it)."""

    @property
    def needs_confirmation(self) -> bool:
        """A notice says the file may not be read as meant: the person confirms first."""
        return any(notice.confirm for notice in self.notices)

    @property
    def ok(self) -> bool:
        """True when there is at least one row and no row has an error."""
        return bool(self.rows) and not any(row.errors for row in self.rows)

    @property
    def row_count(self) -> int:
        return len(self.rows)

    @property
    def row_errors(self) -> list[RowError]:
        return [error for row in self.rows for error in row.errors]

    @property
    def row_warnings(self) -> list[RowError]:
        return [warning for row in self.rows for warning in row.warnings]

    @property
    def valid_rows(self) -> list[IntakeRow]:
        return [row for row in self.rows if row.valid]

    @property
    def invalid_rows(self) -> list[IntakeRow]:
        return [row for row in self.rows if not row.valid]

    @property
    def preview(self) -> list[IntakeRow]:
        """The rows a person sees before starting: the first `PREVIEW_ROWS`."""
        return self.rows[:PREVIEW_ROWS]

    @property
    def columns(self) -> list[ColumnInfo]:
        """Every car field, in order, and whether this file has a column for it."""
        present = {header.mapped_to for header in self.headers}
        defaults = CarSpec.defaults()
        return [
            ColumnInfo(name, FIELD_LABELS[name], name in present, defaults[name]) for name in FIELDS
        ]

    @property
    def encoding_label(self) -> str:
        return ENCODING_LABELS.get(self.encoding, self.encoding)

    @property
    def delimiter_label(self) -> str:
        """ "comma-separated" (or, for a workbook, which sheet), the way the preview tells how
        the file was read."""
        if self.sheet is not None:
            return f"sheet “{self.sheet}”"
        return f"{DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))}-separated"


def read_intake(
    data: bytes, *, max_rows: int = MAX_ROWS, max_bytes: int = MAX_BYTES
) -> IntakeReport:
    """Read an uploaded CSV into an intake report.

    Raises `TooLarge` over `max_bytes` and `InvalidInput` for any problem with the file as a
    whole; never anything else, whatever the bytes.
    """
    if len(data) > max_bytes:
        raise TooLarge(f"This file is {_size(len(data))}; the limit is {_size(max_bytes)}.")
    if not data:
        raise InvalidInput("The file is empty; upload a CSV with a header row and one car per row.")
    sheet: str | None = None
    if spreadsheets.is_xlsx(data):
        table, sheet = _read_workbook(data, max_rows)
        encoding, delimiter = "xlsx", ""
    else:
        _reject_other_formats(data)
        text, encoding = _decode(data)
        if not text.strip():
            raise _only_blank_lines()
        delimiter = sniff_delimiter(text)
        table = _read_table(text, delimiter, max_rows)
    if table.header is None:
        raise _only_blank_lines()
    mapping = map_header(table.header, table.header_row, table.rows)
    if table.data_rows > max_rows:
        where = f"The sheet “{sheet}”" if sheet else "This file"
        raise InvalidInput(
            f"{where} has {table.data_rows:,} car rows; a batch takes at most {max_rows}. "
            "Split it into smaller files."
        )
    if table.data_rows == 0:
        raise InvalidInput(
            "The file has a header row but no cars; add one car per row below the header."
        )
    width = len(table.header)
    rows = [_intake_row(number, cells, mapping, width, delimiter) for number, cells in table.rows]
    _mark_repeated_identities(rows)
    return IntakeReport(
        rows=rows,
        headers=mapping.headers,
        unknown_headers=mapping.unknown,
        notices=mapping.notices + few_fields(mapping, _unused_with_data(mapping, rows)),
        source_header=[clean_text(cell) for cell in table.header],
        encoding=encoding,
        delimiter=delimiter,
        sheet=sheet,
        max_rows=max_rows,
    )


TEMPLATE_CARS: tuple[dict[str, str], ...] = (
    {"make": "Ford", "model": "F-150", "body_style": "pickup truck", "trim": "Lariat"}
    | {"year": "2023", "color": "agate black", "background": "hub", "aspect_ratio": "16:9"},
    {"make": "Volkswagen", "model": "Golf", "body_style": "hatchback", "trim": "GTI"}
    | {"year": "2022", "color": "kings red", "background": "white", "aspect_ratio": "4:3"},
    {"make": "Tesla", "model": "Model Y", "background": "hub", "aspect_ratio": "9:16"},
)
"""Example cars after the first template row, which holds every field's own example."""


def template_rows() -> list[dict[str, str]]:
    """The template's cars: every field's example from the registry, then a few others."""
    first = {name: field.example for name, field in REGISTRY.items()}
    return [first, *(dict.fromkeys(FIELDS, "") | car for car in TEMPLATE_CARS)]


def template_csv() -> str:
    """An example CSV with every column, for people to fill in."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(template_rows())
    return out.getvalue()


def template_xlsx() -> bytes:
    """The same template as an Excel workbook; years are numbers, as Excel keeps them."""
    rows: list[list[Any]] = [list(FIELDS)]
    for car in template_rows():
        rows.append([int(v) if k == "year" and v.isdigit() else v for k, v in car.items()])
    return spreadsheets.write_workbook("Cars", rows)


def sniff_delimiter(text: str) -> str:
    """Which of , ; tab | separates the cells, judged mainly by the header line."""
    start, line = _header_line(text)
    # Header names never contain the delimiter unquoted, so the header line is the surest
    # witness; the sniffer only breaks ties when several candidates appear in it.
    unquoted = _QUOTED.sub("", line)
    counts = {d: unquoted.count(d) for d in DELIMITERS if d in unquoted}
    if not counts:
        return ","
    if len(counts) == 1:
        return next(iter(counts))
    sniffed = _sniffer_guess(text[start : start + _SNIFF_SAMPLE])
    if sniffed in counts:
        return sniffed
    return max(counts, key=lambda d: counts[d])


# --- workbooks ------------------------------------------------------------------------------

HEADER_SEARCH_ROWS = 10
"""A header row may sit below a title or a note (a dealer system's export often starts with
the report's name and date): the first rows are searched for it."""


def names_a_car(cells: list[str]) -> bool:
    """The row is a header: a cell names the make or the model column."""
    return any(match_header(cell) in ("make", "model") for cell in cells if cell)


def _read_workbook(data: bytes, max_rows: int) -> tuple[_Table, str]:
    """The first sheet with a recognisable header row (one naming a make or model), as a
    table of its rows with spreadsheet numbers, and the sheet's name."""
    names = []
    for sheet in spreadsheets.read_sheets(data):
        names.append(sheet.name)
        table = _sheet_table(sheet.rows, max_rows)
        if table is not None:
            return table, sheet.name
    if not names:
        raise InvalidInput("This Excel workbook has no worksheet; save the cars as .xlsx again.")
    listed = ", ".join(f"“{name}”" for name in names)
    message = (
        f"No sheet of this workbook ({listed}) has a header row naming a make or model "
        f"column in its first {HEADER_SEARCH_ROWS} rows; put one, like make,model,year, "
        "above the cars."
    )
    raise InvalidInput(message)


def _sheet_table(rows: Iterator[tuple[int, list[str]]], max_rows: int) -> _Table | None:
    table = _Table()
    searched = 0
    for number, cells in rows:
        if not cells or is_blank(cells):
            continue
        if table.header is None:
            if names_a_car(cells):
                table.header, table.header_row = cells, number
                continue
            searched += 1
            if searched >= HEADER_SEARCH_ROWS:
                return None
            continue
        table.data_rows += 1
        if table.data_rows <= max_rows:
            table.rows.append((number, cells))
    return table if table.header is not None else None


# --- file-level checks ---------------------------------------------------------------------


def _only_blank_lines() -> InvalidInput:
    return InvalidInput("The file has only blank lines; it needs a header row and one car per row.")


def _reject_other_formats(data: bytes) -> None:
    """Recognise files people upload by mistake and say how to get a CSV instead."""
    head = data[:512]
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        if b"application/vnd.oasis.opendocument.spreadsheet" in head:
            raise InvalidInput(
                "This is an OpenDocument spreadsheet, not a CSV: "
                "choose File > Save As > Text CSV and pick UTF-8."
            )
        if b"xl/" in data:
            raise InvalidInput(EXCEL_ADVICE)
        if b"Index/Document.iwa" in data:
            raise InvalidInput(
                "This is an Apple Numbers file, not a CSV: choose File > Export To > CSV."
            )
        raise InvalidInput(
            "This is a ZIP archive, not a CSV: unzip it and upload the CSV file inside."
        )
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        # The old binary .xls format; other Office documents share the container, but a
        # spreadsheet is what people mean to upload here.
        raise InvalidInput(EXCEL_ADVICE)
    if b"urn:schemas-microsoft-com:office:spreadsheet" in data[:4096]:
        raise InvalidInput(EXCEL_ADVICE)
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html", b"<table")):
        # What many systems' "export to Excel" really writes.
        raise InvalidInput(
            "This is a web page (HTML), not a CSV: open it in Excel and choose "
            "File > Save As > CSV UTF-8."
        )
    if head.startswith(b"%PDF"):
        raise InvalidInput(
            "This is a PDF document, not a CSV: export the table as CSV UTF-8 instead."
        )
    image = head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")) or (
        head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    )
    if image:
        raise InvalidInput(
            "This is an image, not a CSV: upload a CSV that describes one car per row."
        )
    if head.startswith(b"\x1f\x8b"):
        raise InvalidInput(
            "This is a compressed (gzip) file, not a CSV: decompress it and upload the CSV."
        )


def _decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding it was read with; binary data is refused, not guessed at."""
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as exc:
                raise InvalidInput(
                    f"This file starts with a {label} marker but is not valid {label} text "
                    f"(byte {exc.start + 1}); save it again as CSV UTF-8."
                ) from None
            _refuse_binary_text(text)
            return text, codec
    # Only now may an 8-bit guess happen: latin-1 decodes any bytes at all, so binary data
    # has to be recognised first.
    _refuse_binary_bytes(data)
    try:
        text, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        try:
            # Excel on Windows writes "CSV" in the ANSI code page, most often cp1252.
            text, encoding = data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            text, encoding = data.decode("latin-1"), "latin-1"
    _refuse_binary_text(text)
    return text, encoding


def _not_text(detail: str = "") -> InvalidInput:
    return InvalidInput(
        f"This file is not CSV text{detail}; export the sheet as CSV UTF-8 and upload that."
    )


def _refuse_binary_bytes(data: bytes) -> None:
    if b"\x00" in data:
        half = len(data) // 2
        # ASCII text in UTF-16 has a zero in every other byte.
        if half and max(data[0::2].count(0), data[1::2].count(0)) > 0.8 * half:
            raise InvalidInput(
                "This file looks like UTF-16 text without a byte-order mark; "
                "save it as CSV UTF-8 and upload that."
            )
        raise _not_text(" (it contains binary data)")
    sample = data[:_BINARY_SAMPLE]
    if len(_BINARY_BYTES.findall(sample)) > max(4, len(sample) // 50):
        raise _not_text(" (it contains binary data)")


def _refuse_binary_text(text: str) -> None:
    if "\x00" in text:
        raise _not_text(" (it contains binary data)")
    sample = text[:_BINARY_SAMPLE]
    if len(_BINARY_CHARS.findall(sample)) > max(4, len(sample) // 50):
        raise _not_text(" (it is full of control characters)")


def _size(n: int) -> str:
    """A byte count for people, rounded up so a file just over a limit never looks equal."""
    if n >= _MIB:
        return f"{math.ceil(n / _MIB * 10) / 10:g} MB"
    if n >= 1024:
        return f"{math.ceil(n / 1024 * 10) / 10:g} KB"
    return f"{n} bytes"


# --- delimiter -----------------------------------------------------------------------------


def _header_line(text: str) -> tuple[int, str]:
    """Where the header line starts, and that line: among the first lines with content, the
    first one naming a make or model column with any of the delimiters; else the first."""
    start, line = first = _first_content_line(text)
    for _ in range(HEADER_SEARCH_ROWS):
        unquoted = line.replace('"', "")
        if any(names_a_car(unquoted.split(d)) for d in DELIMITERS if d in unquoted):
            return start, line
        end = start + len(line)
        if end >= len(text):
            break
        start, line = _first_content_line(text, end)
    return first


_CONTENT = re.compile(r"[^ \t\r\n,;|\x0b\x0c]")


def _first_content_line(text: str, pos: int = 0) -> tuple[int, str]:
    """Where the first line with any content from `pos` on starts, and that line (blank rows
    skipped)."""
    # The search runs in C: a file of millions of blank lines stays fast.
    found = _CONTENT.search(text, pos)
    first = found.start() if found else len(text)
    start = max(text.rfind("\n", pos, first), text.rfind("\r", pos, first), pos - 1) + 1
    ends = [i for i in (text.find("\n", first), text.find("\r", first)) if i >= 0]
    end = min(ends) if ends else len(text)
    return start, text[start:end]


def _sniffer_guess(sample: str) -> str | None:
    # Cut a partial last line: the sniffer compares lines and a torn one misleads it.
    cut = max(sample.rfind("\n"), sample.rfind("\r"))
    if cut > 0:
        sample = sample[:cut]
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except Exception:  # a heuristic: any failure just means "no opinion"
        return None


# --- table --------------------------------------------------------------------------------


@dataclass
class _Table:
    header: list[str] | None = None
    header_row: int = 0
    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    data_rows: int = 0


def _read_table(text: str, delimiter: str, max_rows: int) -> _Table:
    """Header and the first `max_rows` non-blank rows with spreadsheet row numbers.

    Every record counts as one spreadsheet row, blank or not, and a quoted cell with line
    breaks stays one row, as Excel shows it. Rows past the limit are only counted, so an
    oversized file fails fast with its exact size.
    """
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quotechar='"',
        doublequote=True,
        # `a, "b, c"` is how people type a quoted cell by hand.
        skipinitialspace=True,
        # Refuse what cannot be read unambiguously (an unclosed quote, text after a closing
        # quote) instead of guessing and quietly shifting cells.
        strict=True,
    )
    table = _Table()
    number = 0
    before: list[tuple[int, list[str]]] = []  # rows read while the header is looked for
    try:
        for number, cells in enumerate(reader, start=1):
            if not cells or is_blank(cells):
                continue
            if table.header is None:
                if names_a_car(cells):
                    table.header, table.header_row = cells, number  # rows above: a title
                    continue
                before.append((number, cells))
                if len(before) == HEADER_SEARCH_ROWS:
                    _first_row_is_header(table, before, max_rows)
                continue
            _add_row(table, number, cells, max_rows)
    except csv.Error as exc:
        raise _csv_problem(exc, number + 1) from None
    if table.header is None and before:
        _first_row_is_header(table, before, max_rows)
    return table


def _first_row_is_header(table: _Table, rows: list[tuple[int, list[str]]], max_rows: int) -> None:
    """No row names a make or model: the first is the header as written (and its headers
    are judged, and refused in words, like any other), the rest are cars."""
    (table.header_row, table.header), *cars = rows
    for number, cells in cars:
        _add_row(table, number, cells, max_rows)


def _add_row(table: _Table, number: int, cells: list[str], max_rows: int) -> None:
    table.data_rows += 1
    if table.data_rows <= max_rows:
        table.rows.append((number, cells))


def _csv_problem(exc: csv.Error, row: int) -> InvalidInput:
    text = str(exc)
    if "unexpected end of data" in text:
        message = (
            f"A quote that opens a cell in row {row} is never closed, so the rest of the file "
            "would be one cell; close that quote or remove it."
        )
    elif "expected after" in text:
        message = (
            f"Row {row} has text right after a closing quote; put the whole cell in quotes "
            'and write each quote inside it as two quotes ("").'
        )
    elif "field larger than field limit" in text:
        message = (
            f"Row {row} has a cell longer than {csv.field_size_limit():,} characters, far "
            "more than any car needs; check that this is the right file."
        )
    else:
        message = f"Row {row} is not valid CSV ({text}); save the sheet again as CSV UTF-8."
    return InvalidInput(message, [{"row": row, "message": message}])


# --- rows ---------------------------------------------------------------------------------


def _intake_row(
    number: int, cells: list[str], mapping: ColumnMapping, width: int, delimiter: str
) -> IntakeRow:
    """Clean and validate one row against CarSpec; keep its other columns as `extra`."""
    columns = mapping.columns
    extra = {
        name: clean_text(cells[index]) if index < len(cells) else ""
        for index, name in mapping.extra
    }
    raw = {
        name: clean_text(cells[columns[name]])
        if name in columns and columns[name] < len(cells)
        else ""
        for name in FIELDS
    }
    errors: dict[str | None, RowError] = {}

    def add(column: str | None, message: str) -> None:
        errors.setdefault(column, RowError(number, column, message))

    if len(cells) > width and not is_blank(cells[width:]):
        add(
            None,
            "This row has more cells than the header has columns; put quotes around any "
            f"value that contains a {DELIMITER_NAMES[delimiter]}."
            if delimiter
            else "This row has cells beyond the last named column; name that column in the "
            "header row or clear those cells.",
        )
    for name in TEXT_FIELDS:
        if len(raw[name]) > MAX_TEXT:
            # Cutting would silently change the car; the person should shorten it.
            add(
                name,
                f"{FIELD_LABELS[name]} is {len(raw[name]):,} characters long; "
                f"the limit is {MAX_TEXT}.",
            )
    # Checked here as well as by CarSpec: pydantic skips whole-model rules once a field
    # fails, and the person should see every problem of the row at once.
    nameless = not raw["make"] and not raw["model"]
    if nameless:
        add("make", "A car needs at least a make or a model.")

    spec: CarSpec | None = None
    try:
        spec = CarSpec.model_validate(raw)
    except ValidationError as exc:
        for problem in exc.errors():
            loc = problem.get("loc") or ()
            column = loc[0] if loc and loc[0] in FIELDS else None
            if column is None and nameless:
                continue  # the make-or-model rule, already reported above
            add(column, _plain(str(problem.get("msg", "invalid value"))))

    if spec is not None and not errors:
        values = spec.as_row()
        return IntakeRow(number, values, spec, [], _warnings(number, values), extra, cells)
    values = {
        name: _shown(raw[name]) if name in errors else _normalized(name, raw[name])
        for name in FIELDS
    }
    ordered = sorted(
        errors.values(), key=lambda e: -1 if e.column is None else FIELDS.index(e.column)
    )
    return IntakeRow(number, values, None, ordered, [], extra, cells)


def _unused_with_data(mapping: ColumnMapping, rows: list[IntakeRow]) -> list[str]:
    return [name for _, name in mapping.extra if any(row.extra.get(name) for row in rows)]


def _mark_repeated_identities(rows: list[IntakeRow]) -> None:
    """A stock number or VIN that an earlier row already has: one car twice, or a typo. Both
    rows still run (the later image's name gets its row number); the later row says so."""
    for name in IDENTITY_FIELDS:
        first: dict[str, int] = {}
        for row in rows:
            value = row.values.get(name, "")
            if not value or row.spec is None:
                continue
            if value.casefold() in first:
                label = FIELD_LABELS[name]
                earlier = first[value.casefold()]
                row.warnings.append(
                    RowError(row.row, name, f"{label} {value} is also in row {earlier}.")
                )
            else:
                first[value.casefold()] = row.row


def _warnings(number: int, values: dict[str, str]) -> list[RowError]:
    """What the registry's checks find doubtful in a valid row's values."""
    found = []
    for name, car_field in REGISTRY.items():
        message = car_field.warning(values[name]) if car_field.warning and values[name] else None
        if message:
            found.append(RowError(number, name, message))
    return found


def _normalized(name: str, text: str) -> str:
    """How a valid spec holds this one value (year "2024.0" -> "2024", "" background -> "white")."""
    # Placeholders satisfy the make-or-model rule so this field is judged on its own, by the
    # very rules CarSpec applies.
    probe = {"make": "-", "model": "-", name: text}
    try:
        return CarSpec.model_validate(probe).as_row()[name]
    except ValidationError:
        return _shown(text)


def _plain(message: str) -> str:
    """pydantic's message as a sentence: no "Value error, " prefix, capitalised, full stop."""
    message = message.removeprefix("Value error, ").strip() or "Invalid value"
    message = message[0].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"
