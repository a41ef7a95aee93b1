"""Prompt building: an operator-editable template per background, filled from a CarSpec."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from carstudio.errors import ConfigurationError
from carstudio.spec import Background, CarSpec

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclass(frozen=True)
class PromptBook:
    """The templates in force, keyed by background, and the shared negative prompt."""

    templates: dict[Background, str]
    negative_prompt: str

    def build(self, spec: CarSpec) -> str:
        """The prompt for one car: placeholders filled, whitespace collapsed."""
        values = spec.prompt_values()

        def fill(match: re.Match[str]) -> str:
            return values.get(match.group(1), "")

        text = _PLACEHOLDER.sub(fill, self.templates[spec.background])
        text = " ".join(text.split())
        return re.sub(r"\s+([,.])", r"\1", text)


def load_prompt_book(path: Path | None = None) -> PromptBook:
    """Read the templates from `path`, or the ones shipped with Car Studio."""
    try:
        if path is None:
            raw = resources.files("carstudio").joinpath("prompts.toml").read_text("utf-8")
        else:
            raw = Path(path).read_text("utf-8")
        data = tomllib.loads(raw)
        templates = {bg: str(data["templates"][bg.value]) for bg in Background}
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        where = path or "the built-in prompts.toml"
        raise ConfigurationError(
            f"The prompt templates in {where} cannot be used ({exc}); "
            "they need a [templates] table with 'white' and 'hub'."
        ) from exc
    return PromptBook(templates=templates, negative_prompt=str(data.get("negative_prompt", "")))
