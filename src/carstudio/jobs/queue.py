"""The task queue: huey on SQLite by default, Redis or PostgreSQL-compatible storage by URL,
and a consumer that can run inside another process without touching its signal handling."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer

from carstudio.errors import ConfigurationError

QUEUE_NAME = "carstudio"


def build_huey(queue_url: str | None, data_dir: Path) -> Huey:
    """The huey instance for `CARSTUDIO_QUEUE_URL` (a SQLite file in the data dir by default)."""
    if not queue_url:
        return SqliteHuey(QUEUE_NAME, filename=str(data_dir / "queue.db"))
    if queue_url.startswith(("redis://", "rediss://", "unix://")):
        try:
            from redis.exceptions import RedisError
        except ImportError as exc:
            raise ConfigurationError(
                "A Redis queue needs the redis package: pip install 'carstudio[scale]'."
            ) from exc
        huey = RedisHuey(QUEUE_NAME, url=queue_url)
        try:
            huey.storage.conn.ping()
        except RedisError as exc:
            raise ConfigurationError(
                f"Car Studio cannot reach the queue at {_without_password(queue_url)} ({exc}); "
                "check CARSTUDIO_QUEUE_URL."
            ) from exc
        return huey
    if queue_url.startswith("sqlite:///"):
        return SqliteHuey(QUEUE_NAME, filename=queue_url.removeprefix("sqlite:///"))
    raise ConfigurationError(
        f"CARSTUDIO_QUEUE_URL={queue_url!r} is not supported; use redis://host:port/db "
        "or sqlite:///path/to/queue.db."
    )


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


class EmbeddedConsumer(Consumer):  # type: ignore[misc]
    """A thread consumer that leaves signal handling to its host (uvicorn, the CLI)."""

    def _set_signal_handlers(self) -> None:
        return None


def start_consumer(huey: Huey, *, workers: int, periodic: bool) -> EmbeddedConsumer:
    consumer = EmbeddedConsumer(
        huey,
        workers=workers,
        periodic=periodic,
        worker_type="thread",
        initial_delay=0.05,
        backoff=1.2,
        max_delay=0.5,
        check_worker_health=False,
    )
    consumer.start()
    return consumer
