"""A local fake of Replicate's HTTP API for Google's image models, served on loopback.

It speaks the parts of the API a client of `google/imagen-*` and `google/nano-banana*` uses:
bearer-token auth, per-model input validation, the prediction lifecycle on a configurable
clock, `Prefer: wait[=N]`, `Cancel-After`, get/cancel/list, and the output files themselves
(real PNG or JPEG bytes of the requested aspect ratio). Tests script faults per request
(throttling, 5xx, connection resets, stalls, failed or odd predictions, broken downloads) and
read back what clients did: every request, every creation, the peak number of predictions
in flight.

Run it as a process with `python -m tests.fakes.replicate --port 8787`; line 1 of stdout is
the base URL. A process-mode fake is scripted over `/_fake/*` (see `_Handler._control`).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import hashlib
import io
import json
import math
import re
import secrets
import signal
import socket
import socketserver
import string
import struct
import sys
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from PIL import Image, ImageDraw

from carstudio.quality.paints import paint_table

__all__ = [
    "CREATE_FAULTS",
    "FAULT_KINDS",
    "FILE_FAULTS",
    "IMAGE_FAULTS",
    "MODELS",
    "OUTCOME_FAULTS",
    "POLL_FAULTS",
    "SAFETY_ERROR",
    "FakeReplicate",
    "ModelSpec",
    "RequestRecord",
]

SAFETY_ERROR = (
    "The input or output was flagged as sensitive. Please try again with different inputs. (E005)"
)
TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
# Share of the latency a prediction spends `starting` before it turns `processing`.
STARTING_SHARE = 0.2
MAX_WAIT = 60
WEBHOOK_EVENTS = frozenset({"start", "output", "logs", "completed"})

CREATE_FAULTS = frozenset(
    {
        "rate_limit",
        "insufficient_credit",
        "unauthenticated",
        "server_error_500",
        "server_error_502",
        "server_error_503",
        "server_error_504",
        "non_json_5xx",
        "reset",
        "stall",
        "model_gone",
        # The prediction is made, then the answer is lost behind a 5xx from a proxy.
        "created_then_502",
        "created_then_504",
    }
)
OUTCOME_FAULTS = frozenset(
    {
        "safety",
        "failed",
        "canceled",
        "aborted",
        "processing_with_output",
        "data_uri",
        "never_finishes",
    }
)
POLL_FAULTS = frozenset({"poll_500", "poll_reset"})
FILE_FAULTS = frozenset({"output_404", "truncated", "not_image"})
LIST_FAULTS = frozenset({"list_rate_limit", "list_500"})
# Pictures that succeed but are wrong for the prompt, as a model sometimes draws them.
IMAGE_FAULTS = frozenset({"wrong_colour", "grey_background", "wrong_aspect", "blank", "duplicate"})
FAULT_KINDS: dict[str, str] = {
    **dict.fromkeys(LIST_FAULTS, "list"),
    **dict.fromkeys(CREATE_FAULTS, "create"),
    **dict.fromkeys(OUTCOME_FAULTS, "outcome"),
    **dict.fromkeys(POLL_FAULTS, "poll"),
    **dict.fromkeys(FILE_FAULTS, "file"),
}
# Pictures are scripted like faults, though the prediction succeeds.
_PHASES = {**FAULT_KINDS, **dict.fromkeys(IMAGE_FAULTS, "image")}

# How each outcome ends when nothing (a cancel, a deadline) stops it first.
_NATURAL_STATUS: dict[str | None, str] = {
    None: "succeeded",
    "data_uri": "succeeded",
    "processing_with_output": "succeeded",
    "safety": "failed",
    "failed": "failed",
    "canceled": "canceled",
    "aborted": "aborted",
}
_SERVER_ERROR_TITLES = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_INSUFFICIENT_CREDIT = (
    "You have insufficient credit to run this model. Go to "
    "https://replicate.com/account/billing#billing to purchase credit. Once you purchase "
    "credit, please wait a few minutes before trying again."
)
_ID_ALPHABET = string.ascii_lowercase + string.digits
_MIME = {"png": "image/png", "jpg": "image/jpeg"}
_CHUNK = 64 * 1024


# The sizes each family draws, by aspect ratio; served images keep these proportions at 1/8 of
# the size. Imagen 3's native sizes; the Gemini image models' 1K sizes (Google's documentation).
_IMAGEN3_SIZES = {
    "1:1": (1024, 1024),
    "4:3": (1280, 896),
    "3:4": (896, 1280),
    "16:9": (1408, 768),
    "9:16": (768, 1408),
}
_GEMINI_SIZES = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}


@dataclass(frozen=True)
class ModelSpec:
    """The inputs one model takes: allowed keys and the closed sets some of them draw from."""

    inputs: frozenset[str]
    enums: Mapping[str, tuple[str, ...]]
    default_format: str = "png"
    sizes: Mapping[str, tuple[int, int]] = field(default_factory=lambda: _IMAGEN3_SIZES)
    """The pixel size drawn for each aspect ratio (others: a square's area at that ratio)."""


_IMAGEN_RATIOS = ("1:1", "9:16", "16:9", "3:4", "4:3")
_GEMINI_RATIOS = (
    "match_input_image",
    "1:1",
    "2:3",
    "3:2",
    "3:4",
    "4:3",
    "4:5",
    "5:4",
    "9:16",
    "16:9",
    "21:9",
)
_SAFETY_LEVELS = ("block_low_and_above", "block_medium_and_above", "block_only_high")
_FORMATS = ("jpg", "png")
_IMAGEN4 = ModelSpec(
    frozenset({"prompt", "aspect_ratio", "safety_filter_level", "output_format"}),
    {
        "aspect_ratio": _IMAGEN_RATIOS,
        "safety_filter_level": _SAFETY_LEVELS,
        "output_format": _FORMATS,
    },
    default_format="jpg",
)

MODELS: dict[str, ModelSpec] = {
    "google/imagen-3": ModelSpec(
        frozenset({"prompt", "negative_prompt", "aspect_ratio", "safety_filter_level"}),
        {"aspect_ratio": _IMAGEN_RATIOS, "safety_filter_level": _SAFETY_LEVELS},
    ),
    "google/imagen-3-fast": ModelSpec(
        frozenset({"prompt", "aspect_ratio", "safety_filter_level"}),
        {"aspect_ratio": _IMAGEN_RATIOS, "safety_filter_level": _SAFETY_LEVELS},
    ),
    "google/imagen-4": _IMAGEN4,
    "google/imagen-4-fast": _IMAGEN4,
    "google/imagen-4-ultra": _IMAGEN4,
    "google/nano-banana": ModelSpec(
        frozenset({"prompt", "image_input", "aspect_ratio", "output_format"}),
        {"aspect_ratio": _GEMINI_RATIOS, "output_format": _FORMATS},
        sizes=_GEMINI_SIZES,
    ),
    "google/nano-banana-2": ModelSpec(
        frozenset(
            {
                "prompt",
                "image_input",
                "aspect_ratio",
                "resolution",
                "google_search",
                "image_search",
                "output_format",
            }
        ),
        {
            "aspect_ratio": (*_GEMINI_RATIOS, "1:4", "1:8", "4:1", "8:1"),
            "resolution": ("1K", "2K", "4K"),
            "output_format": _FORMATS,
        },
        default_format="jpg",
        sizes=_GEMINI_SIZES,
    ),
    "google/nano-banana-2-lite": ModelSpec(
        frozenset({"prompt", "aspect_ratio", "output_format"}),
        {"aspect_ratio": _GEMINI_RATIOS, "output_format": _FORMATS},
        default_format="jpg",
        sizes=_GEMINI_SIZES,
    ),
    "google/nano-banana-pro": ModelSpec(
        frozenset(
            {
                "prompt",
                "image_input",
                "aspect_ratio",
                "resolution",
                "output_format",
                "safety_filter_level",
            }
        ),
        {
            "aspect_ratio": _GEMINI_RATIOS,
            "resolution": ("1K", "2K", "4K"),
            "output_format": _FORMATS,
            "safety_filter_level": _SAFETY_LEVELS,
        },
        sizes=_GEMINI_SIZES,
    ),
}


@dataclass
class RequestRecord:
    """One request as the fake received it.

    `path` excludes the query string, kept raw in `query`. `headers` has lowercase names;
    an Authorization header carrying the right token reads "<redacted>". `body` is the
    parsed JSON body or None. `time` is `time.monotonic()` on arrival. `status` is None
    when no response was sent (a reset or a stall).
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    authorized: bool
    body: Any
    time: float
    status: int | None = None


@dataclass
class _Fault:
    kind: str
    when: str | Callable[[dict[str, Any]], bool] | None
    times: int
    retry_after: float | None
    stall: float
    message: str | None

    @property
    def phase(self) -> str:
        return _PHASES[self.kind]

    def matches(self, prediction_input: dict[str, Any]) -> bool:
        if self.when is None:
            return True
        if isinstance(self.when, str):
            prompt = prediction_input.get("prompt")
            return isinstance(prompt, str) and self.when in prompt
        return bool(self.when(prediction_input))


@dataclass(eq=False)
class _Prediction:
    """A prediction whose status is a pure function of the monotonic clock.

    Transitions are computed on read rather than by timers, so no thread has to drive
    them and every observer agrees on the state at a given instant.
    """

    id: str
    seq: int
    model: str
    input: dict[str, Any]
    created: float
    created_wall: datetime
    latency: float
    outcome: str | None
    message: str | None
    fmt: str
    aspect_ratio: str
    retention: float
    stop_at: float | None = None
    stop_status: str = "canceled"
    picture: str | None = None
    """A scripted wrong picture (one of IMAGE_FAULTS), or None for the one the prompt asks."""
    drawn_input: dict[str, Any] | None = None
    """The input whose picture this prediction shows: its own, or another's for a duplicate."""
    drawn_picture: str | None = None
    """The scripted picture it shows: its own, or, for a duplicate, the one it copies."""

    @property
    def start_at(self) -> float | None:
        if self.outcome == "aborted":
            return None
        return self.created + STARTING_SHARE * self.latency

    @property
    def output_at(self) -> float | None:
        if self.outcome in (None, "data_uri", "processing_with_output"):
            return self.created + self.latency
        return None

    @property
    def natural_end(self) -> float | None:
        if self.outcome == "never_finishes":
            return None
        if self.outcome == "processing_with_output":
            return self.created + 2 * self.latency
        return self.created + self.latency

    @property
    def end_at(self) -> float | None:
        ends = [t for t in (self.natural_end, self.stop_at) if t is not None]
        return min(ends) if ends else None

    def stopped(self, now: float) -> bool:
        natural = self.natural_end
        return (
            self.stop_at is not None
            and now >= self.stop_at
            and (natural is None or self.stop_at < natural)
        )

    def status(self, now: float) -> str:
        if self.stopped(now):
            return self.stop_status
        end = self.end_at
        if end is not None and now >= end:
            return _NATURAL_STATUS[self.outcome]
        start = self.start_at
        if start is not None and now >= start and (self.stop_at is None or start < self.stop_at):
            return "processing"
        return "starting"

    def has_output(self, now: float) -> bool:
        out = self.output_at
        return (
            out is not None
            and now >= out
            and self.status(now) in ("processing", "succeeded")
            and not self.removed(now)
        )

    def removed(self, now: float) -> bool:
        return now >= self.created + self.retention

    def next_change(self, now: float) -> float | None:
        times = (self.start_at, self.output_at, self.end_at, self.created + self.retention)
        upcoming = [t for t in times if t is not None and t > now]
        return min(upcoming) if upcoming else None

    def wall(self, t: float) -> str:
        return _rfc3339(self.created_wall + timedelta(seconds=t - self.created))


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _field_error(kind: str, field_name: str, description: str) -> dict[str, str]:
    return {"type": kind, "field": field_name, "description": description}


def _validate_body(body: dict[str, Any], allowed: frozenset[str]) -> list[dict[str, str]]:
    """Top-level body checks shared by both create endpoints."""
    errors = [
        _field_error(
            "additional_property_not_allowed", "(root)", f"Additional property {key} is not allowed"
        )
        for key in sorted(body)
        if key not in allowed
    ]
    webhook = body.get("webhook")
    if "webhook" in body and not (
        isinstance(webhook, str) and webhook.startswith(("https://", "http://"))
    ):
        errors.append(_field_error("format", "webhook", "webhook must be an http(s) URL"))
    events = body.get("webhook_events_filter")
    if "webhook_events_filter" in body and not (
        isinstance(events, list) and all(e in WEBHOOK_EVENTS for e in events)
    ):
        choices = ", ".join(f'"{e}"' for e in sorted(WEBHOOK_EVENTS))
        errors.append(
            _field_error(
                "enum",
                "webhook_events_filter",
                f"webhook_events_filter items must be one of the following: {choices}",
            )
        )
    return errors


def _validate_input(spec: ModelSpec, value: Any) -> list[dict[str, str]]:
    """Check a prediction's `input` against one model, the way Replicate's schema check does."""
    if value is None:
        return [_field_error("required", "(root)", "input is required")]
    if not isinstance(value, dict):
        return [
            _field_error(
                "invalid_type",
                "input",
                f"Invalid type. Expected: object, given: {_json_type(value)}",
            )
        ]
    errors: list[dict[str, str]] = []
    prompt = value.get("prompt")
    if prompt is None or prompt == "":
        errors.append(_field_error("required", "input", "prompt is required"))
    for key in ("prompt", "negative_prompt"):
        if key in value and value[key] is not None and not isinstance(value[key], str):
            errors.append(
                _field_error(
                    "invalid_type",
                    f"input.{key}",
                    f"Invalid type. Expected: string, given: {_json_type(value[key])}",
                )
            )
    for key in sorted(value):
        if key not in spec.inputs:
            # Real models often ignore unknown keys; refusing them catches a client that
            # sends a model inputs it does not take.
            errors.append(
                _field_error(
                    "additional_property_not_allowed",
                    "input",
                    f"Additional property {key} is not allowed",
                )
            )
    for key, choices in spec.enums.items():
        if key in value and value[key] not in choices:
            listed = ", ".join(f'"{c}"' for c in choices)
            errors.append(
                _field_error(
                    "enum",
                    f"input.{key}",
                    f"input.{key} must be one of the following: {listed}",
                )
            )
    if "image_input" in value and "image_input" in spec.inputs:
        images = value["image_input"]
        if not isinstance(images, list) or not all(
            isinstance(u, str) and u.startswith(("https://", "http://", "data:")) for u in images
        ):
            errors.append(
                _field_error(
                    "invalid_type", "input.image_input", "image_input must be an array of URIs"
                )
            )
    return errors


def _problem_detail(errors: list[dict[str, str]]) -> str:
    return "".join(f"- {e['field']}: {e['description']}\n" for e in errors)


def _parse_prefer(value: str | None) -> tuple[float | None, str | None]:
    """Seconds to hold the create response (None: answer at once), or an error message."""
    if not value:
        return None, None
    for token in value.split(","):
        token = token.strip().lower()
        if token == "wait":
            return float(MAX_WAIT), None
        if token.startswith("wait="):
            raw = token.removeprefix("wait=").strip()
            if not raw.isdigit() or not 1 <= int(raw) <= MAX_WAIT:
                return None, f"Prefer: wait=N takes a whole number of seconds from 1 to {MAX_WAIT}"
            return float(raw), None
    return None, None


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _parse_duration(value: str) -> float | None:
    """A Go-style duration ("5m", "1h30m", "90s", "1.5s") in seconds, or None if malformed."""
    value = value.strip()
    if not value or _DURATION_PART.sub("", value):
        return None
    return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(value))


def _dimensions(
    aspect_ratio: str, image_bytes: int, sizes: Mapping[str, tuple[int, int]] = _IMAGEN3_SIZES
) -> tuple[int, int]:
    """Pixel size for a ratio: the model's size scaled down, or up to fill `image_bytes`."""
    if aspect_ratio in sizes:
        width, height = sizes[aspect_ratio]
    else:
        a, _, b = aspect_ratio.partition(":")
        ratio = int(a) / int(b) if a.isdigit() and b.isdigit() else 1.0
        width, height = 1024 * math.sqrt(ratio), 1024 / math.sqrt(ratio)
    # Stored uncompressed, an RGB image of bytes/3 pixels is about that big.
    scale = math.sqrt(image_bytes / 3 / (width * height)) if image_bytes > 0 else 1 / 8
    return max(1, round(width * scale)), max(1, round(height * scale))


_WHITE_STUDIO = (252, 252, 252)
_GREY_STUDIO = (190, 190, 190)
_SHOWROOM_WALL, _SHOWROOM_FLOOR = (58, 62, 70), (96, 100, 108)
_NO_COLOUR = (128, 132, 138)
_WRONG_COLOURS = ((31, 79, 160), (176, 27, 34))  # blue, or red when blue was asked
_SUPERSAMPLE_EDGE = 400


def _asked_colour(prompt: str) -> tuple[int, int, int]:
    """The paint the prompt's first clause names (where Car Studio's templates put the car)."""
    paint = paint_table().find(prompt.split(",")[0])
    return paint.rgb if paint is not None else _NO_COLOUR


def _draw_car(size: tuple[int, int], prompt: str, picture: str | None) -> Image.Image:
    """What a faithful model draws for a Car Studio prompt: the car in the colour it names,
    on a white studio or in a showroom; its proportions follow the prompt, so two cars never
    share a picture. `picture` scripts a wrong one."""
    width, height = size
    if picture == "blank":
        return Image.new("RGB", size, (238, 238, 238))
    seed = hashlib.sha256(prompt.encode()).digest()
    scale = max(1, min(2, _SUPERSAMPLE_EDGE // max(size)))  # smooth edges on small images
    big_w, big_h = width * scale, height * scale
    hub = "showroom" in prompt.lower()
    backdrop = _SHOWROOM_WALL if hub else _WHITE_STUDIO
    if picture == "grey_background":
        backdrop = _GREY_STUDIO
    image = Image.new("RGB", (big_w, big_h), backdrop)
    draw = ImageDraw.Draw(image)
    if hub and picture != "grey_background":
        floor = int(big_h * 0.68)
        draw.rectangle((0, floor, big_w, big_h), fill=_SHOWROOM_FLOOR)
        step = max(big_w // (4 + seed[3] % 4), 1)
        for x in range(seed[3] % step, big_w, step):
            draw.line((x, 0, x, floor), fill=(76, 82, 92), width=max(1, scale * 2))
    paint = _asked_colour(prompt)
    if picture == "wrong_colour":
        paint = max(
            _WRONG_COLOURS, key=lambda c: sum((a - b) ** 2 for a, b in zip(c, paint, strict=True))
        )
    unit = min(big_w / 8.5, big_h / 5.6)
    half = 2.4 + seed[0] / 255 * 1.0
    roof = 1.9 + seed[1] / 255 * 0.9
    cx = big_w / 2 + (seed[2] / 255 - 0.5) * 3.0 * unit
    base = big_h * (0.70 + seed[3] / 255 * 0.08)
    lean = seed[4] / 255 * 1.2 - 0.6  # where the roof sits along the body
    wheel = 0.5 + seed[5] / 255 * 0.15
    draw.rounded_rectangle(
        (cx - half * unit, base - 1.5 * unit, cx + half * unit, base - 0.3 * unit),
        radius=int(unit * 0.4),
        fill=paint,
    )
    cabin = [
        (cx + (lean - 1.9) * unit, base - 1.5 * unit),
        (cx + (lean - 1.1) * unit, base - roof * unit),
        (cx + (lean + 1.2) * unit, base - roof * unit),
        (cx + (lean + 2.1) * unit, base - 1.5 * unit),
    ]
    draw.polygon(cabin, fill=paint)
    # Side trim in a pattern of the prompt's own: a second car of one shape still differs.
    # It contrasts in brightness with the paint, which is all a perceptual hash sees.
    bright = (paint[0] * 299 + paint[1] * 587 + paint[2] * 114) // 1000 > 110
    trim = (40, 40, 44) if bright else (225, 225, 230)
    for n in range(8):
        if seed[6] >> n & 1:
            left = cx + (n / 8 * 2 - 1) * (half - 0.5) * unit
            draw.rectangle(
                (left, base - 1.0 * unit, left + 0.5 * unit, base - 0.55 * unit), fill=trim
            )
    glass = [(x * 0.8 + cx * 0.2, y + 0.15 * unit) for x, y in cabin[1:3]] + [
        (cx + (lean + 1.5) * unit, base - 1.6 * unit),
        (cx + (lean - 1.3) * unit, base - 1.6 * unit),
    ]
    draw.polygon(glass, fill=(150, 175, 200))
    for wheel_x in (cx - (half - 1.2) * unit, cx + (half - 1.2) * unit):
        draw.ellipse(
            (
                wheel_x - wheel * unit,
                base - (0.3 + wheel) * unit,
                wheel_x + wheel * unit,
                base + (wheel - 0.3) * unit,
            ),
            fill=(22, 22, 24),
        )
    return image.resize(size, Image.Resampling.BOX) if scale > 1 else image


PNG_PAD_CHUNK = 65536
"""Padding goes in chunks of at most this many bytes, as encoders split a large image's data
(Pillow writes 64 KiB IDAT chunks, libpng 8 KiB): decoders read a chunk at a time."""


def _pad_png(data: bytes, target: int) -> bytes:
    """Grow a PNG to about `target` bytes with private ancillary chunks that decoders skip."""
    # "caRs": lowercase 1st/2nd letters = ancillary and private; uppercase 3rd as the spec
    # requires; lowercase 4th = safe to copy.
    kind = b"caRs"
    chunks = []
    missing = target - len(data)
    while missing > 12:
        payload = bytes(min(PNG_PAD_CHUNK, missing - 12))
        chunks.append(
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload))
        )
        missing -= len(payload) + 12
    ihdr_end = 8 + 25
    return data[:ihdr_end] + b"".join(chunks) + data[ihdr_end:]


def _pad_jpeg(data: bytes, target: int) -> bytes:
    """Grow a JPEG to about `target` bytes with comment segments after the SOI marker."""
    segments: list[bytes] = []
    remaining = target - len(data)
    while remaining > 4:
        size = min(65533, remaining - 4)
        segments.append(b"\xff\xfe" + struct.pack(">H", size + 2) + bytes(size))
        remaining -= size + 4
    return data[:2] + b"".join(segments) + data[2:]


def _render(
    aspect_ratio: str,
    fmt: str,
    image_bytes: int,
    prompt: str = "",
    picture: str | None = None,
    sizes: Mapping[str, tuple[int, int]] = _IMAGEN3_SIZES,
) -> bytes:
    if picture == "wrong_aspect":
        aspect_ratio = "16:9" if aspect_ratio == "1:1" else "1:1"
    image = _draw_car(_dimensions(aspect_ratio, image_bytes, sizes), prompt, picture)
    buffer = io.BytesIO()
    if fmt == "jpg":
        image.save(buffer, "JPEG", quality=90)
        data = buffer.getvalue()
        return _pad_jpeg(data, image_bytes) if image_bytes > 0 else data
    # A photograph's bytes are its image data, which a decoder streams through. Drawn flat,
    # this picture would compress to a few KB; stored uncompressed, its image data is about
    # `image_bytes` (it has bytes/3 pixels), and the padding only tops it up.
    image.save(buffer, "PNG", compress_level=0 if image_bytes > 0 else 1)
    data = buffer.getvalue()
    return _pad_png(data, image_bytes) if image_bytes > 0 else data


class FakeReplicate:
    """A scriptable Replicate API on loopback. Use as a context manager or start()/stop().

    `latency` is the seconds from creation to the end of a prediction (`starting` for the
    first 20 %, then `processing`). Each prediction takes the value current at its creation,
    so changing it later affects only later predictions. `image_bytes` > 0 pads output files
    to about that size (still valid images) for benchmarks. After `retention` seconds a
    prediction's data is removed, as Replicate does after an hour.
    """

    def __init__(
        self,
        *,
        token: str = "r8_fake_token",
        latency: float = 0.05,
        host: str = "127.0.0.1",
        port: int = 0,
        image_bytes: int = 0,
        retention: float = 3600.0,
        files_host: str | None = None,
        download_delay: float = 0.0,
    ) -> None:
        self.token = token
        self.download_delay = download_delay
        """Seconds each output file takes to start arriving, as from a distant file host."""
        self.files_host = files_host
        """Serve output files from this other loopback address (say 127.0.0.2), as Replicate
        serves them from its delivery host, not from the API's."""
        self.latency = latency
        self.host = host
        self.port = port
        self.image_bytes = image_bytes
        self.retention = retention
        self.page_size = 100
        """Results per page of `GET /v1/predictions`."""
        self.min_cancel_after = 5.0
        """Smallest `Cancel-After` accepted (Replicate's documented minimum)."""
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._images: dict[tuple[str, str, str, str], bytes] = {}
        self._images_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._files_server: _Server | None = None
        self._clear()

    def _clear(self) -> None:
        self._faults: list[_Fault] = []
        self._creations: list[dict[str, Any]] = []
        self._predictions: dict[str, _Prediction] = {}
        self._active: dict[str, _Prediction] = {}
        self._peak = 0
        self._seq = 0
        self._requests: list[RequestRecord] = []
        self._window_start = time.monotonic()
        self._window_counts = {"create": 0, "other": 0}

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """`http://host:port`, without `/v1`."""
        if self._server is None and self.port == 0:
            raise RuntimeError("the fake picks its port on start(); read base_url after it")
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeReplicate:
        """Bind and serve in a background thread; returns self."""
        if self._server is not None:
            raise RuntimeError("already started")
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"fake-replicate-{self.port}",
            daemon=True,
        )
        self._thread.start()
        if self.files_host is not None:
            self._files_server = _Server((self.files_host, 0), self)
            threading.Thread(
                target=self._files_server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name=f"fake-replicate-files-{self.port}",
                daemon=True,
            ).start()
        return self

    @property
    def files_url(self) -> str:
        """Where output files are served: the API's own address unless `files_host` is set."""
        if self._files_server is None:
            return self.base_url
        host, port = self._files_server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop serving, release held responses and drop every open connection."""
        server, thread = self._server, self._thread
        if server is None:
            return
        if self._files_server is not None:
            self._files_server.shutdown()
            self._files_server.server_close()
            self._files_server = None
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeReplicate:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- scripting and inspection --------------------------------------------------------

    def add_fault(
        self,
        kind: str,
        *,
        when: str | Callable[[dict[str, Any]], bool] | None = None,
        times: int = 1,
        retry_after: float | None = None,
        stall: float = 5.0,
        message: str | None = None,
    ) -> None:
        """Script a fault for the next `times` matching requests of its phase.

        `when`: None matches any request of the phase; a string matches predictions whose
        `input["prompt"]` contains it; a callable receives the input dict. Faults of a phase
        are tried in the order added, and at most one fires per request.
        """
        if kind not in _PHASES:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(sorted(_PHASES))}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.append(_Fault(kind, when, times, retry_after, stall, message))

    @property
    def pending_faults(self) -> list[str]:
        """Kinds of the scripted faults that have not fired yet (one entry per fault)."""
        with self._lock:
            return [f.kind for f in self._faults]

    @property
    def creations(self) -> list[dict[str, Any]]:
        """The input of every prediction created (answered 201), in order."""
        with self._lock:
            return copy.deepcopy(self._creations)

    def creation_count(self, prompt_contains: str = "") -> int:
        """How many predictions were created whose prompt contains `prompt_contains`."""
        with self._lock:
            return sum(1 for i in self._creations if prompt_contains in str(i.get("prompt", "")))

    @property
    def in_flight(self) -> int:
        """Predictions currently created but not yet terminal."""
        with self._lock:
            return self._count_active(time.monotonic())

    @property
    def peak_in_flight(self) -> int:
        """The most predictions ever non-terminal at the same instant."""
        with self._lock:
            return self._peak

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request received (control requests under /_fake/ excluded), in order."""
        with self._lock:
            return list(self._requests)

    @property
    def predictions(self) -> dict[str, dict[str, Any]]:
        """Every prediction as `GET /v1/predictions/{id}` would show it now, by id."""
        with self._lock:
            now = time.monotonic()
            return {p.id: self._view(p, now) for p in self._predictions.values()}

    @property
    def timeline(self) -> list[tuple[float, float | None]]:
        """When each prediction was created and when its output was ready (None: not yet),
        on this process's monotonic clock, in creation order."""
        with self._lock:
            ordered = sorted(self._predictions.values(), key=lambda p: p.seq)
            return [(p.created, p.output_at) for p in ordered]

    def reset(self) -> None:
        """Forget faults, predictions, requests and counters."""
        with self._changed:
            self._clear()
            self._changed.notify_all()

    # -- state used by the request handler -----------------------------------------------

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def _ratelimit(self, kind: str) -> dict[str, str]:
        """Headers for a fixed one-minute window: 600 creations, 3000 other requests."""
        with self._lock:
            now = time.monotonic()
            if now - self._window_start >= 60:
                self._window_start = now
                self._window_counts = {"create": 0, "other": 0}
            self._window_counts[kind] += 1
            limit = 600 if kind == "create" else 3000
            remaining = max(0, limit - self._window_counts[kind])
            reset = max(1, math.ceil(60 - (now - self._window_start)))
            return {"ratelimit-remaining": str(remaining), "ratelimit-reset": str(reset)}

    def _take_fault(self, phase: str, prediction_input: Any) -> _Fault | None:
        matching_input = prediction_input if isinstance(prediction_input, dict) else {}
        with self._lock:
            for fault in self._faults:
                if fault.phase == phase and fault.matches(matching_input):
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
            return None

    def _count_active(self, now: float) -> int:
        for pid, pred in list(self._active.items()):
            end = pred.end_at
            if end is not None and now >= end:
                del self._active[pid]
        return len(self._active)

    def _create(
        self, model: str, prediction_input: dict[str, Any], cancel_after: float | None
    ) -> _Prediction:
        spec = MODELS[model]
        with self._changed:
            fault = self._take_fault("outcome", prediction_input)
            picture = self._take_fault("image", prediction_input)
            drawn = prediction_input
            drawn_picture = picture.kind if picture is not None else None
            if picture is not None and picture.kind == "duplicate":
                # The picture of the latest prediction made for another prompt.
                others = [
                    p
                    for p in self._predictions.values()
                    if p.input.get("prompt") != prediction_input.get("prompt")
                ]
                drawn_picture = None
                if others:
                    source = max(others, key=lambda p: p.seq)
                    drawn = source.drawn_input or drawn
                    drawn_picture = source.drawn_picture
            now = time.monotonic()
            self._seq += 1
            pred = _Prediction(
                id="".join(secrets.choice(_ID_ALPHABET) for _ in range(26)),
                seq=self._seq,
                model=model,
                input=copy.deepcopy(prediction_input),
                created=now,
                created_wall=datetime.now(UTC),
                latency=max(0.0, float(self.latency)),
                outcome=fault.kind if fault else None,
                message=fault.message if fault else None,
                fmt=str(prediction_input.get("output_format", spec.default_format)),
                aspect_ratio=str(drawn.get("aspect_ratio", "1:1")),
                retention=self.retention,
                picture=picture.kind if picture is not None else None,
                drawn_input=copy.deepcopy(drawn),
                drawn_picture=drawn_picture,
            )
            if cancel_after is not None:
                pred.stop_at = now + cancel_after
                start = pred.start_at
                # A deadline that passes before the prediction started ends it `aborted`.
                pred.stop_status = (
                    "aborted" if start is None or start >= pred.stop_at else "canceled"
                )
            self._predictions[pred.id] = pred
            self._creations.append(copy.deepcopy(prediction_input))
            self._active[pred.id] = pred
            self._peak = max(self._peak, self._count_active(now))
            self._changed.notify_all()
            return pred

    def _get(self, prediction_id: str) -> _Prediction | None:
        with self._lock:
            return self._predictions.get(prediction_id)

    def _cancel(self, pred: _Prediction) -> None:
        with self._changed:
            now = time.monotonic()
            if pred.status(now) not in TERMINAL:
                pred.stop_at = now
                pred.stop_status = "canceled"
            self._changed.notify_all()

    def _wait(self, pred: _Prediction, seconds: float) -> None:
        """Block until the prediction is terminal or has output, or `seconds` pass."""
        deadline = time.monotonic() + seconds
        with self._changed:
            while not self._stopping.is_set():
                now = time.monotonic()
                if now >= deadline or pred.status(now) in TERMINAL or pred.has_output(now):
                    return
                upcoming = pred.next_change(now)
                until = deadline if upcoming is None else min(deadline, upcoming)
                # Sleep until the clock reaches the next transition (the loop looks again if
                # woken a hair early); a cancel notifies early.
                self._changed.wait(max(0.0, until - now) + 0.0001)

    def _output(self, pred: _Prediction) -> str:
        if pred.outcome == "data_uri":
            data = self._image(pred, small=True)
            return f"data:{_MIME[pred.fmt]};base64,{base64.b64encode(data).decode()}"
        return f"{self.files_url}/files/{pred.id}.{pred.fmt}"

    def _view(self, pred: _Prediction, now: float, *, fresh: bool = False) -> dict[str, Any]:
        """The prediction object as the API shows it at `now`; `fresh` is the create answer."""
        status = "starting" if fresh else pred.status(now)
        removed = not fresh and pred.removed(now)
        view: dict[str, Any] = {
            "id": pred.id,
            "model": pred.model,
            "version": "hidden",
            "input": {} if removed else copy.deepcopy(pred.input),
            "output": None,
            "error": None,
            "logs": "",
            "status": status,
            "data_removed": removed,
            "source": "api",
            "created_at": pred.wall(pred.created),
            "urls": {
                "get": f"{self.base_url}/v1/predictions/{pred.id}",
                "cancel": f"{self.base_url}/v1/predictions/{pred.id}/cancel",
                "web": f"https://replicate.com/p/{pred.id}",
            },
        }
        if fresh:
            return view
        if not removed and pred.has_output(now):
            view["output"] = self._output(pred)
        start = pred.start_at
        started = start is not None and now >= start and status != "aborted"
        if started and start is not None:
            view["started_at"] = pred.wall(start)
            if not removed:
                view["logs"] = "Generating image...\n"
        if status in TERMINAL:
            end = pred.end_at
            assert end is not None
            view["completed_at"] = pred.wall(end)
            if status == "failed":
                view["error"] = (
                    SAFETY_ERROR
                    if pred.outcome == "safety"
                    else (pred.message or "Prediction failed.")
                )
            elif pred.outcome in ("canceled", "aborted") and pred.message:
                view["error"] = pred.message
            metrics: dict[str, float] = {"total_time": round(end - pred.created, 6)}
            if started and start is not None:
                metrics["predict_time"] = round(max(0.0, end - start), 6)
            view["metrics"] = metrics
        return view

    def _list(
        self, created_after: datetime | None, created_before: datetime | None, cursor: int | None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of predictions, newest first, and the cursor of the next page."""
        with self._lock:
            now = time.monotonic()
            matching = [
                p
                for p in sorted(self._predictions.values(), key=lambda p: p.seq, reverse=True)
                if (cursor is None or p.seq < cursor)
                and (created_after is None or p.created_wall > created_after)
                and (created_before is None or p.created_wall < created_before)
            ]
            page = matching[: self.page_size]
            more = len(matching) > len(page)
            return [self._view(p, now) for p in page], (page[-1].seq if more else None)

    def _file(self, pred: _Prediction, ext: str) -> bytes | None:
        """The output file's bytes, or None if it is not (or no longer) there."""
        now = time.monotonic()
        with self._lock:
            available = pred.has_output(now) and pred.outcome != "data_uri" and ext == pred.fmt
        return self._image(pred) if available else None

    def _image(self, pred: _Prediction, *, small: bool = False) -> bytes:
        size = 0 if small else self.image_bytes
        drawn = pred.drawn_input or pred.input
        prompt = str(drawn.get("prompt", ""))
        picture = pred.drawn_picture
        key = (f"{pred.model}:{pred.aspect_ratio}@{size}", pred.fmt, prompt, picture or "")
        with self._images_lock:
            cached = self._images.get(key)
        if cached is not None:
            return cached
        # Drawn outside the lock: downloads of other images are not held up by this one.
        sizes = MODELS[pred.model].sizes if pred.model in MODELS else _IMAGEN3_SIZES
        drawn_image = _render(pred.aspect_ratio, pred.fmt, size, prompt, picture, sizes)
        with self._images_lock:
            if len(self._images) > 512:
                self._images.clear()
            return self._images.setdefault(key, drawn_image)

    def _draw_ahead(self, pred: _Prediction) -> None:
        """Draw a prediction's output while it is processing, as Replicate's file exists the
        moment the prediction succeeds: its download then only sends bytes. (Not as it is
        created: the drawing would hold up this process's answers to the other creates of
        the moment.)"""
        if pred.outcome in (None, "processing_with_output"):
            drawing = threading.Timer(pred.latency * STARTING_SHARE, self._image, args=(pred,))
            drawing.daemon = True
            drawing.start()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Many short-lived fakes in a test run reuse ports quickly.
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeReplicate) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS lookup that can hang offline.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def drop_connections(self) -> None:
        """Shut open keep-alive connections so their handler threads end with the server."""
        with self._connections_lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._connections.clear()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-response is normal (timeouts, cancelled tasks); stay quiet.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError | ValueError):
            return
        super().handle_error(request, client_address)


_PREDICTION_PATH = re.compile(r"^/v1/predictions/([^/]+)$")
_CANCEL_PATH = re.compile(r"^/v1/predictions/([^/]+)/cancel$")
_MODEL_PATH = re.compile(r"^/v1/models/([^/]+)/([^/]+)/predictions$")
_FILE_PATH = re.compile(r"^/files/([a-z0-9]+)\.([a-z]+)$")


class _Handler(BaseHTTPRequestHandler):
    """One HTTP/1.1 connection; routes each request to the fake's state."""

    protocol_version = "HTTP/1.1"
    server: _Server
    _rate_headers: dict[str, str]
    _entry: RequestRecord | None

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm and
        # the client's delayed ACK add ~40 ms to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        self.server.track(self.connection, open_=False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # -- plumbing --------------------------------------------------------------------------

    @property
    def fake(self) -> FakeReplicate:
        return self.server.fake

    def _handle(self, method: str) -> None:
        self._entry = None
        self._rate_headers = {}
        try:
            self._route(method)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:
            # A bug in the fake must be loud: print it and answer 500 rather than hang.
            traceback.print_exc()
            with contextlib.suppress(OSError):
                self._problem(500, "Internal Server Error", "The fake server raised an exception.")

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.isdigit():
            return None
        return self.rfile.read(int(length))

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**self._rate_headers, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self._entry is not None:
            self._entry.status = status
        self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _problem(
        self,
        status: int,
        title: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        payload = {"title": title, "detail": detail, "status": status, **extra}
        self._send(status, json.dumps(payload).encode(), "application/problem+json", headers)

    def _not_found(self, detail: str = "The requested resource could not be found.") -> None:
        self._problem(404, "Not found", detail)

    def _reset(self) -> None:
        """Drop the connection with a TCP RST instead of a response or an orderly close."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The read buffer holds a reference to the socket; close both so the close is real.
        with contextlib.suppress(OSError):
            self.rfile.close()
            self.connection.close()

    def _stall(self, seconds: float) -> None:
        """Hold the request without answering, then hang up without a response."""
        self.fake._stopping.wait(seconds)
        self.close_connection = True

    # -- routing ---------------------------------------------------------------------------

    def _route(self, method: str) -> None:
        split = urlsplit(self.path)
        path, query = split.path, split.query
        raw = self._read_body()
        body: Any = None
        body_error = raw is None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body_error = True
        auth = self.headers.get("Authorization")
        authorized = auth == f"Bearer {self.fake.token}"
        if path.startswith("/_fake/"):
            if not authorized:
                self._unauthenticated()
            else:
                self._control(method, path, body)
            return
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            if key == "authorization" and authorized:
                value = "<redacted>"
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        self._entry = RequestRecord(
            method, path, query, headers, authorized, body, time.monotonic()
        )
        self.fake._record(self._entry)

        if method == "GET" and (match := _FILE_PATH.match(path)):
            self._serve_file(match.group(1), match.group(2))
            return
        if not path.startswith("/v1/"):
            self._not_found()
            return
        is_create = method == "POST" and (
            path == "/v1/predictions" or _MODEL_PATH.match(path) is not None
        )
        self._rate_headers = self.fake._ratelimit("create" if is_create else "other")
        if not authorized:
            self._unauthenticated()
            return
        if body_error:
            self._problem(400, "Bad request", "The request body is not valid JSON.")
            return

        if match := _MODEL_PATH.match(path):
            if method != "POST":
                self._method_not_allowed()
            else:
                self._create(f"{match.group(1)}/{match.group(2)}", body, via_version=False)
        elif path == "/v1/predictions":
            if method == "POST":
                model = body.get("version") if isinstance(body, dict) else None
                self._create(model, body, via_version=True)
            elif method == "GET":
                self._list(parse_qs(query))
            else:
                self._method_not_allowed()
        elif match := _CANCEL_PATH.match(path):
            if method != "POST":
                self._method_not_allowed()
            else:
                self._cancel(match.group(1))
        elif match := _PREDICTION_PATH.match(path):
            if method != "GET":
                self._method_not_allowed()
            else:
                self._poll(match.group(1))
        elif path == "/v1/webhooks/default/secret" and method == "GET":
            self._json(200, {"key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
        else:
            self._not_found()

    def _unauthenticated(self) -> None:
        self._problem(401, "Unauthenticated", "You did not pass a valid authentication token")

    def _method_not_allowed(self) -> None:
        self._problem(405, "Method not allowed", "This endpoint does not accept that method.")

    # -- endpoints -------------------------------------------------------------------------

    def _create(self, model: Any, body: Any, *, via_version: bool) -> None:
        prediction_input = body.get("input") if isinstance(body, dict) else None
        fault = self.fake._take_fault("create", prediction_input)
        lost_answer: int | None = None
        if fault is not None and fault.kind.startswith("created_then_"):
            lost_answer = int(fault.kind.rsplit("_", 1)[1])
        elif fault is not None:
            self._create_fault(fault, str(model))
            return
        if not isinstance(body, dict):
            self._invalid(
                [_field_error("invalid_type", "(root)", "The request body must be a JSON object")]
            )
            return
        if via_version and not isinstance(model, str):
            self._invalid([_field_error("required", "(root)", "version is required")])
            return
        if model not in MODELS:
            if via_version and not re.fullmatch(r"[\w.-]+/[\w.-]+", model):
                self._problem(
                    422,
                    "Invalid version or not permitted",
                    "The specified version does not exist (or perhaps you don't have "
                    "permission to use it?)",
                )
            else:
                self._not_found(f"Model {model} does not exist.")
            return
        allowed = frozenset({"input", "webhook", "webhook_events_filter"})
        errors = _validate_body(body, (allowed | {"version"}) if via_version else allowed)
        errors += _validate_input(MODELS[model], prediction_input)
        if errors:
            self._invalid(errors)
            return
        wait, prefer_error = _parse_prefer(self.headers.get("Prefer"))
        if prefer_error:
            self._problem(400, "Invalid Prefer header", prefer_error)
            return
        cancel_after: float | None = None
        if (raw_deadline := self.headers.get("Cancel-After")) is not None:
            cancel_after = _parse_duration(raw_deadline)
            if cancel_after is None or cancel_after < self.fake.min_cancel_after:
                self._problem(
                    400,
                    "Invalid Cancel-After header",
                    f"Cancel-After must be a duration of at least {self.fake.min_cancel_after:g}s, "
                    'such as "5m"',
                )
                return
        assert isinstance(prediction_input, dict)
        pred = self.fake._create(model, prediction_input, cancel_after)
        self.fake._draw_ahead(pred)
        if lost_answer is not None:
            self._problem(lost_answer, _SERVER_ERROR_TITLES[lost_answer], "upstream timed out")
            return
        if wait is None:
            view = self.fake._view(pred, pred.created, fresh=True)
        else:
            self.fake._wait(pred, wait)
            with self.fake._lock:
                view = self.fake._view(pred, time.monotonic())
        self._json(201, view)

    def _invalid(self, errors: list[dict[str, str]]) -> None:
        self._problem(
            422, "Input validation failed", _problem_detail(errors), invalid_fields=errors
        )

    def _create_fault(self, fault: _Fault, model: str) -> None:
        kind = fault.kind
        if kind == "rate_limit":
            seconds = fault.retry_after if fault.retry_after is not None else 1
            headers = {"ratelimit-remaining": "0", "ratelimit-reset": str(math.ceil(seconds))}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            self._problem(
                429,
                "Too Many Requests",
                fault.message or f"Request was throttled. Your rate limit resets in ~{seconds:g}s.",
                headers,
            )
        elif kind == "insufficient_credit":
            self._problem(402, "Insufficient credit", fault.message or _INSUFFICIENT_CREDIT)
        elif kind == "unauthenticated":
            self._unauthenticated()
        elif kind.startswith("server_error_"):
            status = int(kind.rsplit("_", 1)[1])
            self._problem(
                status,
                _SERVER_ERROR_TITLES[status],
                fault.message or "Something went wrong on our end. Please try again.",
            )
        elif kind == "non_json_5xx":
            self._send(502, b"<html>Bad Gateway</html>", "text/html")
        elif kind == "reset":
            self._reset()
        elif kind == "stall":
            self._stall(fault.stall)
        elif kind == "model_gone":
            self._not_found(
                fault.message or f"The model {model} is not found or is no longer available."
            )
        else:  # pragma: no cover - FAULT_KINDS and this dispatch are kept in step
            raise AssertionError(kind)

    def _poll(self, prediction_id: str) -> None:
        pred = self.fake._get(prediction_id)
        if pred is None:
            self._not_found("The requested prediction does not exist.")
            return
        fault = self.fake._take_fault("poll", pred.input)
        if fault is not None and fault.kind == "poll_reset":
            self._reset()
            return
        if fault is not None:
            self._problem(
                500,
                "Internal Server Error",
                fault.message or "Something went wrong on our end. Please try again.",
            )
            return
        with self.fake._lock:
            view = self.fake._view(pred, time.monotonic())
        self._json(200, view)

    def _cancel(self, prediction_id: str) -> None:
        pred = self.fake._get(prediction_id)
        if pred is None:
            self._not_found("The requested prediction does not exist.")
            return
        self.fake._cancel(pred)
        with self.fake._lock:
            view = self.fake._view(pred, time.monotonic())
        self._json(200, view)

    def _list(self, params: dict[str, list[str]]) -> None:
        fault = self.fake._take_fault("list", {})
        if fault is not None and fault.kind == "list_rate_limit":
            seconds = fault.retry_after if fault.retry_after is not None else 1
            self._problem(
                429,
                "Too Many Requests",
                f"Request was throttled. Your rate limit resets in ~{seconds:g}s.",
                {"Retry-After": f"{seconds:g}"} if fault.retry_after is not None else None,
            )
            return
        if fault is not None:
            self._problem(500, _SERVER_ERROR_TITLES[500], "Something went wrong on our end.")
            return
        bounds: dict[str, datetime | None] = {}
        for name in ("created_after", "created_before"):
            raw = params.get(name, [None])[0]
            if raw:
                # An unescaped "+" in a UTC offset arrives as a space after query decoding.
                raw = raw.replace(" ", "+")
            try:
                bounds[name] = datetime.fromisoformat(raw) if raw else None
            except ValueError:
                self._problem(400, "Bad request", f"{name} must be an RFC 3339 timestamp")
                return
            moment = bounds[name]
            if moment is not None and moment.tzinfo is None:
                bounds[name] = moment.replace(tzinfo=UTC)
        cursor: int | None = None
        if raw_cursor := params.get("cursor", [""])[0]:
            try:
                cursor = int(base64.urlsafe_b64decode(raw_cursor.encode()).decode())
            except ValueError:
                self._problem(400, "Bad request", "The cursor is not valid.")
                return
        results, next_seq = self.fake._list(
            bounds["created_after"], bounds["created_before"], cursor
        )
        next_url = None
        if next_seq is not None:
            keep = {k: v[0] for k, v in params.items() if k != "cursor" and v}
            keep["cursor"] = base64.urlsafe_b64encode(str(next_seq).encode()).decode()
            next_url = f"{self.fake.base_url}/v1/predictions?{urlencode(keep)}"
        self._json(200, {"next": next_url, "previous": None, "results": results})

    def _serve_file(self, prediction_id: str, ext: str) -> None:
        if self.fake.download_delay > 0:
            time.sleep(self.fake.download_delay)
        pred = self.fake._get(prediction_id)
        data = self.fake._file(pred, ext) if pred is not None else None
        if pred is None or data is None:
            self._send(404, b"Not Found", "text/plain")
            return
        fault = self.fake._take_fault("file", pred.input)
        mime = _MIME[pred.fmt]
        if fault is not None and fault.kind == "output_404":
            self._send(404, b"Not Found", "text/plain")
        elif fault is not None and fault.kind == "not_image":
            self._send(200, b"<html><body>Something went wrong</body></html>\n", mime)
        elif fault is not None and fault.kind == "truncated":
            self.send_response(200)
            self.send_header("Content-Type", mime)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self._entry is not None:
                self._entry.status = 200
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
        else:
            self.send_response(200)
            self.send_header("Content-Type", mime)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self._entry is not None:
                self._entry.status = 200
            view = memoryview(data)
            for offset in range(0, len(data), _CHUNK):
                self.wfile.write(view[offset : offset + _CHUNK])

    def _control(self, method: str, path: str, body: Any) -> None:
        """Script a fake running in another process.

        GET /_fake/state; POST /_fake/faults {kind, when (prompt substring), times,
        retry_after, stall, message}; POST /_fake/config {latency, download_delay};
        POST /_fake/reset.
        """
        fake = self.fake
        args = body if isinstance(body, dict) else {}
        try:
            if method == "GET" and path == "/_fake/state":
                self._json(
                    200,
                    {
                        "creations": fake.creations,
                        "peak_in_flight": fake.peak_in_flight,
                        "in_flight": fake.in_flight,
                        "requests": len(fake.requests),
                        "pending_faults": fake.pending_faults,
                        "latency": fake.latency,
                        "timeline": fake.timeline,
                    },
                )
            elif method == "POST" and path == "/_fake/faults":
                fake.add_fault(
                    str(args.get("kind")),
                    when=args.get("when"),
                    times=int(args.get("times", 1)),
                    retry_after=args.get("retry_after"),
                    stall=float(args.get("stall", 5.0)),
                    message=args.get("message"),
                )
                self._json(201, {"pending_faults": fake.pending_faults})
            elif method == "POST" and path == "/_fake/config":
                if "latency" in args:
                    fake.latency = float(args["latency"])
                if "download_delay" in args:
                    fake.download_delay = float(args["download_delay"])
                self._json(200, {"latency": fake.latency, "download_delay": fake.download_delay})
            elif method == "POST" and path == "/_fake/reset":
                fake.reset()
                self._json(200, {})
            else:
                self._not_found()
        except (TypeError, ValueError) as exc:
            self._problem(400, "Bad request", str(exc))


def main(argv: list[str] | None = None) -> None:
    """Serve a fake in the foreground until SIGINT or SIGTERM; print its base URL first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--token", default="r8_fake_token")
    parser.add_argument("--image-bytes", type=int, default=0)
    parser.add_argument(
        "--download-delay", type=float, default=0.0, help="seconds before each file arrives"
    )
    args = parser.parse_args(argv)
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    fake = FakeReplicate(
        token=args.token,
        latency=args.latency,
        host=args.host,
        port=args.port,
        image_bytes=args.image_bytes,
        download_delay=args.download_delay,
    )
    with fake:
        print(fake.base_url, flush=True)
        # Waking once a second keeps signal delivery prompt on every platform.
        while not done.wait(1.0):
            pass


if __name__ == "__main__":
    main()
