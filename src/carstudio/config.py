"""Car Studio's settings: one object, read from the environment and `.env`."""

from __future__ import annotations

import ipaddress
import os
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PUBLIC_REPLICATE_URL = "https://api.replicate.com"


class Settings(BaseSettings):
    """Every knob an operator can turn. Environment names are given in each field's alias."""

    model_config = SettingsConfigDict(
        env_prefix="CARSTUDIO_", env_file=".env", extra="ignore", populate_by_name=True
    )

    replicate_api_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("REPLICATE_API_TOKEN", "CARSTUDIO_REPLICATE_API_TOKEN"),
        description="Replicate API token (r8_...); without it the offline preview is used.",
    )
    replicate_base_url: str = Field(
        default=PUBLIC_REPLICATE_URL,
        validation_alias=AliasChoices("REPLICATE_BASE_URL", "CARSTUDIO_REPLICATE_BASE_URL"),
        description="Root of the Replicate API, without /v1; point it at any compatible server.",
    )
    model: str = Field(
        default="google/imagen-3",
        description="CARSTUDIO_MODEL: the image model, one of the supported models table.",
    )
    fallback_model: str | None = Field(
        default=None,
        description="CARSTUDIO_FALLBACK_MODEL: when Replicate says a batch's model is gone, its "
        "remaining rows move to this model instead of stopping.",
    )
    provider: Literal["auto", "replicate", "preview"] = Field(
        default="auto",
        description="CARSTUDIO_PROVIDER: auto picks replicate when a token is set, else preview.",
    )
    safety_filter_level: Literal[
        "block_low_and_above", "block_medium_and_above", "block_only_high"
    ] = Field(default="block_only_high", description="CARSTUDIO_SAFETY_FILTER_LEVEL.")
    data_dir: Path = Field(
        default=Path("data"),
        description="CARSTUDIO_DATA_DIR: where everything Car Studio writes lives.",
    )
    prompts_file: Path | None = Field(
        default=None,
        description="CARSTUDIO_PROMPTS_FILE: an editable copy of the prompt templates (TOML).",
    )
    host: str = Field(default="127.0.0.1", description="CARSTUDIO_HOST.")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CARSTUDIO_ALLOWED_HOSTS: comma-separated names people reach Car Studio by, "
        "besides localhost, 127.0.0.1, ::1 and CARSTUDIO_HOST; '*' accepts any (behind a proxy "
        "that checks them).",
    )
    auth: Literal["auto", "required", "off"] = Field(
        default="auto",
        description="CARSTUDIO_AUTH: sign-in; auto requires it unless Car Studio listens on a "
        "loopback address only.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="CARSTUDIO_SECRET_KEY: signs sign-in cookies; by default a random key kept "
        "in the data directory (shared by every process that uses it).",
    )
    secure_cookies: bool = Field(
        default=False,
        description="CARSTUDIO_SECURE_COOKIES: send the sign-in cookie over HTTPS only (set it "
        "behind a TLS proxy).",
    )
    api_docs: bool = Field(
        default=False,
        description="CARSTUDIO_API_DOCS: serve the interactive API docs at /docs and /redoc "
        "(they load their scripts from a CDN); /openapi.json is always served.",
    )
    telemetry: bool = Field(
        default=False,
        description="CARSTUDIO_TELEMETRY: let FastAPI send OpenTelemetry traces, metrics and "
        "logs of each request to the providers set up in the process (for example under "
        "`opentelemetry-instrument`). Off, no request pays for looking for them.",
    )
    port: int = Field(default=8000, ge=1, le=65535, description="CARSTUDIO_PORT.")
    max_connections: int = Field(
        default=500,
        ge=2,
        description="CARSTUDIO_MAX_CONNECTIONS: open connections `serve` answers at once; a "
        "request on any connection past it gets 503 and is closed.",
    )
    keepalive_seconds: int = Field(
        default=5,
        ge=1,
        le=300,
        description="CARSTUDIO_KEEPALIVE_SECONDS: how long an idle connection stays open after "
        "an answer, waiting for its next request.",
    )
    head_timeout: float = Field(
        default=10.0,
        gt=0,
        description="CARSTUDIO_HEAD_TIMEOUT: seconds Car Studio waits for a request's head (its "
        "request line and headers), from the connection's opening or the head's first byte; a "
        "client that has not sent it whole by then gets 408, or, having sent nothing, is let go.",
    )
    body_timeout: float = Field(
        default=30.0,
        gt=0,
        description="CARSTUDIO_BODY_TIMEOUT: seconds Car Studio waits, in all, for a request's "
        "body; a client that has not sent it by then gets 408.",
    )
    http_timeout: float = Field(
        default=30.0, gt=0, description="CARSTUDIO_HTTP_TIMEOUT: seconds per request to Replicate."
    )
    wait_seconds: int = Field(
        default=60,
        ge=0,
        le=60,
        description="CARSTUDIO_WAIT_SECONDS: the Prefer: wait hold; 0 polls from the start.",
    )
    poll_interval: float = Field(
        default=1.0, gt=0, description="CARSTUDIO_POLL_INTERVAL: seconds between status polls."
    )
    prediction_deadline: float = Field(
        default=300.0,
        gt=0,
        description="CARSTUDIO_PREDICTION_DEADLINE: seconds before an image is cancelled.",
    )
    concurrency: int = Field(
        default=3, ge=1, le=50, description="CARSTUDIO_CONCURRENCY: images in flight, server-wide."
    )
    prices_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("CARSTUDIO_PRICES", "CARSTUDIO_PRICES_FILE"),
        description="CARSTUDIO_PRICES: a TOML or JSON file of USD per image that replaces list "
        "prices (negotiated rates, or prices changed since).",
    )
    budget_per_batch: Decimal | None = Field(
        default=None,
        ge=0,
        description="CARSTUDIO_BUDGET_PER_BATCH: USD; a batch whose estimate is more is refused "
        "before anything is spent, and no prediction of a batch (re-rolls and retries included) "
        "takes it past this.",
    )
    budget_monthly: Decimal | None = Field(
        default=None,
        ge=0,
        description="CARSTUDIO_BUDGET_MONTHLY: USD per calendar month (UTC) across the whole "
        "deployment; no prediction is created that would pass it.",
    )
    cache_days: float = Field(
        default=30.0,
        gt=0,
        description="CARSTUDIO_CACHE_DAYS: how long an image stays in the image cache after it "
        "was last used; an identical request within that time costs nothing.",
    )
    qc_rerolls: int = Field(
        default=1,
        ge=0,
        le=1,
        description="CARSTUDIO_QC_REROLLS: an image that fails a check (shape, background, "
        "colour, blank, duplicate) is made once more, at the price of one more image; 0 turns "
        "it off.",
    )
    paints_file: Path | None = Field(
        default=None,
        description="CARSTUDIO_PAINTS_FILE: a TOML file of colour phrases and sRGB hex colours "
        "that extends the paint table the colour check uses.",
    )
    output: Literal["original", "listing-jpeg", "marketplace-4x3", "webp"] = Field(
        default="original",
        description="CARSTUDIO_OUTPUT: the files delivered when a request names none: original, "
        "listing-jpeg, marketplace-4x3 or webp.",
    )
    min_free_mb: int = Field(
        default=200,
        ge=0,
        description="CARSTUDIO_MIN_FREE_MB: free space kept in reserve on the data directory's "
        "disk; below it, rows pause before they are paid for and new work is refused (507).",
    )
    waiting_singles_per_client: int = Field(
        default=4,
        ge=1,
        le=100,
        description="CARSTUDIO_WAITING_SINGLES_PER_CLIENT: single images one person (or address) "
        "may have waiting for a slot at once; more are answered 429.",
    )
    lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="CARSTUDIO_LEASE_SECONDS: how long a silent worker keeps a row before "
        "another takes it over.",
    )
    retention_hours: float = Field(
        default=6.0, gt=0, description="CARSTUDIO_RETENTION_HOURS: how long images and ZIPs stay."
    )
    embedded_worker: bool = Field(
        default=True,
        description="CARSTUDIO_EMBEDDED_WORKER: run batch rows inside the web process "
        "(`serve --no-worker` turns it off when separate workers run).",
    )
    periodic: bool = Field(
        default=True,
        description="CARSTUDIO_PERIODIC: this process sweeps expired leases and cleans up old "
        "files; keep it on in exactly one process.",
    )
    database_url: str | None = Field(
        default=None,
        description="CARSTUDIO_DATABASE_URL: SQLAlchemy URL; default SQLite in the data dir.",
    )
    queue_url: str | None = Field(
        default=None,
        description="CARSTUDIO_QUEUE_URL: huey storage; default a SQLite file in the data dir.",
    )
    slot_notices: Literal["auto", "postgres", "redis", "local"] = Field(
        default="auto",
        description="CARSTUDIO_SLOT_NOTICES: how processes tell each other a generation slot "
        "is free; auto uses PostgreSQL's LISTEN/NOTIFY with a PostgreSQL store, else Redis "
        "pub/sub with a Redis queue, else nothing (one process).",
    )
    server_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CARSTUDIO_SERVER"),
        description="CARSTUDIO_SERVER: the Car Studio that `generate` and `batch` run on "
        "(e.g. http://studio.lan:8000) instead of in process; `--server` overrides.",
    )
    server_token: SecretStr | None = Field(
        default=None,
        description="CARSTUDIO_SERVER_TOKEN: the API token `generate` and `batch` send to "
        "CARSTUDIO_SERVER as a bearer token when it requires sign-in.",
    )

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def sign_in_required(self) -> bool:
        """auto: required unless every address Car Studio listens on is this machine's own."""
        if self.auth == "auto":
            return not _is_loopback(self.host)
        return self.auth == "required"

    @property
    def hosts_answered(self) -> list[str]:
        """Every Host header value Car Studio answers to."""
        return ["localhost", "127.0.0.1", "::1", self.host, *self.allowed_hosts]

    @field_validator("replicate_base_url")
    @classmethod
    def _strip_base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value.endswith("/v1"):
            value = value[: -len("/v1")]
        return value

    @property
    def provider_name(self) -> Literal["replicate", "preview"]:
        if self.provider == "auto":
            return "replicate" if self.token else "preview"
        return self.provider

    @property
    def token(self) -> str | None:
        if self.replicate_api_token is None:
            return None
        return self.replicate_api_token.get_secret_value().strip() or None

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def downloads_dir(self) -> Path:
        return self.data_dir / "downloads"

    def ensure_dirs(self) -> None:
        # Owner-only: the data directory holds the database, the images and the sign-in key.
        for path in (self.data_dir, self.images_dir, self.downloads_dir):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)


def keep_files_private() -> None:
    """Everything this process writes from now on is readable by its own user only (0600 files,
    0700 directories): images, ZIPs, the database and keys belong to the dealership."""
    os.umask(0o077)


@lru_cache(maxsize=8)  # asked on every request, through `sign_in_required`
def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
