"""`carstudio generate` and `carstudio batch` with `--server`: the same commands, run by a
Car Studio served over HTTP (uvicorn on a free local port) instead of in process."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp
from typer.testing import CliRunner

from carstudio.cli import app
from carstudio.config import Settings
from carstudio.errors import CarStudioError
from carstudio.remote import RemoteStudio, ServerUnreachable
from carstudio.web.app import create_app
from carstudio.web.protocol import BUSY
from tests.batch_helpers import CARS, csv_of, numbered_cars
from tests.fakes.replicate import FakeReplicate
from tests.serving import free_socket, servers

# Wide enough that rich does not wrap a summary line around a temporary path.
runner = CliRunner(env={"COLUMNS": "250"})
SERVER_TOKEN = "cs_remote_token_never_shown_0123456789"
TOKEN_SENTENCE = "the server needs a valid API token"

Serve = Callable[[ASGIApp], str]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """`serve(asgi_app)` runs the app with uvicorn on a free local port; returns its address."""
    with servers() as running:
        yield running.start


@pytest.fixture
def studio_at(serve: Serve, make_settings: Callable[..., Settings]) -> Callable[..., str]:
    """`studio_at(**settings)`: a real Car Studio (preview unless fake=...), by address."""
    return lambda **overrides: serve(create_app(make_settings(**overrides)))


def _cars_csv(tmp_path: Path, data: bytes) -> Path:
    source = tmp_path / "cars.csv"
    source.write_bytes(data)
    return source


def _one_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    return lines[0]


def test_generate_on_a_server_writes_the_png(tmp_path: Path, studio_at: Callable[..., str]) -> None:
    server = studio_at()
    out = tmp_path / "out" / "corolla.png"
    result = runner.invoke(
        app,
        ["generate", "--make", "Toyota", "--model", "Corolla", "--year", "2024",
         "--background", "hub", "--aspect-ratio", "16:9", "-o", str(out), "--server", server],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] > image.size[1]
    width, height = Image.open(out).size
    assert _one_line(result.output).startswith(f"{out} ({width}x{height}, ")


def test_the_server_comes_from_carstudio_server_and_names_the_file_type(
    tmp_path: Path, studio_at: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARSTUDIO_SERVER", studio_at() + "/")
    result = runner.invoke(app, ["generate", "--make", "Kia", "-o", str(tmp_path / "kia")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "kia.png").is_file() and not list(tmp_path.glob(".*.part"))


def test_a_server_reuses_images_made_before_unless_fresh(
    tmp_path: Path, studio_at: Callable[..., str], fake_replicate: FakeReplicate
) -> None:
    server = studio_at(fake=fake_replicate)
    car = ["generate", "--make", "Kia", "-o", str(tmp_path / "kia.png"), "--server", server]
    assert "no charge" not in runner.invoke(app, car).output
    again = runner.invoke(app, car)
    assert again.exit_code == 0 and "made before: no charge" in again.output, again.output
    assert fake_replicate.creation_count() == 1
    fresh = runner.invoke(app, [*car, "--fresh"])
    assert fresh.exit_code == 0 and "no charge" not in fresh.output, fresh.output
    assert fake_replicate.creation_count() == 2

    batch = ["batch", str(_cars_csv(tmp_path, csv_of(CARS[:2]))), "--server", server]
    for command, made in ((batch, 4), (batch, 4), ([*batch, "--fresh"], 6)):
        result = runner.invoke(app, [*command, "-o", str(tmp_path / "cars.zip")])
        assert result.exit_code == 0, result.output
        assert fake_replicate.creation_count() == made


def test_batch_on_a_server_writes_the_zip_and_exits_0(
    tmp_path: Path, studio_at: Callable[..., str]
) -> None:
    source = _cars_csv(tmp_path, csv_of(CARS[:3]))
    out = tmp_path / "out" / "cars.zip"
    result = runner.invoke(app, ["batch", str(source), "-o", str(out), "--server", studio_at()])
    assert result.exit_code == 0, result.output
    names = zipfile.ZipFile(out).namelist()
    assert len([name for name in names if name.endswith(".png")]) == 3
    assert "manifest.json" in names
    assert f"3 of 3 images in {out}" in result.output
    assert "Failed rows" not in result.output


def test_a_failed_row_on_the_server_exits_1_and_is_listed(
    tmp_path: Path,
    serve: Serve,
    make_settings: Callable[..., Settings],
    fake_replicate: FakeReplicate,
) -> None:
    fake_replicate.add_fault("safety", when="Mustang")
    server = serve(create_app(make_settings(fake=fake_replicate)))
    source = _cars_csv(tmp_path, csv_of(CARS[:3]))
    out = tmp_path / "cars.zip"
    result = runner.invoke(app, ["batch", str(source), "-o", str(out), "--server", server])
    assert result.exit_code == 1, result.output
    assert f"2 of 3 images in {out}" in result.output
    assert "Failed rows" in result.output and "safety" in result.output
    assert "2023 Ford Mustang" in result.output
    assert zipfile.ZipFile(out).testzip() is None
    assert fake_replicate.token not in result.output


def test_a_bad_csv_exits_2_with_the_servers_sentence(
    tmp_path: Path, studio_at: Callable[..., str]
) -> None:
    server = studio_at()
    source = _cars_csv(tmp_path, numbered_cars(55))
    out = tmp_path / "cars.zip"
    result = runner.invoke(app, ["batch", str(source), "-o", str(out), "--server", server])
    assert result.exit_code == 2, result.output
    assert _one_line(result.output).startswith("error: ") and "at most 50" in result.output
    assert not out.exists()
    unknown = runner.invoke(
        app, ["batch", str(_cars_csv(tmp_path, csv_of(CARS[:1]))), "--server", server,
              "--replicate-model", "google/imagen-9"],
    )  # fmt: skip
    assert unknown.exit_code == 2 and "not a model Car Studio supports" in unknown.output


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    with free_socket() as sock:  # bound, never listening: nothing answers there
        server = f"http://127.0.0.1:{sock.getsockname()[1]}"
        made = runner.invoke(app, ["generate", "--make", "Kia", "--server", server])
        ran = runner.invoke(
            app, ["batch", str(_cars_csv(tmp_path, csv_of(CARS[:1]))), "--server", server]
        )
    for result in (made, ran):
        assert result.exit_code == 1
        assert _one_line(result.output).startswith(f"error: cannot reach Car Studio at {server} (")
    bad = runner.invoke(app, ["generate", "--make", "Kia", "--server", "studio.lan"])
    assert bad.exit_code == 2 and "--server takes an address like" in bad.output


def _sign_in_stub(seen: list[Request]) -> Starlette:
    """A server that requires sign-in and recognises no token."""

    async def refuse(request: Request) -> Response:
        seen.append(request)
        return JSONResponse(
            {"error": "Sign in first."},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="Car Studio"'},
        )

    return Starlette(routes=[Route("/{path:path}", refuse, methods=["GET", "POST"])])


def test_a_server_that_wants_sign_in_gets_the_token_sentence(
    tmp_path: Path, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Request] = []
    server = serve(_sign_in_stub(seen))
    monkeypatch.setenv("CARSTUDIO_SERVER", server)
    monkeypatch.setenv("CARSTUDIO_SERVER_TOKEN", SERVER_TOKEN)
    made = runner.invoke(app, ["generate", "--make", "Kia", "-o", str(tmp_path / "kia.png")])
    ran = runner.invoke(app, ["batch", str(_cars_csv(tmp_path, csv_of(CARS[:1])))])
    for result in (made, ran):
        assert result.exit_code == 1
        line = _one_line(result.output)
        assert TOKEN_SENTENCE in line and "carstudio tokens create NAME" in line
        assert SERVER_TOKEN not in result.output
    assert [r.headers["authorization"] for r in seen] == [f"Bearer {SERVER_TOKEN}"] * 2
    assert [r.url.path for r in seen] == ["/api/car-image", "/api/car-batch"]


def test_the_token_is_never_sent_to_another_host(
    tmp_path: Path, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere: list[Request] = []
    other = serve(_sign_in_stub(elsewhere)).replace("127.0.0.1", "localhost")

    async def move(request: Request) -> Response:
        return RedirectResponse(f"{other}{request.url.path}", status_code=307)

    server = serve(Starlette(routes=[Route("/{path:path}", move, methods=["GET", "POST"])]))
    monkeypatch.setenv("CARSTUDIO_SERVER_TOKEN", SERVER_TOKEN)
    result = runner.invoke(app, ["generate", "--make", "Kia", "--server", server])
    assert result.exit_code == 1
    assert "sent the request on to http://localhost:" in _one_line(result.output)
    assert elsewhere == [] and SERVER_TOKEN not in result.output


def test_ctrl_c_leaves_the_batch_running_on_the_server(
    tmp_path: Path, studio_at: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = studio_at()

    def interrupted(self: RemoteStudio, job_id: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(RemoteStudio, "status", interrupted)
    source = _cars_csv(tmp_path, csv_of(CARS[:2]))
    result = runner.invoke(app, ["batch", str(source), "--server", server])
    assert result.exit_code == 130, result.output
    assert "keeps running on the server" in result.output
    assert f"{server}/api/batch/" in result.output


@pytest.mark.parametrize(
    ("status", "body", "headers", "again"),
    [
        # Car Studio past its connection limit: its sentence, and another try.
        (503, {"error": BUSY}, {"Retry-After": "1"}, True),
        # A proxy's own page while Car Studio behind it restarts.
        (502, "<html>Bad Gateway</html>", {}, True),
        # Car Studio's own 503 for a setting to fix: no other try helps.
        (503, {"error": "Set REPLICATE_API_TOKEN."}, {}, False),
    ],
)
def test_a_server_busy_or_restarting_is_tried_again_and_a_refusal_is_not(
    status: int, body: object, headers: dict[str, str], again: bool
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if isinstance(body, dict):
            return httpx.Response(status, json=body, headers=headers)
        return httpx.Response(status, text=str(body), headers=headers)

    remote = RemoteStudio("http://127.0.0.1:8000", transport=httpx.MockTransport(answer))
    with pytest.raises(CarStudioError) as raised:
        remote.status("0" * 32)
    assert isinstance(raised.value, ServerUnreachable) is again
    if isinstance(body, dict):
        assert raised.value.message == body["error"]
