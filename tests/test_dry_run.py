"""`carstudio batch --dry-run`: the CSV checked as the server checks it and priced, here or by
a server; nothing is made, nothing is spent, and no token is needed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from carstudio.cli import app
from carstudio.config import Settings
from carstudio.web.app import create_app
from tests.batch_helpers import CARS, csv_of, numbered_cars
from tests.fakes.replicate import FakeReplicate
from tests.serving import servers

# Wide enough that no line is wrapped around a temporary path.
runner = CliRunner(env={"COLUMNS": "250"})
NOTHING_MADE = "Dry run: nothing was made and nothing was spent."


@pytest.fixture
def cars_csv(tmp_path: Path) -> Path:
    source = tmp_path / "cars.csv"
    source.write_bytes(csv_of(CARS[:3]))
    return source


@pytest.fixture
def on_fake_replicate(monkeypatch: pytest.MonkeyPatch, fake_replicate: FakeReplicate) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", fake_replicate.token)
    monkeypatch.setenv("REPLICATE_BASE_URL", fake_replicate.base_url)


@pytest.fixture
def studio_at(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., str]]:
    """`studio_at(**settings)`: a real Car Studio served on a loopback port, by address."""
    with servers() as running:
        yield lambda **overrides: running.start(create_app(make_settings(**overrides)))


def dry_run(*args: str) -> list[str]:
    """Run `carstudio batch --dry-run ...`; its lines, once it exited 0."""
    result = runner.invoke(app, ["batch", *args, "--dry-run"])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()


@pytest.mark.usefixtures("on_fake_replicate")
def test_a_dry_run_prints_the_estimate_and_makes_nothing(
    cars_csv: Path, fake_replicate: FakeReplicate, tmp_path: Path
) -> None:
    out = tmp_path / "cars.zip"
    lines = dry_run(str(cars_csv), "--replicate-model", "google/imagen-4", "-o", str(out))
    assert lines == ["3 images · about $0.12 with Imagen 4", NOTHING_MADE]
    assert fake_replicate.creation_count() == 0
    assert fake_replicate.requests == []
    # Not even a data directory: a dry run opens no store.
    assert not out.exists() and not (tmp_path / "env-data").exists()


def test_a_dry_run_needs_no_token_and_says_an_unknown_price(
    cars_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No token, yet CARSTUDIO_PROVIDER=replicate: the real batch would fail, its price not.
    monkeypatch.setenv("CARSTUDIO_PROVIDER", "replicate")
    assert dry_run(str(cars_csv))[0] == "3 images · price unknown for Imagen 3"
    assert dry_run(str(cars_csv), "--replicate-model", "google/nano-banana")[0] == (
        "3 images · about $0.12 with Nano Banana (Gemini 2.5 Flash Image)"
    )


def test_a_preview_run_is_free_and_says_what_replicate_would_charge(cars_csv: Path) -> None:
    assert dry_run(str(cars_csv), "--replicate-model", "google/imagen-4-fast") == [
        "3 images · free (preview)",
        "On Replicate (with REPLICATE_API_TOKEN set): 3 images · about $0.06 with Imagen 4 Fast",
        NOTHING_MADE,
    ]


@pytest.mark.usefixtures("on_fake_replicate")
def test_prices_set_by_the_operator_are_the_ones_used(
    cars_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[prices]\n"google/imagen-3" = 0.03\n')
    monkeypatch.setenv("CARSTUDIO_PRICES", str(prices))
    assert dry_run(str(cars_csv))[0] == "3 images · about $0.09 with Imagen 3"


@pytest.mark.usefixtures("on_fake_replicate")
def test_invalid_rows_are_counted_apart_from_the_estimate(tmp_path: Path) -> None:
    source = tmp_path / "cars.csv"
    source.write_bytes(csv_of([*CARS[:2], ("Kia", "Rio", "", "", "1800", "", "", "")]))
    lines = dry_run(str(source), "--replicate-model", "google/imagen-4")
    assert lines[0] == "2 images · about $0.08 with Imagen 4"
    assert lines[1] == "1 row is not valid, so not in the estimate:"
    assert lines[2].startswith("  row 4 year: Year 1800 is out of range")
    assert lines[3] == "The batch starts only with --skip-invalid, or once it is fixed."
    skipping = dry_run(str(source), "--skip-invalid")
    assert "--skip-invalid" not in "\n".join(skipping)


@pytest.mark.usefixtures("on_fake_replicate")
def test_a_file_the_batch_would_refuse_exits_2(
    tmp_path: Path, fake_replicate: FakeReplicate
) -> None:
    cases = {
        "too-many.csv": (numbered_cars(55), "at most 50"),
        "all-invalid.csv": (csv_of([("Kia", "Rio", "", "", "1800", "", "", "")]), "No row"),
        "empty.csv": (b"", "The file is empty"),
    }
    for name, (data, words) in cases.items():
        source = tmp_path / name
        source.write_bytes(data)
        result = runner.invoke(app, ["batch", str(source), "--dry-run"])
        assert result.exit_code == 2, result.output
        assert result.output.startswith("error: ") and words in result.output
    source = tmp_path / "cars.csv"
    source.write_bytes(csv_of(CARS[:1]))
    unknown = runner.invoke(
        app, ["batch", str(source), "--dry-run", "--replicate-model", "google/imagen-9"]
    )
    assert unknown.exit_code == 2 and "not a model Car Studio supports" in unknown.output
    missing = runner.invoke(app, ["batch", str(tmp_path / "nope.csv"), "--dry-run"])
    assert missing.exit_code == 2 and "cannot read" in missing.output
    assert fake_replicate.requests == []


def test_a_dry_run_on_a_server_is_its_validate_answer(
    cars_csv: Path,
    tmp_path: Path,
    studio_at: Callable[..., str],
    fake_replicate: FakeReplicate,
) -> None:
    server = studio_at(fake=fake_replicate)
    options = ("--server", server, "--replicate-model", "google/imagen-4")
    assert dry_run(str(cars_csv), *options) == [
        "3 images · about $0.12 with Imagen 4",
        NOTHING_MADE,
    ]
    assert fake_replicate.creation_count() == 0
    assert httpx.get(f"{server}/api/batches").json()["batches"] == []

    # Once the server has made these cars, its image cache answers them at no cost.
    made = runner.invoke(app, ["batch", str(cars_csv), "-o", str(tmp_path / "cars.zip"), *options])
    assert made.exit_code == 0, made.output
    assert fake_replicate.creation_count() == 3
    assert dry_run(str(cars_csv), *options)[0] == (
        "3 images · 3 already made · $0.00 with Imagen 4"
    )
    assert fake_replicate.creation_count() == 3
    assert len(httpx.get(f"{server}/api/batches").json()["batches"]) == 1


def test_a_preview_server_says_its_batch_is_free_and_refuses_a_bad_file(
    cars_csv: Path, tmp_path: Path, studio_at: Callable[..., str]
) -> None:
    server = studio_at()
    assert dry_run(str(cars_csv), "--server", server)[0] == "3 images · free (preview)"
    source = tmp_path / "too-many.csv"
    source.write_bytes(numbered_cars(55))
    result = runner.invoke(app, ["batch", str(source), "--dry-run", "--server", server])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and "at most 50" in result.output
