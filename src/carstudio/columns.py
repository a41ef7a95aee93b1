"""Which column of an uploaded table supplies each car field, and what the rest are.

Header names are folded (case, spaces, punctuation, accents, CamelCase) and looked up among
the spellings the field registry declares (spec.CarField.headers). Where two columns mean
one field the more specific wins; a header that looks like a field but matches none, and a
file of which only one car field was understood, become notices for the person to read.
Every column not used for the car is kept, to ride along as `extra`.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from carstudio.errors import InvalidInput
from carstudio.spec import CORE_FIELDS, FIELD_LABELS, REGISTRY, clean_text

MAX_COLUMNS = 16_384
"""Widest header accepted: Excel's widest sheet. Anything wider is not a spreadsheet export."""

HeaderStatus = Literal["known", "mapped", "unused", "ignored"]


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NUMBER_SIGN = re.compile(r"[#№]|\bn[°º]")
_FOLD = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class HeaderInfo:
    """One header cell: its text as written, the car field it means (or None), and whether
    it was used for that field (another column may have been preferred)."""

    name: str
    mapped_to: str | None
    used: bool = True

    @property
    def status(self) -> HeaderStatus:
        """known: a field's own name; mapped: a synonym of one; unused: a field another column
        supplied; ignored: no car field (kept as an extra column)."""
        if self.mapped_to is None:
            return "ignored"
        if not self.used:
            return "unused"
        return "known" if header_key(self.name) == self.mapped_to else "mapped"


@dataclass(frozen=True)
class Notice:
    """Something about the file as a whole a person should read before starting.

    `confirm`: serious enough that the batch starts only once the person says it is right.
    """

    kind: Literal["column_choice", "looks_like", "few_fields"]
    message: str
    header: str | None = None
    field: str | None = None
    confirm: bool = False


def header_synonyms_markdown() -> str:
    """The README's table of every column name accepted for each field, from the registry."""
    lines = ["| field | column names accepted (any case, spaces, punctuation or CamelCase) |"]
    lines.append("|---|---|")
    for name, car_field in REGISTRY.items():
        names = ", ".join(f"`{header}`" for header in car_field.headers)
        lines.append(f"| `{name}` | {names} |")
    return "\n".join(lines)


def header_key(name: str) -> str:
    """Fold a header name for matching: case, spaces, punctuation, accents and CamelCase go,
    and a number sign is "no": "Body-Style " and "BodyStyle" -> "body_style", "Stock #" ->
    "stock_no", "Année" -> "annee"."""
    text = _CAMEL.sub(" ", clean_text(name))
    text = _NUMBER_SIGN.sub(" no ", text.casefold())
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _FOLD.sub("_", folded).strip("_")


def _header_table() -> dict[str, tuple[str, int]]:
    table: dict[str, tuple[str, int]] = {}
    for name, car_field in REGISTRY.items():
        for rank, header in enumerate(car_field.headers):
            table.setdefault(header_key(header), (name, rank))
    return table


HEADERS: dict[str, tuple[str, int]] = _header_table()
"""Folded header -> (car field, rank): every spelling the registry accepts; rank 0 is the
field's most specific header, which wins where a file has several."""


def match_header(name: str) -> str | None:
    """The car field a header name means, or None."""
    found = HEADERS.get(header_key(name))
    return found[0] if found else None


def is_blank(cells: list[str]) -> bool:
    """True when no cell has anything a person would see."""
    joined = "".join(cells).strip()
    if not joined:
        return True
    # Fast path: a printable first character is content (clean_text only removes
    # non-printable ones); only odd rows pay for a full clean.
    return not joined[0].isprintable() and _cleans_to_nothing(joined)


@functools.lru_cache(maxsize=64)
def _cleans_to_nothing(text: str) -> bool:
    # Cached because such rows repeat: a file of a million identical invisible-character
    # lines must not cost a million cleanups.
    return not clean_text(text)


@dataclass
class ColumnMapping:
    """How a header row is read: which cell supplies each car field, and what is kept."""

    columns: dict[str, int]
    headers: list[HeaderInfo]
    unknown: list[str]
    extra: list[tuple[int, str]]
    """(cell index, name in the manifest) of every column not used for the car."""
    notices: list[Notice]


def map_header(
    header: list[str], header_row: int, rows: list[tuple[int, list[str]]]
) -> ColumnMapping:
    """Car field -> cell index, the header as reported, and notices; refuses unusable headers.
    `rows` (the data rows) tell an empty header cell over a column of data from slack."""
    if len(header) > MAX_COLUMNS:
        raise InvalidInput(
            f"The header row has {len(header):,} cells, more than a spreadsheet has columns; "
            "check that this is the right file."
        )
    empty = {i for i, cell in enumerate(header) if not clean_text(cell)}
    filled = _filled_columns(empty, rows) if empty else set()
    named: list[tuple[int, str, tuple[str, int] | None]] = []
    claims: dict[str, list[tuple[int, int, str]]] = {}
    for index, cell in enumerate(header):
        if index in empty:
            if index not in filled:
                continue  # an empty column with an empty header is just spreadsheet slack
            name, match = f"(column {index + 1})", None
        else:
            name = clean_text(cell)
            match = HEADERS.get(header_key(name))
        named.append((index, name, match))
        if match is not None:
            claims.setdefault(match[0], []).append((match[1], index, name))
    columns, notices = _choose_columns(header_row, claims)
    if "make" not in columns and "model" not in columns:
        shown = ", ".join(f'"{name}"' for _, name, _ in named[:5]) + (
            ", ..." if len(named) > 5 else ""
        )
        message = (
            f"The header row (row {header_row}) has no make or model column "
            f"(it has {shown}); the first row must name the columns, like make,model,year."
        )
        raise InvalidInput(message, [{"row": header_row, "message": message}])
    used = set(columns.values())
    headers = [
        HeaderInfo(name, match[0] if match else None, index in used or match is None)
        for index, name, match in named
    ]
    extra: list[tuple[int, str]] = []
    seen: set[str] = set()
    for index, name, _ in named:
        if index not in used:
            # Two unused columns may share a name; each keeps its values under its own.
            key = name if name not in seen else f"{name} (column {index + 1})"
            seen.add(key)
            extra.append((index, key))
    unknown = [name for _, name, match in named if match is None]
    notices += _look_alikes(unknown, columns, header)
    return ColumnMapping(columns, headers, unknown, extra, notices)


def _choose_columns(
    header_row: int, claims: dict[str, list[tuple[int, int, str]]]
) -> tuple[dict[str, int], list[Notice]]:
    """The column each field is read from: the most specific of those that mean it (the
    registry's order); two equally specific ones (the same name twice) cannot be chosen from."""
    columns: dict[str, int] = {}
    notices: list[Notice] = []
    problems = []
    for name, found in claims.items():
        found.sort()
        best = [claim for claim in found if claim[0] == found[0][0]]
        if len(best) > 1:
            message = _duplicate_message(name, [(i, n) for _, i, n in best])
            problems.append({"row": header_row, "column": name, "message": message})
            continue
        _, index, used = found[0]
        columns[name] = index
        if len(found) > 1:
            others = " and ".join(f"“{n}”" for _, _, n in found[1:])
            label = FIELD_LABELS[name].lower()
            notices.append(
                Notice(
                    "column_choice",
                    f"The {label} comes from “{used}”, the more specific column; {others} "
                    f"{'is' if len(found) == 2 else 'are'} kept as extra.",
                    header=used,
                    field=name,
                )
            )
    if problems:
        raise InvalidInput(str(problems[0]["message"]), problems)
    return columns, notices


def _look_alikes(unknown: list[str], columns: dict[str, int], header: list[str]) -> list[Notice]:
    """Headers that match no field but hold a field's word ("Farbe Innen"): said, not used."""
    notices = []
    for name in unknown:
        key = header_key(name)
        for field_name, car_field in REGISTRY.items():
            if not any(_looks_like(key, hint) for hint in car_field.looks_like):
                continue
            label = car_field.label.lower()
            source = columns.get(field_name)
            message = f"“{name}” looks like {_a(label)} {label} column but was not used"
            if source is not None:
                message += f"; the {label} comes from “{clean_text(header[source])}”."
            else:
                message += f"; name the column {field_name} if it holds the car's {label}."
            notices.append(Notice("looks_like", message, header=name, field=field_name))
            break
    return notices


def _looks_like(key: str, hint: str) -> bool:
    """Whether folded header `key` holds `hint` as whole words ("farbe" in "farbe_innen")."""
    if f"_{hint}_" in f"_{key}_":
        return True
    # German and Dutch join words ("Innenfarbe", "Lakkleur"): a long hint may end or begin one.
    return len(hint) >= 5 and any(w.endswith(hint) or w.startswith(hint) for w in key.split("_"))


def _a(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def few_fields(mapping: ColumnMapping, unused: list[str]) -> list[Notice]:
    """A file of which only one car field was understood while other columns (`unused`, those
    holding data) went unused, as a language or format Car Studio does not know: every image
    would show only that one field."""
    understood = [name for name in CORE_FIELDS if name in mapping.columns]
    if len(understood) != 1 or not unused:
        return []
    only = understood[0]
    source = next(h.name for h in mapping.headers if h.mapped_to == only and h.used)
    listed = ", ".join(f"“{name}”" for name in unused[:6]) + (", ..." if len(unused) > 6 else "")
    label = FIELD_LABELS[only].lower()
    return [
        Notice(
            "few_fields",
            f"Only the {label} was understood (from “{source}”); {listed} "
            f"{'was' if len(unused) == 1 else 'were'} not used, so every image would show "
            f"nothing but the {label}. Rename the columns ({', '.join(CORE_FIELDS)}) or "
            "confirm that this is what you want.",
            header=source,
            field=only,
            confirm=True,
        )
    ]


def _duplicate_message(known: str, found: list[tuple[int, str]]) -> str:
    names = [f'{i + 1} ("{name}")' for i, name in found]
    listed = ", ".join(names[:-1]) + " and " + names[-1]
    if len(found) == 2:
        return f"Columns {listed} both mean {known}; keep one and delete or rename the other."
    return f"Columns {listed} all mean {known}; keep one and delete or rename the others."


def _filled_columns(empty: set[int], rows: list[tuple[int, list[str]]]) -> set[int]:
    """Which header-less columns hold data in any row."""
    filled: set[int] = set()
    for _, cells in rows:
        candidates = [i for i, cell in enumerate(cells) if cell and i in empty]
        filled.update(i for i in candidates if not is_blank([cells[i]]))
    return filled
