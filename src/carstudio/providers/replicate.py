"""A thin client for Replicate's HTTP API, for the single-image Google models Car Studio uses.

Written against Replicate's API rather than the official client because that client crashes
on the `aborted` status, returns None for `canceled`, and never retries. Every HTTP call here
is tried at most twice. Replicate has no idempotency key, so a create whose outcome is unknown
(connection lost, timeout, any 5xx) is looked up in the list of recent predictions before it
is sent again: an image is never paid for twice. The token is sent to the API root only.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import math
import re
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, UnidentifiedImageError

from carstudio import __version__
from carstudio.decoding import one_at_a_time
from carstudio.errors import Failure, GenerationError
from carstudio.providers.base import Prediction, StoredImage, check_image_head, publish
from carstudio.providers.models import REPLACEMENT, ImageModel
from carstudio.spec import CarSpec
from carstudio.tls import tls_context

log = logging.getLogger(__name__)

_WAIT_HINT = re.compile(r"~\s*(\d+(?:\.\d+)?)\s*s")
_GONE_WORDS = ("not available", "no longer", "deprecated", "shut down", "retired", "not found")
_SAFETY_WORDS = ("e005", "flagged as sensitive", "safety", "nsfw", "responsible ai")
_CHUNK = 256 * 1024
DEFAULT_BACKOFF = 2.0
MAX_RETRY_WAIT = 90.0
LOOKUP_SKEW = dt.timedelta(seconds=30)
"""How far before our own clock a lost create is looked for: Replicate's clock may differ."""
LOOKUP_PAGES = 5
"""Pages of recent predictions searched for a lost create (100 each, newest first)."""
LOOKUP_ATTEMPTS = 3
MIN_CANCEL_AFTER = 5
"""Replicate's smallest `Cancel-After`, in seconds."""
OUTPUT_REMOVED = (
    "Replicate deleted this image an hour after it was made; retry the row to make a new one."
)


class ApiRootAuth(httpx.Auth):
    """Adds the token to requests for the API root and to no other address.

    Output URLs name other hosts (Replicate's file CDN, or anything a compromised answer
    says), and httpx would send a client-wide header to all of them.
    """

    def __init__(self, token: str, root: str) -> None:
        self._header = f"Bearer {token}"
        self._root = httpx.URL(root)

    def _is_api(self, url: httpx.URL) -> bool:
        root = self._root
        return (
            url.scheme == root.scheme
            and url.host == root.host
            and _port(url) == _port(root)
            and url.path.startswith(root.path.rstrip("/") + "/")
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._is_api(request.url):
            request.headers["Authorization"] = self._header
        else:
            request.headers.pop("Authorization", None)
        yield request


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


class ReplicateProvider:
    """Replicate as a Car Studio provider: create, wait, download, cancel."""

    name = "replicate"

    def __init__(
        self,
        *,
        token: str,
        base_url: str,
        model: ImageModel,
        negative_prompt: str = "",
        safety_filter_level: str = "block_only_high",
        timeout: float = 30.0,
        wait_seconds: int = 60,
        poll_interval: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.model = model.name
        self._model = model
        self._base_url = base_url.rstrip("/")
        self._negative_prompt = negative_prompt
        self._safety = safety_filter_level
        self._timeout = timeout
        self._wait_seconds = wait_seconds
        self._poll_interval = poll_interval
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.Client(
            base_url=f"{self._base_url}/v1",
            auth=ApiRootAuth(token, f"{self._base_url}/v1"),
            headers={"User-Agent": f"carstudio/{__version__}"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            verify=tls_context(),
            follow_redirects=True,
        )

    # -- the provider interface -------------------------------------------------------------

    def input_for(self, *, prompt: str, spec: CarSpec) -> dict[str, Any]:
        """The exact `input` sent for this prompt and car; also used to recognise a lost create."""
        return self._model.build_input(
            prompt=prompt,
            aspect_ratio=spec.aspect_ratio.value,
            negative_prompt=self._negative_prompt,
            safety_filter_level=self._safety,
        )

    def create(self, *, prompt: str, spec: CarSpec, deadline: float | None = None) -> Prediction:
        """Create a prediction, holding the request open (`Prefer: wait`) for a quick finish.

        `deadline` (monotonic) also goes to Replicate as `Cancel-After`, so the prediction is
        stopped there even if this process dies before it can cancel it.
        """
        payload = {"input": self.input_for(prompt=prompt, spec=spec)}
        hold = self._wait_seconds
        headers = {"Prefer": f"wait={hold}"} if hold else {}
        if deadline is not None:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise GenerationError(
                    Failure.DEADLINE, "The row's time ran out before its image was started."
                )
            headers["Cancel-After"] = f"{max(MIN_CANCEL_AFTER, math.ceil(remaining))}s"
        timeout = httpx.Timeout(self._timeout + hold, connect=min(self._timeout, 10.0))
        since = dt.datetime.now(dt.UTC)
        response = self._send(
            "POST",
            f"/models/{self.model}/predictions",
            json=payload,
            headers=headers,
            timeout=timeout,
            recover=lambda: self._find_input(payload["input"], since=since),
        )
        if isinstance(response, Prediction):
            return response
        return self._prediction(response.json())

    def get(self, prediction_id: str) -> Prediction:
        response = self._send("GET", f"/predictions/{prediction_id}")
        assert isinstance(response, httpx.Response)
        return self._prediction(response.json())

    def wait(self, prediction: Prediction, *, deadline: float) -> Prediction:
        """Poll until the output exists; cancel at Replicate once `deadline` passes."""
        delay = self._poll_interval
        while True:
            if prediction.data_removed:
                raise GenerationError(
                    Failure.OUTPUT_REMOVED, OUTPUT_REMOVED, prediction_id=prediction.id
                )
            if prediction.ready:
                return prediction
            if prediction.terminal:
                raise self._ended(prediction)
            remaining = deadline - self._clock()
            if remaining <= 0:
                self.cancel(prediction.id)
                raise GenerationError(
                    Failure.DEADLINE,
                    "The image was not finished in time, so it was cancelled at Replicate.",
                    prediction_id=prediction.id,
                )
            self._sleep(min(delay, remaining))
            delay = min(delay * 1.5, 5.0)
            prediction = self.get(prediction.id)

    def download(self, prediction: Prediction, dest: Path) -> StoredImage:
        """Fetch the output now (Replicate deletes it after an hour) and check it is an image."""
        output = prediction.output or ""
        tmp = dest.with_name(f"{dest.name}.part")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            if output.startswith("data:"):
                self._write_data_uri(output, tmp, prediction.id)
            elif output.startswith(("https:", "http:")):
                self._fetch(output, tmp, prediction.id)
            else:
                raise GenerationError(
                    Failure.BAD_OUTPUT,
                    "Replicate returned no usable image address.",
                    prediction_id=prediction.id,
                )
            suffix, media_type = _verify_image(tmp, prediction.id)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        final = publish(tmp, dest, suffix)
        return StoredImage(path=final, media_type=media_type, size=final.stat().st_size)

    def cancel(self, prediction_id: str) -> None:
        """Ask Replicate to stop; any answer is fine (it may have finished meanwhile)."""
        try:
            self._http.post(f"/predictions/{prediction_id}/cancel")
        except httpx.HTTPError as exc:
            log.warning("cancel of prediction %s was not confirmed: %s", prediction_id, exc)

    def close(self) -> None:
        self._http.close()

    def find_created(
        self, *, prompt: str, spec: CarSpec, since: float, exclude: frozenset[str] = frozenset()
    ) -> Prediction | None:
        """The prediction a lost create made for this car after `since` (epoch seconds), if any."""
        when = dt.datetime.fromtimestamp(since, dt.UTC)
        return self._find_input(
            self.input_for(prompt=prompt, spec=spec), since=when, exclude=exclude
        )

    def _find_input(
        self, input_: dict[str, Any], *, since: dt.datetime, exclude: frozenset[str] = frozenset()
    ) -> Prediction | None:
        """A prediction with exactly this input created after `since`, if Replicate has one.

        Used when a create may have reached Replicate but its answer was lost. None means
        Replicate was asked and has none; a lookup Replicate could not answer raises, because
        "not found" would lead to paying for the image again.
        """
        after = (since - LOOKUP_SKEW).isoformat().replace("+00:00", "Z")
        params: dict[str, str] | None = {"created_after": after}
        url: str | None = "/predictions"
        for _ in range(LOOKUP_PAGES):
            if url is None:
                return None
            page = self._lookup_page(url, params)
            for item in page.get("results") or []:
                if (
                    isinstance(item, dict)
                    and item.get("input") == input_
                    and item.get("model", self.model) == self.model
                    and item.get("id") not in exclude
                ):
                    return self._prediction(item)
            url, params = page.get("next"), None
        log.warning("no lost create found in %d pages of recent predictions", LOOKUP_PAGES)
        return None

    def _lookup_page(self, url: str, params: dict[str, str] | None) -> dict[str, Any]:
        """One page of recent predictions, retried on Replicate's transient faults."""
        problem = "no answer"
        for attempt in range(1, LOOKUP_ATTEMPTS + 1):
            wait = 1.0
            try:
                response = self._http.get(url, params=params)
            except httpx.TransportError as exc:
                problem = _describe(exc)
            else:
                if response.status_code == 200:
                    body = response.json()
                    return body if isinstance(body, dict) else {}
                error = self._http_error(response, "/predictions")
                if not error.retryable:
                    raise error
                problem = f"HTTP {response.status_code}"
                wait = error.retry_after if error.retry_after is not None else wait * attempt
            if attempt < LOOKUP_ATTEMPTS:
                self._sleep(wait)
        raise _transient(
            f"Replicate could not say whether this image was already started ({problem}); "
            "retry the row: it is looked up again before anything is paid for."
        )

    # -- HTTP with one retry ------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        recover: Callable[[], Prediction | None] | None = None,
    ) -> httpx.Response | Prediction:
        """One request, retried once on a transient fault. `recover` finds a lost create."""
        for attempt in (1, 2):
            last = attempt == 2
            try:
                response = self._http.request(
                    method,
                    path,
                    json=json,
                    headers=headers,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Never reached Replicate: safe to send again.
                if last:
                    raise _transient(f"Replicate could not be reached ({_describe(exc)}).") from exc
                self._sleep(1.0)
                continue
            except httpx.TransportError as exc:
                # The request may have arrived; a create is looked up before it is resent.
                if recover is not None and (found := recover()) is not None:
                    log.info("recovered prediction %s after a lost answer", found.id)
                    return found
                if last:
                    raise _transient(f"Replicate did not answer ({_describe(exc)}).") from exc
                self._sleep(1.0)
                continue
            if response.status_code < 400:
                return response
            # A 502/504 can come from a proxy after the prediction was made.
            lost = response.status_code >= 500 and recover is not None
            if lost and recover is not None and (found := recover()) is not None:
                log.info("found prediction %s behind a %d", found.id, response.status_code)
                return found
            error = self._http_error(response, path)
            if last or not error.retryable:
                raise error
            self._sleep(error.retry_after if error.retry_after is not None else 1.0)
        raise AssertionError("unreachable")

    def _http_error(self, response: httpx.Response, path: str) -> GenerationError:
        status = response.status_code
        detail = _problem_detail(response)
        if status == 401:
            return GenerationError(
                Failure.UNAUTHENTICATED,
                "Replicate rejected the API token (401 Unauthenticated). "
                "Check REPLICATE_API_TOKEN.",
            )
        if status == 402:
            return GenerationError(
                Failure.INSUFFICIENT_CREDIT,
                "Replicate says the account is out of credit (402). "
                "Add credit at replicate.com, then retry the failed rows.",
            )
        if status == 404 and path.startswith("/models/"):
            return self._model_gone(detail)
        if status == 404:
            return GenerationError(
                Failure.MODEL_FAILED,
                "Replicate no longer has this prediction (its files are deleted after an hour).",
            )
        if status == 422:
            return GenerationError(
                Failure.INVALID_INPUT, f"Replicate refused the request as invalid: {detail}"
            )
        if status == 429:
            return GenerationError(
                Failure.RATE_LIMITED,
                "Replicate is rate limiting this account; try again in a minute.",
                retry_after=_retry_after(response, detail),
            )
        if status >= 500:
            return _transient(f"Replicate had a server error ({status}).")
        return GenerationError(Failure.MODEL_FAILED, f"Replicate answered {status}: {detail}")

    def _model_gone(self, detail: str) -> GenerationError:
        advice = (
            f"Set CARSTUDIO_MODEL to another supported model, such as {REPLACEMENT}."
            if self.model != REPLACEMENT
            else "Set CARSTUDIO_MODEL to another supported model."
        )
        return GenerationError(
            Failure.MODEL_UNAVAILABLE,
            f"Replicate says the model {self.model} is not available ({detail}). "
            f"Google is retiring its Imagen models. {advice}",
        )

    def _ended(self, prediction: Prediction) -> GenerationError:
        """The error for a prediction that ended without an image."""
        reason = (prediction.error or "").strip()
        lowered = reason.lower()
        pid = prediction.id
        if prediction.status == "succeeded":
            return GenerationError(
                Failure.BAD_OUTPUT, "Replicate finished without an image.", prediction_id=pid
            )
        if prediction.status in {"canceled", "aborted"}:
            word = "cancelled" if prediction.status == "canceled" else "aborted before it started"
            return GenerationError(
                Failure.PREDICTION_CANCELED,
                f"The prediction was {word} at Replicate.",
                prediction_id=pid,
            )
        if any(word in lowered for word in _SAFETY_WORDS):
            return GenerationError(
                Failure.SAFETY,
                "The safety filter refused this image; change the description and try again. "
                f"Replicate said: {reason}",
                prediction_id=pid,
            )
        if any(word in lowered for word in _GONE_WORDS) and "model" in lowered:
            error = self._model_gone(reason)
            error.prediction_id = pid
            return error
        return GenerationError(
            Failure.MODEL_FAILED,
            f"The model could not make this image: {reason.rstrip('.') or 'no reason given'}.",
            prediction_id=pid,
        )

    def _prediction(self, body: dict[str, Any]) -> Prediction:
        output = body.get("output")
        if isinstance(output, list):  # tolerate multi-output shapes; Imagen returns one URI
            output = next((item for item in output if isinstance(item, str)), None)
        return Prediction(
            id=str(body["id"]),
            status=str(body.get("status", "starting")),
            output=output if isinstance(output, str) and output else None,
            error=str(body["error"]) if body.get("error") else None,
            data_removed=body.get("data_removed") is True,
        )

    # -- downloads ------------------------------------------------------------------------------

    def _fetch(self, url: str, tmp: Path, prediction_id: str) -> None:
        for attempt in (1, 2):
            try:
                with self._http.stream("GET", url) as response:
                    if response.status_code == 404:
                        raise GenerationError(
                            Failure.BAD_OUTPUT,
                            "The image at Replicate was gone (404) before it could be downloaded.",
                            prediction_id=prediction_id,
                        )
                    if response.status_code >= 400:
                        raise GenerationError(
                            Failure.BAD_OUTPUT,
                            f"Downloading the image failed ({response.status_code}).",
                            prediction_id=prediction_id,
                        )
                    with tmp.open("wb") as out:
                        first = True
                        for chunk in response.iter_bytes(_CHUNK):
                            if first:
                                check_image_head(chunk)
                                first = False
                            out.write(chunk)
                return
            except httpx.TransportError as exc:
                error = GenerationError(
                    Failure.BAD_OUTPUT,
                    f"Downloading the image was interrupted ({_describe(exc)}).",
                    prediction_id=prediction_id,
                )
            except GenerationError as exc:
                exc.prediction_id = prediction_id
                error = exc
            if attempt == 2:
                raise error
            self._sleep(1.0)

    @staticmethod
    def _write_data_uri(uri: str, tmp: Path, prediction_id: str) -> None:
        header, _, data = uri.partition(",")
        try:
            raw = base64.b64decode(data, validate=True) if header.endswith(";base64") else b""
        except (binascii.Error, ValueError):
            raw = b""
        if not raw:
            raise GenerationError(
                Failure.BAD_OUTPUT,
                "Replicate returned an unreadable inline image.",
                prediction_id=prediction_id,
            )
        check_image_head(raw[:16])
        tmp.write_bytes(raw)


def _verify_image(path: Path, prediction_id: str) -> tuple[str, str]:
    """Check the whole file is an image Pillow can read; return (suffix, media type)."""
    with path.open("rb") as handle:
        suffix, media_type = check_image_head(handle.read(16))
    try:
        # Verifying reads each chunk whole (a large PNG's image data can be one chunk of
        # megabytes): on the decoding thread, so rows downloading side by side do not each
        # hold one.
        one_at_a_time(_verify, path)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise GenerationError(
            Failure.BAD_OUTPUT,
            "The downloaded image is damaged or incomplete.",
            prediction_id=prediction_id,
        ) from exc
    return suffix, media_type


def _verify(path: Path) -> None:
    with Image.open(path) as image:
        image.verify()


def _transient(message: str) -> GenerationError:
    return GenerationError(Failure.TRANSIENT, message)


def _describe(exc: Exception) -> str:
    kind = {
        httpx.ConnectError: "connection refused or reset",
        httpx.ConnectTimeout: "connection timed out",
        httpx.ReadTimeout: "no answer in time",
        httpx.RemoteProtocolError: "connection closed early",
        httpx.ReadError: "connection reset",
    }
    for cls, words in kind.items():
        if isinstance(exc, cls):
            return words
    return type(exc).__name__


def _problem_detail(response: httpx.Response) -> str:
    """The human part of a problem+json body; a short status text when the body is not JSON."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or f"HTTP {response.status_code}"
    if not isinstance(body, dict):
        return str(body)[:200]
    parts = [str(body.get("detail") or body.get("title") or "")]
    for field in body.get("invalid_fields") or []:
        if isinstance(field, dict):
            parts.append(f"{field.get('field', '?')}: {field.get('description', '')}")
    return "; ".join(part for part in parts if part)[:500] or f"HTTP {response.status_code}"


def _retry_after(response: httpx.Response, detail: str) -> float:
    """Seconds to wait before trying again: Retry-After, else the "~30s" hint, else a default."""
    header = response.headers.get("retry-after", "").strip()
    try:
        if header:
            return min(max(float(header), 0.0), MAX_RETRY_WAIT)
    except ValueError:
        pass
    if match := _WAIT_HINT.search(detail):
        return min(float(match.group(1)), MAX_RETRY_WAIT)
    return DEFAULT_BACKOFF
