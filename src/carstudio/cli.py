"""The `carstudio` command: serve the app, make one image, print a CSV template."""

from __future__ import annotations

import functools
import inspect
import shutil
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from carstudio import cli_accounts, cli_usage
from carstudio.config import Settings, keep_files_private
from carstudio.errors import CarStudioError, GenerationError, InvalidInput
from carstudio.jobs.options import BatchOptions
from carstudio.naming import default_template
from carstudio.providers.models import MODELS
from carstudio.spec import REGISTRY, CarSpec

if TYPE_CHECKING:
    from carstudio.remote import RemoteStudio

app = typer.Typer(
    help="Car Studio: photographic car images, one at a time or fifty from a CSV.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(cli_accounts.users, name="users")
app.add_typer(cli_accounts.tokens, name="tokens")
app.command(name="usage")(cli_usage.usage)

PeriodicOption = Annotated[
    bool | None,
    typer.Option(
        "--periodic/--no-periodic",
        help="Sweep expired leases and clean up old files here (one process only).",
        show_default=False,
    ),
]

ReplicateModelOption = Annotated[
    str | None,
    typer.Option(
        help="The image model for this run: " + ", ".join(MODELS) + " (default CARSTUDIO_MODEL).",
        show_default=False,
    ),
]

ServerOption = Annotated[
    str | None,
    typer.Option(
        help="Run on the Car Studio at this address (e.g. http://studio.lan:8000) through its "
        "HTTP API instead of here (default CARSTUDIO_SERVER; '' runs here).",
        show_default=False,
    ),
]

PresetOption = Annotated[
    str | None,
    typer.Option(
        "--preset",
        help="The image files delivered: original (as made), listing-jpeg (1600 px sRGB "
        "JPEG), marketplace-4x3 (1200x900 JPEG) or webp (default: CARSTUDIO_OUTPUT).",
        show_default=False,
    ),
]

FreshOption = Annotated[
    bool,
    typer.Option(
        "--fresh",
        help="Make new images even where an identical request was made before (those are "
        "otherwise reused from the image cache, at no cost).",
    ),
]

EXIT_FAILED = 1
SHUTDOWN_GRACE_SECONDS = 3
EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """One line on stderr, then exit non-zero."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def load_settings(**overrides: object) -> Settings:
    keep_files_private()
    try:
        settings = Settings()
    except ValidationError as exc:
        fail(f"the settings are not valid: {_first_error(exc)}", EXIT_BAD_INPUT)
    update = {key: value for key, value in overrides.items() if value is not None}
    return settings.model_copy(update=update) if update else settings


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(part) for part in err.get("loc", ())) or "car"
    return f"{where}: {str(err['msg']).removeprefix('Value error, ')}"


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    worker: Annotated[
        bool | None,
        typer.Option(
            "--worker/--no-worker",
            help="Run batch rows in this process (off when `carstudio worker` processes run).",
            show_default=False,
        ),
    ] = None,
    periodic: PeriodicOption = None,
) -> None:
    """Serve the Car Creation page and the API (default http://127.0.0.1:8000)."""
    import uvicorn

    from carstudio.logs import configure_logging
    from carstudio.web.app import create_app
    from carstudio.web.limits import server_options

    settings = load_settings(host=host, port=port, embedded_worker=worker, periodic=periodic)
    configure_logging(settings)
    try:
        web = create_app(settings)
    except CarStudioError as exc:
        fail(exc.message, EXIT_BAD_INPUT)
    mode = "offline preview" if settings.provider_name == "preview" else settings.model
    typer.echo(f"Car Studio on http://{settings.host}:{settings.port} ({mode})", err=True)
    # Requests still open after a few seconds (an image mid-generation) do not hold up Ctrl-C.
    uvicorn.run(
        web,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        **server_options(settings),
    )


@app.command(name="worker")
def run_worker(
    threads: Annotated[
        int | None,
        typer.Option(
            help="Rows this worker takes at once (default twice CARSTUDIO_CONCURRENCY, "
            "once with the preview provider)."
        ),
    ] = None,
    periodic: PeriodicOption = None,
) -> None:
    """Work on batch rows from the shared queue until stopped (Ctrl-C or SIGTERM)."""
    import signal
    import threading

    from carstudio.generation import Studio
    from carstudio.jobs.service import BatchService
    from carstudio.logs import configure_logging

    settings = load_settings(periodic=periodic)
    configure_logging(settings)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        studio = Studio(settings)
        batches = BatchService(settings, studio)
        batches.start(workers=True, periodic=settings.periodic, threads=threads)
    except CarStudioError as exc:
        fail(exc.message, EXIT_BAD_INPUT)
    typer.echo(
        f"Car Studio worker {batches.owner} on {settings.queue_url or 'the local queue'} "
        f"({settings.concurrency} images at once across all workers)",
        err=True,
    )
    try:
        stop.wait()
    finally:
        batches.stop()
        studio.close()


def car_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give `command` one option per field of the registry (`--make`, `--vin`, ...); it
    receives them together as `car`, a dict ready for `CarSpec.model_validate`."""
    own = inspect.signature(command, eval_str=True).parameters.values()
    options = []
    for name, field in REGISTRY.items():
        declared = CarSpec.model_fields[name].annotation
        enum = declared if isinstance(declared, type) and issubclass(declared, Enum) else None
        option = (
            typer.Option(help=field.help, case_sensitive=False)
            if enum
            else typer.Option(help=field.help)
        )
        options.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=enum(field.default) if enum else "",
                annotation=Annotated[enum or str, option],
            )
        )
    rest = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own if p.name != "car"]

    @functools.wraps(command)
    def with_car(**given: Any) -> None:
        car = {name: given.pop(name) for name in REGISTRY}
        command(car=car, **given)

    parameters = options + rest
    with_car.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    with_car.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_car


@app.command()
@car_options
def generate(
    car: dict[str, Any],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Where to write the image.")
    ] = Path("car.png"),
    replicate_model: ReplicateModelOption = None,
    server: ServerOption = None,
    fresh: FreshOption = False,
    preset: PresetOption = None,
) -> None:
    """Generate one car image and write it to a file."""
    from carstudio.generation import Studio
    from carstudio.jobs.service import BatchService

    try:
        spec = CarSpec.model_validate(car)
    except ValidationError as exc:
        fail(_first_error(exc), EXIT_BAD_INPUT)
    settings = load_settings()
    server = settings.server_url if server is None else server
    try:
        if server:
            with _remote(settings, server) as remote:
                answer = remote.generate(spec, model=replicate_model, fresh=fresh, output=preset)
                output = _image_file(output, Path(answer.file_name).suffix)
                remote.download(answer.image_url, output, media_type="image/")
            made = _made(output, answer.width, answer.height, answer.model, answer.elapsed_ms)
            cached = answer.cached
            look = answer.checks.sentence if answer.needs_review and answer.checks else None
        else:
            studio = Studio(settings)
            try:
                # The batch engine's store holds the image cache the server uses too.
                batches = BatchService(settings, studio)
                try:
                    image = studio.generate(
                        spec,
                        model=replicate_model,
                        cache=batches.cache,
                        fresh=fresh,
                        output=preset,
                    )
                finally:
                    batches.stop()
            finally:
                studio.close()
            output = _image_file(output, image.path.suffix)
            output.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image.path, output)
            made = _made(output, image.width, image.height, image.model, image.elapsed_ms)
            cached = image.cached
            look = image.checks.sentence if image.checks and image.checks.needs_review else None
    except GenerationError as exc:
        fail(exc.message)
    except CarStudioError as exc:
        fail(exc.message, EXIT_BAD_INPUT if isinstance(exc, InvalidInput) else EXIT_FAILED)
    typer.echo(f"{made}, made before: no charge (--fresh makes a new one)" if cached else made)
    if look:
        typer.echo(f"Check this image: {look}")


def _made(output: Path, width: int, height: int, model: str, elapsed_ms: int) -> str:
    return f"{output} ({width}x{height}, {model}, {elapsed_ms / 1000:.1f} s)"


def _image_file(output: Path, suffix: str) -> Path:
    """`output`, with the image's own suffix added when it does not name an image type."""
    if output.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"}:
        return output
    return output.with_name(output.name + suffix)


def _remote(settings: Settings, server: str) -> RemoteStudio:
    from carstudio.remote import RemoteStudio

    return RemoteStudio(server, token=settings.server_token)


@app.command()
def batch(
    csv_file: Annotated[
        Path, typer.Argument(help="CSV or Excel (.xlsx) file of up to 50 cars.", show_default=False)
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the ZIP.")] = Path(
        "cars.zip"
    ),
    skip_invalid: Annotated[
        bool, typer.Option(help="Run the valid rows and report the invalid ones as failed.")
    ] = False,
    replicate_model: ReplicateModelOption = None,
    server: ServerOption = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Only check the CSV and print what the batch would cost; makes nothing, "
            "spends nothing, needs no token. With --server, the server checks and prices it.",
        ),
    ] = False,
    fresh: FreshOption = False,
    name_template: Annotated[
        str | None,
        typer.Option(
            help="How the images are named, from the car fields, e.g. "
            "'{stock_number}_{make}-{model}' (default: " + default_template() + ").",
            show_default=False,
        ),
    ] = None,
    preset: PresetOption = None,
) -> None:
    """Run a CSV batch here or on a server, with a progress bar; writes a ZIP of images and
    failed_rows.json.

    Exit status: 0 every row done (with --dry-run: the file was checked), 1 some rows failed,
    2 bad input.
    """
    from carstudio.batch_runner import run_batch, run_remote_batch

    try:
        data = csv_file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {csv_file}: {exc.strerror or exc}", EXIT_BAD_INPUT)
    settings = load_settings()
    server = settings.server_url if server is None else server
    options = BatchOptions(
        source_name=csv_file.name,
        skip_invalid=skip_invalid,
        model=replicate_model,
        fresh=fresh,
        name_template=name_template,
        output=preset,
    )
    try:
        if dry_run:
            code = _dry_run(settings, server, data, options)
        elif server:
            _say_what_to_check(data)
            with _remote(settings, server) as remote:
                code = run_remote_batch(remote, data, options, output=output)
        else:
            _say_what_to_check(data)
            code = run_batch(settings, data, options, output=output)
    except InvalidInput as exc:
        details = "; ".join(
            f"row {d['row']} {d.get('column') or ''}: {d['message']}".replace("  ", " ")
            for d in exc.details[:5]
            if "row" in d
        )
        fail(f"{exc.message} {details}".strip(), EXIT_BAD_INPUT)
    except CarStudioError as exc:
        fail(exc.message)
    raise typer.Exit(code)


def _say_what_to_check(data: bytes) -> None:
    """The file's notices (a column chosen over another, a look-alike header, a file barely
    understood) on stderr before the batch runs, as the Batch tab shows them before Start."""
    from carstudio.intake import read_intake

    for notice in read_intake(data).notices:
        typer.echo(f"check: {notice.message}", err=True)


def _dry_run(settings: Settings, server: str | None, data: bytes, options: BatchOptions) -> int:
    """Print the estimate of a batch, here or by the server at `server`; 0 when it was checked."""
    from carstudio.batch_runner import dry_run, dry_run_lines, remote_dry_run

    if server:
        with _remote(settings, server) as remote:
            found = remote_dry_run(remote, data, options)
    else:
        found = dry_run(settings, data, model=options.model)
    if not found.report.valid_count:
        # The batch itself would be refused the same way, so the dry run exits as it would.
        errors = [error.model_dump() for error in found.report.row_errors]
        raise InvalidInput("No row in this file can be generated.", errors)
    for line in dry_run_lines(found, skip_invalid=options.skip_invalid):
        typer.echo(line)
    return 0


@app.command()
def template(
    xlsx: Annotated[
        bool, typer.Option("--xlsx", help="Write an Excel workbook instead of printing a CSV.")
    ] = False,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Where --xlsx writes the workbook.")
    ] = Path("carstudio-template.xlsx"),
) -> None:
    """Print an example batch CSV with every column (or write it as .xlsx with --xlsx)."""
    from carstudio.intake import template_csv, template_xlsx

    if not xlsx:
        sys.stdout.write(template_csv())
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(template_xlsx())
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}", EXIT_BAD_INPUT)
    typer.echo(f"{output} (an Excel template with every column)", err=True)


if __name__ == "__main__":
    app()
