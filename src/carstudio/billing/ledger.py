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
    Float,
    Integer,
    Numeric,
    Select,
    String,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)

from carstudio.billing.models import LedgerEntry
from carstudio.errors import BudgetReached, Failure, GenerationError
from carstudio.jobs.store import Store

_BUDGET_LOCK = 0x6361_7262  # PostgreSQL advisory lock key for spending


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
    ) -> int:
        """Book one image before its create is sent; BudgetReached if the month's cap would
        be passed. A batch row that already holds an unused booking (its create was sent but
        never answered) keeps that one."""
        now = self.clock()
        month = month_of(now)
        with self.store.session() as s:
            if s.bind is not None and s.bind.dialect.name == "postgresql":
                s.execute(select(func.pg_advisory_xact_lock(_BUDGET_LOCK)))
            if job_id is not None:
                held = s.scalar(_open_booking(job_id, row))
                if held is not None:
                    return held
            fields: dict[str, Any] = {
                "created_at": literal(now, Float),
                "month": literal(month, String),
                "model": literal(model, String),
                "usd": literal(usd, Numeric(12, 4)),
                "kind": literal(kind, String),
                "job_id": literal(job_id, String),
                "row": literal(row, Integer),
                "image_id": literal(image_id, String),
                "owner_id": literal(owner_id, Integer),
            }
            values: Select[Any] = select(*fields.values())
            if self.monthly_cap is not None:
                if usd is None:
                    raise self._unpriced(model)
                # The check and the booking are one statement: no other booking can slip in
                # between them, whichever worker or machine makes it.
                spent = (
                    select(func.coalesce(func.sum(LedgerEntry.usd), 0))
                    .where(LedgerEntry.month == month)
                    .scalar_subquery()
                )
                values = values.where(spent + usd <= self.monthly_cap)
            booked = s.scalar(
                insert(LedgerEntry).from_select(list(fields), values).returning(LedgerEntry.id)
            )
        if booked is None:
            raise self._over_budget(month, usd)
        return int(booked)

    def _unpriced(self, model: str) -> BudgetReached:
        return BudgetReached(
            f"The price of {model} is unknown, so Car Studio cannot keep it within the monthly "
            f"budget of {dollars(self.monthly_cap or Decimal(0))} (CARSTUDIO_BUDGET_MONTHLY); "
            "set its price in CARSTUDIO_PRICES or choose a model with a known price."
        )

    def _over_budget(self, month: str, usd: Decimal | None) -> BudgetReached:
        with self.store.session() as s:
            spent = s.scalar(
                select(func.coalesce(func.sum(LedgerEntry.usd), 0)).where(
                    LedgerEntry.month == month
                )
            )
        return BudgetReached(
            f"This month's spending would pass its budget: {dollars(Decimal(str(spent or 0)))} "
            f"of {dollars(self.monthly_cap or Decimal(0))} is used and this image costs "
            f"{dollars(usd or Decimal(0))} (CARSTUDIO_BUDGET_MONTHLY). Raise the budget or wait "
            "for next month, then retry the failed rows."
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
            known = s.scalar(
                select(LedgerEntry.id).where(LedgerEntry.prediction_id == prediction_id)
            )
            if known is not None and known != entry_id:
                s.execute(delete(LedgerEntry).where(LedgerEntry.id == entry_id))
                return
            s.execute(
                update(LedgerEntry)
                .where(LedgerEntry.id == entry_id)
                .values(prediction_id=prediction_id)
            )

    def settle_open(self, *, job_id: str, row: int, prediction_id: str) -> None:
        """A batch row's unsettled booking, if it has one, is `prediction_id`'s."""
        with self.store.reading() as s:
            held = s.scalar(_open_booking(job_id, row))
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
        month = month_of(self.clock())
        with self.store.session() as s:
            query = select(func.coalesce(func.sum(LedgerEntry.usd), 0)).where(
                LedgerEntry.month == month
            )
            if not everyone:
                query = query.where(LedgerEntry.owner_id == owner_id)
            return Decimal(str(s.scalar(query) or 0))

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


def _open_booking(job_id: str, row: int | None) -> Select[int]:
    """A batch row's booking whose create was sent but is not yet settled with its id."""
    return select(LedgerEntry.id).where(
        LedgerEntry.job_id == job_id,
        LedgerEntry.row == row,
        LedgerEntry.prediction_id.is_(None),
        LedgerEntry.cached.is_(False),
    )


class LedgerBooking:
    """One image's booking, as `run_prediction` makes it (see `generation.Booking`)."""

    def __init__(self, ledger: Ledger, **entry: Any) -> None:
        self.ledger = ledger
        self.entry = entry
        self._id: int | None = None

    def before_create(self) -> None:
        try:
            self._id = self.ledger.reserve(**self.entry)
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
