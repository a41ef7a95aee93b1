"""The task queue: huey on SQLite by default, Redis or PostgreSQL-compatible storage by URL,
and a consumer that can run inside another process without touching its signal handling."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from huey import Huey, RedisHuey
from huey.consumer import Consumer
from huey.storage import SqliteStorage

from carstudio.errors import ConfigurationError

QUEUE_NAME = "carstudio"
SQLITE_WAIT = 0.5
"""Seconds an idle worker waits for a task before it looks at the SQLite queue again: tasks
queued by this process wake it at once; this finds those of another process."""


class WakingSqliteStorage(SqliteStorage):  # type: ignore[misc]
    """huey's SQLite storage, whose idle workers wait for a task instead of polling: a task
    queued in this process wakes one at once."""

    blocking = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._arrived = threading.Condition()
        self._queued = 0

    def enqueue(self, data: bytes, priority: int | None = None) -> None:
        super().enqueue(data, priority)
        with self._arrived:
            self._queued += 1
            self._arrived.notify()

    def dequeue(self) -> bytes | None:
        seen = self._queued
        data: bytes | None = super().dequeue()
        if data is not None:
            return data
        with self._arrived:
            if self._queued == seen:
                self._arrived.wait(SQLITE_WAIT)
        result: bytes | None = super().dequeue()
        return result


def build_huey(queue_url: str | None, data_dir: Path) -> Huey:
    """The huey instance for `CARSTUDIO_QUEUE_URL` (a SQLite file in the data dir by default)."""
    if not queue_url:
        return _sqlite_huey(str(data_dir / "queue.db"))
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
        return _sqlite_huey(queue_url.removeprefix("sqlite:///"))
    raise ConfigurationError(
        f"CARSTUDIO_QUEUE_URL={queue_url!r} is not supported; use redis://host:port/db "
        "or sqlite:///path/to/queue.db."
    )


def _sqlite_huey(filename: str) -> Huey:
    return Huey(QUEUE_NAME, storage_class=WakingSqliteStorage, filename=filename)


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
