"""The small interface every image provider offers, and the image checks they share."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from carstudio.errors import Failure, GenerationError
from carstudio.spec import CarSpec

TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})

# Leading bytes of the image kinds a model may return, and the suffix each is stored under.
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png", "image/png"),
    (b"\xff\xd8\xff", "jpg", "image/jpeg"),
)


@dataclass
class Prediction:
    """A provider's handle on one image being made; mirrors Replicate's prediction object."""

    id: str
    status: str
    output: str | None = None
    error: str | None = None
    data_removed: bool = False
    """Replicate deleted the inputs and outputs (an hour after the prediction was made)."""

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def ready(self) -> bool:
        """Output present: done for a single-image model, even if the status has not flipped yet."""
        return bool(self.output) and self.status not in {"failed", "canceled", "aborted"}


@dataclass(frozen=True)
class StoredImage:
    path: Path
    media_type: str
    size: int


class Provider(Protocol):
    """Makes one image in three steps, so a caller can record progress between them."""

    name: str
    model: str

    def input_for(self, *, prompt: str, spec: CarSpec) -> dict[str, Any]:
        """Everything that decides the image: the same input makes the same request."""
        ...

    def create(self, *, prompt: str, spec: CarSpec, deadline: float | None = None) -> Prediction:
        """Start making an image; the returned prediction has an id from this moment on.

        `deadline` (time.monotonic) is when the image must be finished or given up.
        """
        ...

    def get(self, prediction_id: str) -> Prediction: ...

    def wait(self, prediction: Prediction, *, deadline: float) -> Prediction:
        """Block until the image is ready (by monotonic `deadline`), else raise GenerationError."""
        ...

    def download(self, prediction: Prediction, dest: Path) -> StoredImage:
        """Store the image at `dest` with the right suffix added; check it is an image."""
        ...

    def cancel(self, prediction_id: str) -> None: ...

    def find_created(
        self, *, prompt: str, spec: CarSpec, since: float, exclude: frozenset[str] = frozenset()
    ) -> Prediction | None:
        """The prediction an earlier create for this car made after `since`, if it can be found."""
        ...

    def close(self) -> None: ...


def image_kind(head: bytes) -> tuple[str, str] | None:
    """(suffix, media type) for PNG, JPEG or WebP leading bytes, else None."""
    for signature, suffix, media_type in _SIGNATURES:
        if head.startswith(signature):
            return suffix, media_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp", "image/webp"
    return None


def check_image_head(head: bytes) -> tuple[str, str]:
    kind = image_kind(head)
    if kind is None:
        raise GenerationError(
            Failure.BAD_OUTPUT,
            "The provider returned a file that is not a PNG, JPEG or WebP image.",
        )
    return kind


def publish(tmp: Path, dest: Path, suffix: str) -> Path:
    """Move a finished download into place atomically, so a crash never leaves half an image."""
    final = dest.with_name(f"{dest.name}.{suffix}")
    os.replace(tmp, final)
    return final
