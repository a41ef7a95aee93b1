"""The ledger: every prediction paid for, reserved before its create is sent.

Reserving and checking the month's budget are one atomic step in the store (serialised by an
advisory lock on PostgreSQL, by SQLite's single writer otherwise), like taking a generation
slot: two workers on two machines can never both spend the last dollar.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Integer,
    Numeric,
    Select,
    String,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from carstudio.billing.models import LedgerEntry
from carstudio.errors import BudgetReached, Failure, GenerationError
from carstudio.jobs.store import Store

_BUDGET_LOCK = 0x6361_7262  # PostgreSQL advisory lock key for spending
MONTHLY = "CARSTUDIO_BUDGET_MONTHLY"
PER_BATCH = "CARSTUDIO_BUDGET_PER_BATCH"


def month_of(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m")


def dollars(amount: Decimal) -> str:
    return f"${amount:,.2f}"


@dataclass(frozen=True)
class UsageLine:
    day: str
    model: str
    images: int
    usd: Decimal
    unpriced: int
    """Images whose price is unknown, so not in `usd`."""


class Ledger:
    def __init__(
        self,
        store: Store,
        *,
        monthly_cap: Decimal | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.monthly_cap = monthly_cap
        self.clock = clock

    def reserve(
        self,
        *,
        model: str,
        usd: Decimal | None,
        kind: str,
        job_id: str | None = None,
        row: int | None = None,
        image_id: str | None = None,
        owner_id: int | None = None,
        batch_cap: Decimal | None = None,
    ) -> int:
        """Book one image before its create is sent; BudgetReached if the month's cap, or
        the batch's (`batch_cap`: what all of `job_id`'s images may cost, re-rolls and retries
        included), would be passed. A batch row that already holds an unused booking (its
        create was sent but never answered) keeps that one."""
        now = self.clock()
        month = month_of(now)
        batch_cap = batch_cap if job_id is not None else None
        if usd is None and self.monthly_cap is not None:
            raise self._unpriced(model, self.monthly_cap, "the monthly budget", MONTHLY)
        if usd is None and batch_cap is not None:
            raise self._unpriced(model, batch_cap, "the batch's budget", PER_BATCH)
        with self.store.session() as s:
            if s.bind is not None and s.bind.dialect.name == "postgresql":
                s.execute(select(func.pg_advisory_xact_lock(_BUDGET_LOCK)))
            if job_id is not None:
                held = s.scalar(_OPEN_BOOKING, {"job": job_id, "row": row})
                if held is not None:
                    return int(held)
            entry = {
                "created_at": now,
                "month": month,
                "model": model,
                "usd": usd,
                "kind": kind,
                "job_id": job_id,
                "row": row,
                "image_id": image_id,
                "owner_id": owner_id,
            }
            # The checks and the booking are one statement: no other booking can slip in
            # between them, whichever worker or machine makes it.
            caps = {"monthly_cap": self.monthly_cap, "batch_cap": batch_cap}
            booking = _BOOKINGS[self.monthly_cap is not None, batch_cap is not None]
            booked = s.scalar(booking, entry | caps)
        if booked is None:
            raise self._over_budget(month, usd, job_id=job_id, batch_cap=batch_cap)
        return int(booked)

    def _unpriced(self, model: str, cap: Decimal, which: str, setting: str) -> BudgetReached:
        return BudgetReached(
            f"The price of {model} is unknown, so Car Studio cannot keep it within {which} "
            f"of {dollars(cap)} ({setting}); set its price in CARSTUDIO_PRICES or choose a "
            "model with a known price."
        )

    def _over_budget(
        self, month: str, usd: Decimal | None, *, job_id: str | None, batch_cap: Decimal | None
    ) -> BudgetReached:
        cost = usd or Decimal(0)
        with self.store.reading() as s:
            if job_id is not None and batch_cap is not None:
                spent = _spent(s, _SPENT_ON_JOB, {"job_id": job_id})
                if spent + cost > batch_cap:
                    return BudgetReached(
                        f"This batch's spending would pass its budget: {dollars(spent)} of "
                        f"{dollars(batch_cap)} is used and this image costs {dollars(cost)} "
                        f"({PER_BATCH}). Raise the budget, then retry the failed rows."
                    )
            spent = _spent(s, _SPENT_IN_MONTH, {"month": month})
        return BudgetReached(
            f"This month's spending would pass its budget: {dollars(spent)} "
            f"of {dollars(self.monthly_cap or Decimal(0))} is used and this image costs "
            f"{dollars(cost)} ({MONTHLY}). Raise the budget or wait for next month, then retry "
            "the failed rows."
        )

    def record_cached(self, *, model: str, kind: str, **where: Any) -> None:
        """An image the cache answered: in the ledger at $0, outside every budget."""
        where.pop("usd", None)
        now = self.clock()
        with self.store.session() as s:
            s.add(
                LedgerEntry(
                    created_at=now,
                    month=month_of(now),
                    model=model,
                    usd=Decimal(0),
                    kind=kind,
                    cached=True,
                    **where,
                )
            )

    def confirm(self, entry_id: int, prediction_id: str) -> None:
        """The create was answered: the booking is this prediction. A prediction already in
        the ledger (a resumed or adopted one) is not booked twice."""
        with self.store.session() as s:
            known = s.scalar(_BOOKED_AS, {"prediction": prediction_id})
            if known is not None and known != entry_id:
                s.execute(_UNBOOK, {"entry": entry_id})
                return
            s.execute(_SETTLE, {"entry": entry_id, "prediction": prediction_id})

    def settle_open(self, *, job_id: str, row: int, prediction_id: str) -> None:
        """A batch row's unsettled booking, if it has one, is `prediction_id`'s."""
        with self.store.reading() as s:
            held = s.scalar(_OPEN_BOOKING, {"job": job_id, "row": row})
        if held is not None:
            self.confirm(held, prediction_id)

    def release(self, entry_id: int) -> None:
        """The create surely made nothing (refused before any prediction existed)."""
        with self.store.session() as s:
            s.execute(
                delete(LedgerEntry).where(
                    LedgerEntry.id == entry_id, LedgerEntry.prediction_id.is_(None)
                )
            )

    def spent_this_month(self, owner_id: int | None = None, *, everyone: bool = True) -> Decimal:
        query = _SPENT_IN_MONTH
        if not everyone:
            query = query.where(_LEDGER.c.owner_id == owner_id)
        with self.store.reading() as s:
            return _spent(s, query, {"month": month_of(self.clock())})

    def usage(
        self, *, start: float, end: float, owner_id: int | None, everyone: bool
    ) -> list[UsageLine]:
        """Images and dollars per UTC day and model between `start` and `end`."""
        with self.store.session() as s:
            query = select(LedgerEntry.created_at, LedgerEntry.model, LedgerEntry.usd).where(
                LedgerEntry.created_at >= start, LedgerEntry.created_at < end
            )
            if not everyone:
                query = query.where(LedgerEntry.owner_id == owner_id)
            lines: dict[tuple[str, str], UsageLine] = {}
            for created_at, model, usd in s.execute(query):
                day = dt.datetime.fromtimestamp(created_at, dt.UTC).strftime("%Y-%m-%d")
                line = lines.get((day, model), UsageLine(day, model, 0, Decimal(0), 0))
                lines[(day, model)] = UsageLine(
                    day,
                    model,
                    line.images + 1,
                    line.usd + (Decimal(str(usd)) if usd is not None else Decimal(0)),
                    line.unpriced + (usd is None),
                )
        return sorted(lines.values(), key=lambda line: (line.day, line.model))


_LEDGER: Table = LedgerEntry.__table__  # type: ignore[assignment]
# Built once, on the table: every image is booked and settled, and building these costs
# more than running them.
_OPEN_BOOKING = select(_LEDGER.c.id).where(
    _LEDGER.c.job_id == bindparam("job", type_=String),
    _LEDGER.c.row == bindparam("row", type_=Integer),
    _LEDGER.c.prediction_id.is_(None),
    _LEDGER.c.cached.is_(False),
)
"""A batch row's booking whose create was sent but is not yet settled with its id."""
_BOOKED_AS = select(_LEDGER.c.id).where(
    _LEDGER.c.prediction_id == bindparam("prediction", type_=String)
)
_SETTLE = (
    update(_LEDGER)
    .where(_LEDGER.c.id == bindparam("entry", type_=Integer))
    .values(prediction_id=bindparam("prediction", type_=String))
)
_UNBOOK = delete(_LEDGER).where(_LEDGER.c.id == bindparam("entry", type_=Integer))
_ENTRY = ("created_at", "month", "model", "usd", "kind", "job_id", "row", "image_id", "owner_id")
_NEW_ENTRY = select(*(bindparam(name, type_=_LEDGER.c[name].type) for name in _ENTRY))
_SPENT_IN_MONTH = select(func.coalesce(func.sum(_LEDGER.c.usd), 0)).where(
    _LEDGER.c.month == bindparam("month", type_=String)
)
_SPENT_ON_JOB = select(func.coalesce(func.sum(_LEDGER.c.usd), 0)).where(
    _LEDGER.c.job_id == bindparam("job_id", type_=String)
)
_COST = bindparam("usd", type_=Numeric(12, 4))
# Each cap still covers what is spent with this image added.
_WITHIN_MONTH = bindparam("monthly_cap", type_=Numeric(12, 4)) >= (
    _SPENT_IN_MONTH.scalar_subquery() + _COST
)
_WITHIN_BATCH = bindparam("batch_cap", type_=Numeric(12, 4)) >= (
    _SPENT_ON_JOB.scalar_subquery() + _COST
)
_BOOKINGS = {
    (monthly, batch): insert(_LEDGER)
    .from_select(
        list(_ENTRY),
        _NEW_ENTRY.where(
            *([_WITHIN_MONTH] if monthly else []), *([_WITHIN_BATCH] if batch else [])
        ),
    )
    .returning(_LEDGER.c.id)
    for monthly in (False, True)
    for batch in (False, True)
}
"""The booking, by which caps it checks (the month's, the batch's)."""


def _spent(session: Session, query: Select[Any], params: dict[str, Any]) -> Decimal:
    """A sum of dollars from the ledger (None, on no entries, is $0)."""
    return Decimal(str(session.scalar(query, params) or 0))


class LedgerBooking:
    """One image's booking, as `run_prediction` makes it (see `generation.Booking`)."""

    def __init__(self, ledger: Ledger, *, batch_cap: Decimal | None = None, **entry: Any) -> None:
        self.ledger = ledger
        self.batch_cap = batch_cap
        """What the batch's images may cost in all (CARSTUDIO_BUDGET_PER_BATCH)."""
        self.entry = entry
        self._id: int | None = None

    def before_create(self) -> None:
        try:
            self._id = self.ledger.reserve(**self.entry, batch_cap=self.batch_cap)
        except BudgetReached as exc:
            raise GenerationError(Failure.BUDGET_REACHED, exc.message) from None

    def created(self, prediction_id: str) -> None:
        if self._id is None:
            self.before_create()
        assert self._id is not None
        self.ledger.confirm(self._id, prediction_id)

    def resumed(self, prediction_id: str) -> None:
        job_id, row = self.entry.get("job_id"), self.entry.get("row")
        if job_id is not None and row is not None:
            self.ledger.settle_open(job_id=job_id, row=row, prediction_id=prediction_id)

    def not_created(self) -> None:
        if self._id is not None:
            self.ledger.release(self._id)

    def cached(self) -> None:
        self.ledger.record_cached(**self.entry)
