"""`carstudio users ...` and `carstudio tokens ...`: who may sign in, and API tokens for scripts.

They work on the store directly (the database the settings name), so they run on the server
machine, with the same settings as `serve`.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from carstudio.accounts.service import MIN_PASSWORD, Accounts
from carstudio.config import Settings, keep_files_private
from carstudio.errors import CarStudioError, InvalidInput
from carstudio.jobs.store import Store, database_url

users = typer.Typer(help="Who may sign in to Car Studio.", no_args_is_help=True)
tokens = typer.Typer(help="API tokens for scripts and `--server`.", no_args_is_help=True)

PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from standard input instead of a prompt."
    ),
]


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _accounts() -> Iterator[Accounts]:
    keep_files_private()
    try:
        settings = Settings()
        settings.ensure_dirs()
        store = Store(database_url(settings.database_url, settings.data_dir))
    except CarStudioError as exc:
        _fail(exc.message, 2)
    try:
        yield Accounts(store)
    except CarStudioError as exc:
        _fail(exc.message, 2 if isinstance(exc, InvalidInput) else 1)
    finally:
        store.close()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt(
        f"Password (at least {MIN_PASSWORD} characters)", hide_input=True, confirmation_prompt=True
    )
    return password


def _when(moment: float | None) -> str:
    if moment is None:
        return "never"
    return dt.datetime.fromtimestamp(moment).strftime("%Y-%m-%d %H:%M")


@users.command("add")
def add_user(
    name: Annotated[str, typer.Argument(help="The user name people sign in with.")],
    admin: Annotated[bool, typer.Option(help="May see and manage every user's batches.")] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a user; the password is asked for (or read from standard input)."""
    password = _read_password(password_stdin)
    with _accounts() as accounts:
        accounts.add_user(name, password, admin=admin)
    typer.echo(f"Added {'admin ' if admin else ''}user {name}.")


@users.command("list")
def list_users() -> None:
    """List the users."""
    with _accounts() as accounts:
        found = accounts.users()
    if not found:
        typer.echo("No users yet; add one with `carstudio users add NAME --admin`.")
        return
    table = Table("user", "role")
    for user in found:
        table.add_row(user.name, "admin" if user.admin else "user")
    Console().print(table)


@users.command("remove")
def remove_user(name: Annotated[str, typer.Argument(help="The user to remove.")]) -> None:
    """Remove a user and their API tokens; their batches stay, visible to admins."""
    with _accounts() as accounts:
        accounts.remove_user(name)
    typer.echo(f"Removed user {name}.")


@users.command("passwd")
def change_password(
    name: Annotated[str, typer.Argument(help="The user whose password changes.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a user's password; their open sessions end."""
    password = _read_password(password_stdin)
    with _accounts() as accounts:
        accounts.set_password(name, password)
    typer.echo(f"Changed the password of {name}; their sessions have ended.")


@tokens.command("create")
def create_token(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. 'nightly feed'.")],
    user: Annotated[
        str | None, typer.Option(help="The user it acts as (default: the only admin).")
    ] = None,
) -> None:
    """Create an API token and print it; it is shown only this once."""
    with _accounts() as accounts:
        if user is None:
            admins = [u.name for u in accounts.users() if u.admin]
            if len(admins) != 1:
                _fail("say which user the token acts as: --user NAME", 2)
            user = admins[0]
        token = accounts.create_token(user, name)
    typer.echo(token)
    typer.echo(
        f"API token '{name}' for {user}; send it as 'Authorization: Bearer <token>'. "
        "It is not shown again.",
        err=True,
    )


@tokens.command("list")
def list_tokens() -> None:
    """List API tokens (never the tokens themselves)."""
    with _accounts() as accounts:
        found = accounts.tokens()
    if not found:
        typer.echo("No API tokens.")
        return
    table = Table("id", "name", "user", "created", "last used")
    for token in found:
        table.add_row(
            str(token.id),
            token.name,
            token.user,
            _when(token.created_at),
            _when(token.last_used_at),
        )
    Console().print(table)


@tokens.command("revoke")
def revoke_token(
    token_id: Annotated[int, typer.Argument(help="The id `tokens list` shows.")],
) -> None:
    """Revoke an API token at once."""
    with _accounts() as accounts:
        accounts.revoke_token(token_id)
    typer.echo(f"Revoked API token {token_id}.")
