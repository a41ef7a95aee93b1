"""A Car Studio server's HTTP API, as `carstudio generate` and `carstudio batch` (and its
`--dry-run`) use it with `--server`.

Answers are read with the schemas the server writes them with (`carstudio.web.schemas`), and
every failure becomes a `CarStudioError` whose message is one sentence, the server's own
`{error}` when it sent one. A 400, 413 or 415 is `InvalidInput`, as the same mistake made in
process would be, so the commands keep their exit codes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, SecretStr

from carstudio import __version__
from carstudio.errors import CarStudioError, InvalidInput
from carstudio.jobs.options import BatchOptions
from carstudio.spec import CarSpec
from carstudio.tls import tls_context
from carstudio.web.schemas import BatchAccepted, BatchStatusOut, CarImage, IntakeReportOut

TOKEN_NEEDED = (
    "the server needs a valid API token: create one there with "
    "`carstudio tokens create NAME` and set CARSTUDIO_SERVER_TOKEN"
)
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
GENERATE_TIMEOUT = httpx.Timeout(30.0, connect=10.0, read=360.0)
"""The server holds `POST /api/car-image` open while the image is made; it gives up on an
image after CARSTUDIO_PREDICTION_DEADLINE (300 s by default), so wait a little longer."""

_BAD_INPUT = frozenset({400, 413, 415})
_GATEWAY = frozenset({502, 503, 504})
_ERRNO = re.compile(r"^\[Errno -?\d+\]\s*")
_Answer = TypeVar("_Answer", bound=BaseModel)


class ServerUnreachable(CarStudioError):
    """The server could not be reached or did not answer in time; a later try may work."""


class RemoteStudio:
    """A client of one Car Studio server, sending the API token (if any) to it and nowhere else."""

    def __init__(
        self,
        server: str,
        *,
        token: SecretStr | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        try:
            base = httpx.URL(server.strip().rstrip("/"))
        except httpx.InvalidURL:
            base = httpx.URL()
        if base.scheme not in ("http", "https") or not base.host:
            raise InvalidInput(
                f"--server takes an address like http://127.0.0.1:8000, not {server!r}."
            )
        if base.userinfo:
            raise InvalidInput(
                "--server takes an address without a user name or password; "
                "put the API token in CARSTUDIO_SERVER_TOKEN."
            )
        self.base = base
        headers = {"User-Agent": f"carstudio/{__version__}"}
        secret = token.get_secret_value().strip() if token is not None else ""
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
        self._client = httpx.Client(
            base_url=base,
            headers=headers,
            timeout=TIMEOUT,
            follow_redirects=True,
            event_hooks={"request": [self._same_server]},
            transport=transport,
            verify=tls_context(),
        )

    def __enter__(self) -> RemoteStudio:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def address(self, path: str) -> str:
        """The full address of a path the server named, for a person to open."""
        return str(self._client.build_request("GET", path).url)

    # -- the API ----------------------------------------------------------------------------------

    def generate(
        self,
        car: CarSpec,
        *,
        model: str | None = None,
        fresh: bool = False,
        output: str | None = None,
    ) -> CarImage:
        """Make one image on the server (`POST /api/car-image`); the answer says where it is.
        An identical image made there before is reused at no cost unless `fresh` is set."""
        body: dict[str, Any] = car.model_dump(mode="json")
        if model:
            body["image_model"] = model
        if fresh:
            body["fresh"] = True
        if output:
            body["output"] = output
        response = self._send("POST", "/api/car-image", json=body, timeout=GENERATE_TIMEOUT)
        return self._read(CarImage, response)

    def submit_batch(self, data: bytes, options: BatchOptions) -> BatchAccepted:
        """Start a batch from CSV bytes (`POST /api/car-batch`)."""
        form, files = _csv_upload(data, options)
        if options.name_template:
            form["nameTemplate"] = options.name_template
        if options.output:
            form["output"] = options.output
        form["skipInvalid"] = "true" if options.skip_invalid else "false"
        response = self._send("POST", "/api/car-batch", data=form, files=files)
        return self._read(BatchAccepted, response)

    def validate(self, data: bytes, options: BatchOptions) -> IntakeReportOut:
        """Check CSV bytes and estimate their cost on `options.model`
        (`POST /api/car-batch/validate`); the server starts nothing and spends nothing."""
        form, files = _csv_upload(data, options)
        response = self._send("POST", "/api/car-batch/validate", data=form, files=files)
        return self._read(IntakeReportOut, response)

    def status(self, job_id: str) -> BatchStatusOut:
        """A batch's progress (`GET /api/batch/{id}`)."""
        return self._read(BatchStatusOut, self._send("GET", f"/api/batch/{job_id}"))

    def download(self, url: str, path: Path, *, media_type: str) -> None:
        """Write the file the server serves at `url` to `path`, which appears only when whole.

        `media_type` is what the file must be ("image/" matches any image), so an HTML page
        from a proxy in between never lands in `car.png`.
        """
        partial = path.with_name(f".{path.name}.part")
        try:
            with self._reaching(), self._client.stream("GET", url) as response:
                if not response.is_success:
                    response.read()
                    self._check(response)
                served = response.headers.get("content-type", "").split(";", 1)[0].strip()
                if not served.startswith(media_type):
                    raise CarStudioError(
                        f"the server sent {served or 'a file of no declared type'} from {url} "
                        f"instead of {media_type.rstrip('/')}"
                    )
                path.parent.mkdir(parents=True, exist_ok=True)
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)

    # -- HTTP -------------------------------------------------------------------------------------

    def _same_server(self, request: httpx.Request) -> None:
        # The token belongs to this server: a redirect or a link elsewhere is refused before
        # anything (the Authorization header above all) is sent there.
        url = request.url
        if (url.scheme, url.host, url.port) != (self.base.scheme, self.base.host, self.base.port):
            elsewhere = f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"
            raise CarStudioError(
                f"the server at {self.base} sent the request on to {elsewhere}; Car Studio "
                "talks only to the address given, so use that one with --server if it is right"
            )

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException as exc:
            raise ServerUnreachable(
                f"cannot reach Car Studio at {self.base} (no answer in time)"
            ) from exc
        except httpx.HTTPError as exc:
            reason = _ERRNO.sub("", str(exc)) or type(exc).__name__
            raise ServerUnreachable(f"cannot reach Car Studio at {self.base} ({reason})") from exc

    def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        with self._reaching():
            response = self._client.request(method, path, **options)
        self._check(response)
        return response

    def _check(self, response: httpx.Response) -> None:
        status = response.status_code
        if response.is_success:
            return
        if status == 401:
            raise CarStudioError(TOKEN_NEEDED)
        error, details = _error_of(response)
        if status in _GATEWAY and (error is None or "retry-after" in response.headers):
            # A proxy's own page while Car Studio behind it restarts, or Car Studio at its
            # connection limit: worth another try.
            raise ServerUnreachable(
                error
                or f"cannot reach Car Studio at {self.base} ({status} {response.reason_phrase})"
            )
        message = error or f"the server at {self.base} answered {status} {response.reason_phrase}"
        raise (InvalidInput if status in _BAD_INPUT else CarStudioError)(message, details)

    def _read(self, answer: type[_Answer], response: httpx.Response) -> _Answer:
        try:
            return answer.model_validate(response.json())
        except ValueError as exc:  # not JSON, or not this shape (ValidationError is one too)
            raise CarStudioError(
                f"the server at {self.base} does not answer as Car Studio does at "
                f"{response.url.path}; check the address, and that both run the same version"
            ) from exc


def _csv_upload(
    data: bytes, options: BatchOptions
) -> tuple[dict[str, str], dict[str, tuple[str, bytes, str]]]:
    """The form fields and file part both CSV endpoints take."""
    form = {"imageModel": options.model} if options.model else {}
    if options.fresh:
        form["fresh"] = "true"
    return form, {"file": (options.source_name or "cars.csv", data, "text/csv")}


def _error_of(response: httpx.Response) -> tuple[str | None, list[dict[str, Any]] | None]:
    """The `{error, details}` of an answer, when it has that shape."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return None, None
    details = body.get("details")
    listed = details if isinstance(details, list) else []
    items = [item for item in listed if isinstance(item, dict)]
    return body["error"].strip() or None, items or None
