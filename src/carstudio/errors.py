"""Car Studio's domain errors. Each carries a sentence a person understands; the web layer
maps them to HTTP statuses in one place (`carstudio.web.errors`)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class CarStudioError(Exception):
    """Base of every error Car Studio reports to a person."""

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class InvalidInput(CarStudioError):
    """The request or file cannot be used as given."""


class TooLarge(InvalidInput):
    """The upload is bigger than Car Studio accepts."""


class NotFound(CarStudioError):
    """No such job, image or file."""


class Expired(CarStudioError):
    """It existed, but its files were removed after the retention period."""


class Conflict(CarStudioError):
    """The action does not fit the current state (e.g. retrying a running batch)."""


class NotSignedIn(CarStudioError):
    """Sign-in is required and the request carries no valid session or API token."""


class TryLater(CarStudioError):
    """Not now: too many failed sign-ins, or too many images waiting; wait `retry_after` s."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BudgetReached(CarStudioError):
    """Spending the money would pass a budget an operator set; the message names it."""


class StorageUnavailable(CarStudioError):
    """The data directory cannot take images now (full or read-only); the message says which."""


class ClientGone(CarStudioError):
    """The person who asked for a single image left before it was started; nothing is made."""


class ConfigurationError(CarStudioError):
    """The operator's settings cannot work; the message names the setting."""


class Failure(StrEnum):
    """Why a row or an image produced nothing: the one list of failure kinds.

    The value is what `failed_rows.json`, the manifest and the API's `kind` say; the kind
    decides what happens next (retried, batch stopped, offered to retry-failed).
    """

    # The provider refused or failed to make the image.
    UNAUTHENTICATED = "unauthenticated"
    INSUFFICIENT_CREDIT = "insufficient_credit"
    MODEL_UNAVAILABLE = "model_unavailable"
    INVALID_INPUT = "invalid_input"
    SAFETY = "safety"
    MODEL_FAILED = "model_failed"
    PREDICTION_CANCELED = "prediction_canceled"
    """Cancelled or aborted at Replicate, by someone else or by its own deadline."""
    DEADLINE = "deadline"
    RATE_LIMITED = "rate_limited"
    TRANSIENT = "transient"
    BAD_OUTPUT = "bad_output"
    OUTPUT_REMOVED = "output_removed"
    """Replicate deleted the finished image (an hour after it was made) before it was fetched."""
    # Car Studio decided the row would not run, or could not finish it.
    INVALID_ROW = "invalid_row"
    """The CSV row's values were not valid, so it never ran."""
    CANCELED = "canceled"
    """The person cancelled the batch before this row started."""
    BATCH_STOPPED = "batch_stopped"
    """Another row met a fault every row would meet (say, no credit), so this one never ran."""
    INTERNAL = "internal"
    """Car Studio itself failed; the error is logged."""
    BUDGET_REACHED = "budget_reached"
    """Making the image would pass the month's budget (CARSTUDIO_BUDGET_MONTHLY)."""


RETRYABLE = frozenset({Failure.RATE_LIMITED, Failure.TRANSIENT, Failure.BAD_OUTPUT})
"""Faults worth one more attempt: the next try may well succeed."""

FATAL_FOR_BATCH = frozenset(
    {
        Failure.UNAUTHENTICATED,
        Failure.INSUFFICIENT_CREDIT,
        Failure.MODEL_UNAVAILABLE,
        Failure.BUDGET_REACHED,
    }
)
"""Faults that every remaining row would hit too: stop the batch instead of paying to learn it."""

MADE_ANEW = frozenset(
    {
        Failure.SAFETY,
        Failure.MODEL_FAILED,
        Failure.PREDICTION_CANCELED,
        Failure.DEADLINE,
        Failure.OUTPUT_REMOVED,
    }
)
"""The prediction ended at Replicate without an image we can still fetch: retrying the row
means a new one. Any other failed row that has a prediction id resumes it, never pays again."""

NOT_RETRIED = frozenset({Failure.INVALID_ROW, Failure.CANCELED})
"""Rows that retry-failed leaves alone: their values must change first, or the person chose."""

NEVER_CREATED = frozenset(
    {
        Failure.UNAUTHENTICATED,
        Failure.INSUFFICIENT_CREDIT,
        Failure.MODEL_UNAVAILABLE,
        Failure.INVALID_INPUT,
        Failure.RATE_LIMITED,
        Failure.DEADLINE,
        Failure.BUDGET_REACHED,
    }
)
"""Create failures that leave no prediction behind (a transient one may have made one)."""


class GenerationError(CarStudioError):
    """The image provider could not make this image."""

    def __init__(
        self,
        failure: Failure,
        message: str,
        *,
        retry_after: float | None = None,
        prediction_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.failure = failure
        self.retry_after = retry_after
        self.prediction_id = prediction_id

    @property
    def retryable(self) -> bool:
        return self.failure in RETRYABLE

    @property
    def surely_not_created(self) -> bool:
        """Replicate refused the create, or it was never sent: nothing to pay for."""
        return self.prediction_id is None and self.failure in NEVER_CREATED

    @property
    def fatal_for_batch(self) -> bool:
        return self.failure in FATAL_FOR_BATCH
