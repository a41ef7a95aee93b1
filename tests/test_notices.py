"""Word of a freed slot between processes: PostgreSQL LISTEN/NOTIFY and Redis pub/sub.

Each side has its own connection, as two processes would; runs against this machine's
PostgreSQL and Redis (fixtures from test_scale_out skip where they are absent).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from carstudio.jobs.notices import SlotNotices, start_notices
from carstudio.jobs.store import database_url
from tests.test_scale_out import postgres_url, redis_url  # noqa: F401 - fixtures

pytestmark = pytest.mark.scale


def _pair(
    kind: str, db: str, queue: str | None
) -> tuple[SlotNotices, SlotNotices, threading.Event, threading.Event, Callable[[], None]]:
    url = database_url(db, Path())
    engines = [create_engine(url), create_engine(url)]
    heard = {"a": threading.Event(), "b": threading.Event()}
    sides = [
        start_notices(
            kind,  # type: ignore[arg-type]
            database_url=url,
            queue_url=queue,
            engine=engine,
            me=me,
            wake=heard[me].set,
        )
        for me, engine in zip("ab", engines, strict=True)
    ]

    def close() -> None:
        for side in sides:
            side.close()
        for engine in engines:
            engine.dispose()

    return sides[0], sides[1], heard["a"], heard["b"], close


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_a_freed_slot_is_heard_by_the_other_process_not_by_its_own(
    kind: str,
    postgres_url: str,  # noqa: F811
    redis_url: str,  # noqa: F811
) -> None:
    a, b, heard_a, heard_b, close = _pair(kind, postgres_url, redis_url)
    try:
        for side in (a, b):
            assert side.ready.wait(10)  # type: ignore[attr-defined]
        a.announce()
        assert heard_b.wait(10), "the other side is woken"
        b.announce()
        assert heard_a.wait(10)
        heard_a.clear()
        a.announce()
        assert heard_b.wait(10)
        assert not heard_a.is_set(), "a process does not wake itself: it knows already"
    finally:
        close()


def test_auto_picks_the_stores_notices_then_the_queues_then_none(
    postgres_url: str,  # noqa: F811
    redis_url: str,  # noqa: F811
) -> None:
    engine = create_engine(database_url(postgres_url, Path()))
    try:
        chosen = [
            start_notices(
                "auto", database_url=db, queue_url=queue, engine=engine, me="m", wake=lambda: None
            )
            for db, queue in (
                (str(engine.url), redis_url),
                ("sqlite:///x.db", redis_url),
                ("sqlite:///x.db", None),
            )
        ]
        assert [type(n).__name__ for n in chosen] == [
            "PostgresNotices",
            "RedisNotices",
            "LocalOnly",
        ]
        for notices in chosen:
            notices.close()
    finally:
        engine.dispose()
