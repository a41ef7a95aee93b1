"""The paint table: a colour phrase as a dealer writes it ("Metallic Kings Red", "gris foncé")
mapped to the reference colour its car should show.

The table ships with Car Studio (paints.toml beside this module); an operator extends or
overrides it with a file of the same form named by CARSTUDIO_PAINTS_FILE.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from carstudio.errors import ConfigurationError

_HEX = re.compile(r"#?([0-9a-fA-F]{6})")
# Letters that Unicode does not decompose into a base letter and a mark.
_FOLD = str.maketrans({"ł": "l", "ø": "o", "æ": "ae", "œ": "oe", "đ": "d"})
MAX_WORDS = 4
"""The longest phrase looked for: "snowflake white pearl" has three words."""


def normalize(text: str) -> str:
    """Lower case, accents dropped, single spaces between words: "Gris Foncé" -> "gris fonce"."""
    folded = unicodedata.normalize("NFKD", text.casefold()).translate(_FOLD)
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain).split())


@dataclass(frozen=True)
class Paint:
    """The phrase found in a row's colour and the sRGB colour it stands for."""

    phrase: str
    rgb: tuple[int, int, int]

    @property
    def hex(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.rgb)


class PaintTable:
    def __init__(self, entries: Mapping[str, tuple[int, int, int]]) -> None:
        self._entries = {normalize(phrase): rgb for phrase, rgb in entries.items()}

    def __len__(self) -> int:
        return len(self._entries)

    def find(self, colour: str) -> Paint | None:
        """The paint a colour phrase names: the whole phrase if known, else its longest known
        run of words (the rightmost among equals: "pearl white" is a white); None if unknown."""
        words = normalize(colour).split()
        for size in range(min(len(words), MAX_WORDS), 0, -1):
            for start in range(len(words) - size, -1, -1):
                phrase = " ".join(words[start : start + size])
                if phrase in self._entries:
                    return Paint(phrase, self._entries[phrase])
        return None

    @classmethod
    def load(cls, extra: Path | None = None) -> PaintTable:
        """The shipped table, extended (and overridden) by the operator's file `extra`."""
        shipped = resources.files("carstudio.quality").joinpath("paints.toml").read_text("utf-8")
        entries = dict(_entries(tomllib.loads(shipped), "the built-in paints.toml"))
        if extra is not None:
            try:
                data = tomllib.loads(Path(extra).read_text("utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise ConfigurationError(
                    f"The paint table in {extra} (CARSTUDIO_PAINTS_FILE) cannot be read: {exc}"
                ) from exc
            entries.update(_entries(data, f"{extra} (CARSTUDIO_PAINTS_FILE)"))
        return cls(entries)


def _entries(data: Mapping[str, Any], where: str) -> Iterator[tuple[str, tuple[int, int, int]]]:
    for key, value in data.items():
        if isinstance(value, Mapping):
            yield from _entries(value, where)
            continue
        match = _HEX.fullmatch(value.strip()) if isinstance(value, str) else None
        if match is None:
            raise ConfigurationError(
                f"The paint table in {where} gives {key!r} the value {value!r}; "
                'write colours as sRGB hex, like "#b3121d".'
            )
        digits = match.group(1)
        yield key, (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))


@lru_cache(maxsize=4)
def paint_table(extra: Path | None = None) -> PaintTable:
    """The table in force for an operator file (None: the shipped table), read once."""
    return PaintTable.load(extra)
