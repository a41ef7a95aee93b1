"""The ledger table: one entry per prediction paid for at Replicate."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Boolean, Float, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from carstudio.db import Base


class LedgerEntry(Base):
    """A prediction paid for, or about to be: reserved before the create is sent (so a budget
    holds across every worker), then given its prediction id. A prediction id appears once,
    however often its row is resumed."""

    __tablename__ = "ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    """UTC "YYYY-MM", the month whose budget it counts against."""
    model: Mapped[str] = mapped_column(String(64))
    usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 4), default=None)
    """None when the model's price is unknown."""
    prediction_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    kind: Mapped[str] = mapped_column(String(8))
    """"batch" or "single"."""
    job_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    row: Mapped[int | None] = mapped_column(Integer, default=None)
    image_id: Mapped[str | None] = mapped_column(String(32), default=None)
    owner_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    """An image the cache answered: recorded, at no cost."""
