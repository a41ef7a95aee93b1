"""The field registry: CarSpec declares every car field once, and the CLI, the form, the page's
script, the template and the instructions all follow it."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from carstudio.cli import app
from carstudio.columns import header_key, header_synonyms_markdown
from carstudio.intake import PICKER_TYPES, read_intake, template_csv
from carstudio.spec import FIELDS, IDENTITY_FIELDS, PROMPT_FIELDS, REGISTRY, CarSpec
from carstudio.web import pages

runner = CliRunner()


class _Form(HTMLParser):
    """The names of the Single tab's form controls and the registry JSON of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[str] = []
        self.in_field = False
        self.in_registry = False
        self.registry = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        # Each car field's control sits in a <div class="field" data-role="...">.
        if tag == "div":
            self.in_field = "data-role" in found
        elif tag in {"input", "select"} and self.in_field:
            self.controls.append(found.get("name") or "")
            self.in_field = False
        self.in_registry = tag == "script" and found.get("id") == "car-registry"

    def handle_data(self, data: str) -> None:
        if self.in_registry:
            self.registry += data


def test_every_field_is_declared_with_label_help_and_its_own_header() -> None:
    assert tuple(CarSpec.model_fields) == FIELDS
    for name, field in REGISTRY.items():
        assert field.name == name and field.label and field.help
        assert name in {header_key(header) for header in field.headers}, name


def test_no_header_spelling_means_two_fields() -> None:
    seen: dict[str, str] = {}
    for name, field in REGISTRY.items():
        for header in field.headers:
            assert seen.setdefault(header_key(header), name) == name, header


def test_identity_fields_never_reach_the_prompt() -> None:
    assert not set(IDENTITY_FIELDS) & set(PROMPT_FIELDS)
    values = CarSpec(make="Kia", model="EV6").prompt_values()
    assert set(values) == {*PROMPT_FIELDS, "title"}


def test_generate_has_one_option_per_field() -> None:
    result = runner.invoke(app, ["generate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name, field in REGISTRY.items():
        assert f"--{name.replace('_', '-')}" in result.output
        assert field.help in result.output


def test_template_has_every_field_and_each_fields_example_first() -> None:
    rows = list(csv.DictReader(io.StringIO(template_csv())))
    assert tuple(rows[0]) == FIELDS
    assert rows[0] == {name: field.example for name, field in REGISTRY.items()}


def test_the_page_and_its_template_follow_the_registry(
    client_for: Callable[..., TestClient],
) -> None:
    client = client_for()  # one app for the page and the template it links to
    template = client.get("/api/csv-template")
    assert template.text.splitlines()[0].split(",") == list(FIELDS)
    assert read_intake(template.content).ok
    workbook = client.get("/api/xlsx-template")
    assert workbook.headers["content-disposition"].endswith('filename="carstudio-template.xlsx"')
    assert [row.values for row in read_intake(workbook.content).rows] == [
        row.values for row in read_intake(template.content).rows
    ]
    page = client.get("/").text
    form = _Form()
    form.feed(page)
    assert form.controls == list(FIELDS)
    registry = json.loads(form.registry)
    assert [field["name"] for field in registry] == list(FIELDS)
    assert registry == [field.public() for field in REGISTRY.values()]
    instructions = re.search(r'id="batch-instructions">([^<]*)<', page)
    assert instructions is not None
    for name in FIELDS:
        assert name in instructions.group(1)
    picker = re.search(r'<input class="cu-input" type="file" accept="([^"]*)"', page)
    assert picker is not None and picker.group(1).split(",") == list(PICKER_TYPES)


def test_the_pages_script_keeps_no_field_list_of_its_own() -> None:
    scripts = Path(pages.__file__).parent / "static" / "js"
    for script in scripts.glob("*.js"):
        code = [
            line
            for line in script.read_text().splitlines()
            if not line.lstrip().startswith(("//", "*", "/*"))
        ]
        # A list of field names in a script would be a second registry.
        assert not re.search(r"\"body_style\"|'body_style'|aspect_ratio:", "\n".join(code))


def test_the_readme_lists_every_accepted_header_from_the_registry() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    found = re.search(
        r"<!-- accepted-headers:[^>]*-->\n(.*?)\n<!-- /accepted-headers -->", readme, re.S
    )
    assert found is not None, "README.md has no generated table of accepted headers"
    # Regenerate it with columns.header_synonyms_markdown() when a field's headers change.
    assert found.group(1) == header_synonyms_markdown()


def test_template_xlsx_writes_an_excel_template_that_reads_back(tmp_path: Path) -> None:
    out = tmp_path / "cars.xlsx"
    result = runner.invoke(app, ["template", "--xlsx", "-o", str(out)])
    assert result.exit_code == 0, result.output
    report = read_intake(out.read_bytes())
    assert report.ok and report.sheet == "Cars"
    assert [h.mapped_to for h in report.headers] == list(FIELDS)
    assert report.rows[0].values == {name: f.example for name, f in REGISTRY.items()}
