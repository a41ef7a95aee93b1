"""The one place where Car Studio's errors become HTTP answers: `{error, details}` with a 4xx."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from carstudio.errors import (
    BudgetReached,
    CarStudioError,
    ConfigurationError,
    Conflict,
    Expired,
    Failure,
    GenerationError,
    NotFound,
    NotSignedIn,
    StorageUnavailable,
    TooLarge,
    TryLater,
)

log = logging.getLogger(__name__)

_GENERATION_STATUS = {
    Failure.BUDGET_REACHED: 402,
    Failure.SAFETY: 422,
    Failure.INVALID_INPUT: 422,
    Failure.RATE_LIMITED: 429,
    Failure.DEADLINE: 504,
}
_STATUS_WORDS = {
    404: "There is nothing at this address.",
    405: "This address does not accept that method.",
    413: "The upload is too large.",
    415: "This content type is not accepted.",
}


def status_for(error: CarStudioError) -> int:
    if isinstance(error, GenerationError):
        return _GENERATION_STATUS.get(error.failure, 502)
    for cls, status in (
        (NotSignedIn, 401),
        (TryLater, 429),
        (TooLarge, 413),
        (NotFound, 404),
        (Expired, 410),
        (Conflict, 409),
        (ConfigurationError, 503),
        (StorageUnavailable, 507),
        (BudgetReached, 402),
    ):
        if isinstance(error, cls):
            return status
    return 400


def error_body(message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = details
    return body


def validation_details(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic's error list as `{field, message}` items in plain words."""
    details = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ()) if part not in ("body", "query", "path")]
        field = ".".join(loc) or "make"
        message = str(err.get("msg", "is not valid"))
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if err.get("type") == "extra_forbidden":
            message = f"'{field}' is not a field Car Studio knows"
        elif err.get("type") == "missing":
            message = f"{field} is required"
        elif err.get("type") in {"json_invalid", "model_attributes_type", "dict_type"}:
            message = "the body must be a JSON object"
            field = "body"
        details.append({"field": field, "message": message})
    return details


_API_ERROR = "#/components/schemas/ApiError"


def document_error_answers(app: FastAPI) -> None:
    """Make `/openapi.json` say what Car Studio really answers to a malformed request: a 400
    `{error, details}` (see `_invalid` below), not FastAPI's default 422 shape."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                if responses.pop("422", None) is not None and "400" not in responses:
                    responses["400"] = {
                        "description": "The request is not valid; `details` says where.",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ApiError"}
                            }
                        },
                    }
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CarStudioError)
    async def _domain(_: Request, exc: CarStudioError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.warning("%s: %s", type(exc).__name__, exc.message)
        headers: dict[str, str] | None = None
        if isinstance(exc, TooLarge):
            # After a refused upload, close the connection rather than read the rest of it.
            headers = {"Connection": "close"}
        elif isinstance(exc, NotSignedIn):
            headers = {"WWW-Authenticate": 'Bearer realm="Car Studio"'}
        elif isinstance(exc, TryLater):
            headers = {"Retry-After": str(int(exc.retry_after))}
        return JSONResponse(
            error_body(exc.message, exc.details), status_code=status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(list(exc.errors()))
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:3])
        return JSONResponse(
            error_body(f"The request is not valid ({summary}).", details), status_code=400
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) and exc.detail else None
        if message is None or message in {"Not Found", "Method Not Allowed"}:
            message = _STATUS_WORDS.get(exc.status_code, "The request could not be handled.")
        return JSONResponse(error_body(message), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _: ClientDisconnect) -> JSONResponse:
        # A closed tab or a dropped network mid-upload is not a bug: one line, no traceback,
        # and handled here so that it never reaches the 500 handler or the server's own log.
        log.info("client went away during upload (%s %s)", request.method, request.url.path)
        return JSONResponse(
            error_body("The request ended before its body arrived."), status_code=400
        )

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse(
            error_body("Something went wrong inside Car Studio; the error has been logged."),
            status_code=500,
        )
