"""``nurture db``: schema commands for operators."""

from __future__ import annotations

import typer
from alembic.util import CommandError
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from nurture import db

app = typer.Typer(help="Database commands.", no_args_is_help=True)

_FAILURES = (ArgumentError, SQLAlchemyError, CommandError, ImportError, OSError)
"""What a bad URL, a missing driver or an unreachable database raises."""


@app.command()
def upgrade(
    url: str | None = typer.Option(
        None, "--url", help="Database URL (default: $NURTURE_DATABASE_URL or sqlite:///nurture.db)."
    ),
) -> None:
    """Bring the database schema up to date."""
    target = url or db.database_url()
    try:
        db.upgrade(target)
    except _FAILURES as e:
        _say(
            f"[red]error:[/red] cannot upgrade {escape(_redacted(target))}: {escape(_why(e))}",
            err=True,
        )
        raise typer.Exit(1) from None
    _say(f"Database {escape(_redacted(target))} is up to date.")


def _say(markup: str, *, err: bool = False) -> None:
    """Print one line, never wrapped, on stdout or (``err``) stderr."""
    Console(stderr=err, soft_wrap=True, highlight=False).print(markup)


def _redacted(url: str) -> str:
    """The URL without its password, safe to print."""
    try:
        return db.normalize_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return repr(url)


def _why(error: BaseException) -> str:
    """The first line of the driver's message; SQLAlchemy appends SQL and a help link."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__
