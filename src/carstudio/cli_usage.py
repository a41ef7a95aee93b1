"""`carstudio usage`: what Car Studio has spent, per day and model, from the ledger."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from carstudio.billing.ledger import Ledger, dollars
from carstudio.config import Settings, keep_files_private
from carstudio.errors import CarStudioError
from carstudio.jobs.store import Store, database_url


def usage(
    start: Annotated[
        dt.datetime | None,
        typer.Option("--from", formats=["%Y-%m-%d"], help="First UTC day (default: the 1st)."),
    ] = None,
    end: Annotated[
        dt.datetime | None,
        typer.Option("--to", formats=["%Y-%m-%d"], help="Last UTC day (default: today)."),
    ] = None,
) -> None:
    """Images made and dollars spent per day and model, for the whole deployment."""
    keep_files_private()
    last = (end or dt.datetime.now(dt.UTC)).date()
    first = start.date() if start else last.replace(day=1)
    try:
        settings = Settings()
        settings.ensure_dirs()
        store = Store(database_url(settings.database_url, settings.data_dir))
    except CarStudioError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    try:
        ledger = Ledger(store, monthly_cap=settings.budget_monthly)
        lines = ledger.usage(
            start=dt.datetime.combine(first, dt.time(), dt.UTC).timestamp(),
            end=dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC).timestamp(),
            owner_id=None,
            everyone=True,
        )
        month = ledger.spent_this_month()
    finally:
        store.close()
    table = Table("day", "model", "images", "spent", title=f"Car Studio usage {first} to {last}")
    for line in lines:
        spent = dollars(line.usd) + (f" + {line.unpriced} unpriced" if line.unpriced else "")
        table.add_row(line.day, line.model, str(line.images), spent)
    total = sum((line.usd for line in lines), Decimal(0))
    table.add_row("", "total", str(sum(line.images for line in lines)), dollars(total))
    console = Console()
    console.print(table)
    cap = settings.budget_monthly
    budget = f" of the {dollars(cap)} monthly budget" if cap is not None else ""
    console.print(f"This month so far: {dollars(month)}{budget}.")
