"""Word that a generation slot was freed, passed between the processes of one deployment.

Within a process, rows and single images waiting for a slot sleep on the store's condition,
which `Store.slot_freed` wakes. Scaled out, the other processes hear of it through the store's
or the queue's own notification: PostgreSQL's LISTEN/NOTIFY, or Redis pub/sub. A listener
thread wakes the local waiters when word arrives; the waiters' slow poll stays as the safety
net for a lost message or a dropped connection.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Literal, Protocol

from carstudio.errors import ConfigurationError

log = logging.getLogger(__name__)

CHANNEL = "carstudio_slots"
LISTEN_TIMEOUT = 1.0
"""Seconds a listener waits for a message before it looks whether it should stop."""
RECONNECT_WAIT = 1.0

Kind = Literal["auto", "postgres", "redis", "local"]


class SlotNotices(Protocol):
    def announce(self) -> None:
        """Tell the other processes a slot was freed (this one knows already)."""

    def close(self) -> None: ...


class LocalOnly:
    """One process (or a store and queue with no notification of their own): nothing to tell."""

    def announce(self) -> None:
        return None

    def close(self) -> None:
        return None


class _Listener:
    """A daemon thread that calls `wake` for every notice from another process."""

    def __init__(self, name: str, me: str, wake: Callable[[], None]) -> None:
        self.me = me
        self.wake = wake
        self.stopping = threading.Event()
        self.ready = threading.Event()
        """Set once the listener is subscribed (tests and benchmarks wait for it)."""
        self.thread = threading.Thread(target=self._run, daemon=True, name=name)

    def start(self) -> None:
        self.thread.start()

    def heard(self, sender: str) -> None:
        if sender != self.me:
            self.wake()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.listen()
            except Exception as exc:
                if self.stopping.is_set():
                    return
                log.warning("slot notices: %s; listening again in %g s", exc, RECONNECT_WAIT)
                self.ready.clear()
                self.stopping.wait(RECONNECT_WAIT)

    def listen(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(LISTEN_TIMEOUT + 1)


class PostgresNotices(_Listener):
    """NOTIFY on a connection of the store's own pool; LISTEN on a dedicated connection."""

    def __init__(self, dsn: str, engine: Any, me: str, wake: Callable[[], None]) -> None:
        super().__init__("slot-notices-postgres", me, wake)
        self.dsn = dsn
        self.engine = engine

    def announce(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT pg_notify(%(channel)s, %(me)s)", _args(self.me))
                conn.commit()
        except Exception as exc:  # the safety-net poll still finds the slot
            log.warning("slot notices: could not notify: %s", exc)

    def listen(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self.ready.set()
            while not self.stopping.is_set():
                for notice in conn.notifies(timeout=LISTEN_TIMEOUT):
                    self.heard(notice.payload)

    def close(self) -> None:
        self.stop()


class RedisNotices(_Listener):
    """PUBLISH and SUBSCRIBE on the queue's Redis."""

    def __init__(self, url: str, me: str, wake: Callable[[], None]) -> None:
        super().__init__("slot-notices-redis", me, wake)
        import redis

        self.client = redis.Redis.from_url(url)

    def announce(self) -> None:
        try:
            self.client.publish(CHANNEL, self.me)
        except Exception as exc:  # the safety-net poll still finds the slot
            log.warning("slot notices: could not publish: %s", exc)

    def listen(self) -> None:
        # redis-py types pubsub() from 8.2 on; before, it is an untyped call.
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call, unused-ignore]
        try:
            pubsub.subscribe(CHANNEL)
            self.ready.set()
            while not self.stopping.is_set():
                message = pubsub.get_message(timeout=LISTEN_TIMEOUT)
                if message is not None:
                    data = message["data"]
                    self.heard(data.decode() if isinstance(data, bytes) else str(data))
        finally:
            pubsub.close()

    def close(self) -> None:
        self.stop()
        self.client.close()


def _args(me: str) -> dict[str, str]:
    return {"channel": CHANNEL, "me": me}


def start_notices(
    kind: Kind,
    *,
    database_url: str,
    queue_url: str | None,
    engine: Any,
    me: str,
    wake: Callable[[], None],
) -> SlotNotices:
    """The notices for this deployment, listening already. `auto`: the PostgreSQL store's own
    when the store is PostgreSQL, else the Redis queue's, else none (one process)."""
    postgres = database_url.startswith("postgresql")
    redis_queue = bool(queue_url) and str(queue_url).startswith(
        ("redis://", "rediss://", "unix://")
    )
    if kind == "auto":
        kind = "postgres" if postgres else "redis" if redis_queue else "local"
    notices: PostgresNotices | RedisNotices
    if kind == "postgres":
        if not postgres:
            raise ConfigurationError(
                "CARSTUDIO_SLOT_NOTICES=postgres needs a PostgreSQL store (CARSTUDIO_DATABASE_URL)."
            )
        dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        notices = PostgresNotices(dsn, engine, me, wake)
    elif kind == "redis":
        if not redis_queue:
            raise ConfigurationError(
                "CARSTUDIO_SLOT_NOTICES=redis needs a Redis queue (CARSTUDIO_QUEUE_URL)."
            )
        assert queue_url is not None
        notices = RedisNotices(queue_url, me, wake)
    else:
        return LocalOnly()
    notices.start()
    return notices
