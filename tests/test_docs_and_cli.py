"""The README documents every setting and command; the CLI does what it says."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from carstudio.cli import app
from carstudio.config import Settings
from tests.batch_helpers import CARS, csv_of, numbered_cars
from tests.fakes.replicate import FakeReplicate

README = (Path(__file__).parent.parent / "README.md").read_text()
runner = CliRunner()


def env_names() -> list[str]:
    names = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        names.append(str(choices[0]) if choices else f"CARSTUDIO_{name.upper()}")
    return names


@pytest.mark.parametrize("name", env_names())
def test_every_setting_is_documented(name: str) -> None:
    assert f"`{name}`" in README or f"`{name}` /" in README or name in README


def test_every_command_is_documented() -> None:
    for command in app.registered_commands:
        name = command.name or command.callback.__name__  # type: ignore[union-attr]
        assert f"carstudio {name}" in README


def test_the_first_screen_shows_how_to_run_check_and_test() -> None:
    first_screen = "\n".join(README.splitlines()[:20])
    for command in ("make run", "make check", "make test"):
        assert command in first_screen


def test_generate_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "car.png"
    result = runner.invoke(
        app,
        [
            "generate",
            "--make",
            "Toyota",
            "--model",
            "Corolla",
            "--year",
            "2024",
            "--background",
            "hub",
            "--aspect-ratio",
            "16:9",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] > image.size[1]


def test_generate_refuses_a_bad_car_in_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["generate", "--color", "red", "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 2
    assert "make or a model" in result.output and len(result.output.strip().splitlines()) == 1


def test_generate_reports_a_provider_refusal(
    tmp_path: Path, fake_replicate: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", fake_replicate.token)
    monkeypatch.setenv("REPLICATE_BASE_URL", fake_replicate.base_url)
    fake_replicate.add_fault("safety")
    result = runner.invoke(app, ["generate", "--make", "Kia", "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 1 and "safety filter" in result.output
    assert fake_replicate.token not in result.output


def test_the_model_can_be_chosen_per_command(
    tmp_path: Path, fake_replicate: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", fake_replicate.token)
    monkeypatch.setenv("REPLICATE_BASE_URL", fake_replicate.base_url)
    made = runner.invoke(
        app,
        ["generate", "--make", "Kia", "--replicate-model", "google/nano-banana-2", "-o",
         str(tmp_path / "kia.png")],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "google/nano-banana-2" in made.output
    assert fake_replicate.requests[0].path == "/v1/models/google/nano-banana-2/predictions"
    source = tmp_path / "cars.csv"
    source.write_bytes(csv_of(CARS[:2]))
    for command in (["generate", "--make", "Kia"], ["batch", str(source)]):
        refused = runner.invoke(app, [*command, "--replicate-model", "google/imagen-9"])
        assert refused.exit_code == 2, refused.output
        assert "not a model Car Studio supports" in refused.output
    assert fake_replicate.creation_count() == 1


def test_generate_reuses_an_identical_image_unless_fresh(
    tmp_path: Path, fake_replicate: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", fake_replicate.token)
    monkeypatch.setenv("REPLICATE_BASE_URL", fake_replicate.base_url)
    car = ["generate", "--make", "Kia", "--model", "EV6", "--color", "blue"]
    first = runner.invoke(app, [*car, "-o", str(tmp_path / "first.png")])
    assert first.exit_code == 0, first.output
    assert "no charge" not in first.output
    again = runner.invoke(app, [*car, "-o", str(tmp_path / "again.png")])
    assert again.exit_code == 0, again.output
    assert "made before: no charge" in again.output
    assert (tmp_path / "again.png").read_bytes() == (tmp_path / "first.png").read_bytes()
    assert fake_replicate.creation_count() == 1
    fresh = runner.invoke(app, [*car, "--fresh", "-o", str(tmp_path / "fresh.png")])
    assert fresh.exit_code == 0, fresh.output
    assert "no charge" not in fresh.output
    assert fake_replicate.creation_count() == 2


def test_template_lists_every_column() -> None:
    result = runner.invoke(app, ["template"])
    assert result.exit_code == 0
    assert result.output.splitlines()[0] == (
        "make,model,body_style,trim,year,color,background,aspect_ratio,vin,stock_number"
    )


def test_batch_writes_a_zip_and_exits_0(tmp_path: Path) -> None:
    source = tmp_path / "cars.csv"
    source.write_bytes(csv_of(CARS[:3]))
    out = tmp_path / "out" / "cars.zip"
    result = runner.invoke(app, ["batch", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert len([n for n in zipfile.ZipFile(out).namelist() if n.endswith(".png")]) == 3


def test_batch_with_failed_rows_exits_1_and_lists_them(
    tmp_path: Path, fake_replicate: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", fake_replicate.token)
    monkeypatch.setenv("REPLICATE_BASE_URL", fake_replicate.base_url)
    fake_replicate.add_fault("safety", when="Mustang")
    source = tmp_path / "cars.csv"
    source.write_bytes(csv_of(CARS[:3]))
    result = runner.invoke(app, ["batch", str(source), "-o", str(tmp_path / "cars.zip")])
    assert result.exit_code == 1, result.output
    assert "Failed rows" in result.output and "safety" in result.output


def test_batch_refuses_bad_input_with_exit_2(tmp_path: Path) -> None:
    source = tmp_path / "cars.csv"
    source.write_bytes(numbered_cars(55))
    result = runner.invoke(app, ["batch", str(source), "-o", str(tmp_path / "cars.zip")])
    assert result.exit_code == 2 and "at most 50" in result.output
    missing = runner.invoke(app, ["batch", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "cannot read" in missing.output


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("CARSTUDIO_MODEL", "google/imagen-9", "not a supported model"),
        ("CARSTUDIO_QUEUE_URL", "amqp://somewhere", "CARSTUDIO_QUEUE_URL"),
        ("CARSTUDIO_QUEUE_URL", "redis://:hush@127.0.0.1:1/0", "cannot reach the queue"),
        ("CARSTUDIO_DATABASE_URL", "postgresql://u:hush@127.0.0.1:1/x", "cannot open its database"),
        ("CARSTUDIO_CONCURRENCY", "many", "concurrency"),
    ],
)
def test_bad_settings_stop_serve_with_one_sentence(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, words: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert words in result.output and "Traceback" not in result.output
    assert "hush" not in result.output
