"""``nurture db``: schema commands for operators."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import typer
from alembic.util import CommandError
from rich.console import Console
from rich.markup import escape
from sqlalchemy import Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from nurture import db
from nurture.config import ConfigError

app = typer.Typer(help="Database commands.", no_args_is_help=True)

_FAILURES = (ArgumentError, SQLAlchemyError, CommandError, ImportError, OSError, ConfigError)
"""What a bad URL or setting, a missing driver or an unreachable database raises."""
QUERY_CANCELED = "57014"
"""PostgreSQL's SQLSTATE for a statement cancelled, by ``statement_timeout`` among others."""


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
        return repr(re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url))


def naming_option(message: str, url: str | None) -> str:
    """A settings error about NURTURE_DATABASE_URL, naming ``--url`` when that gave the URL."""
    variable = "NURTURE_DATABASE_URL"
    return f"--url{message[len(variable) :]}" if url and message.startswith(variable) else message


def _why(error: BaseException) -> str:
    """The first line of the driver's message; SQLAlchemy appends SQL and a help link."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    first = lines[0] if lines else type(cause).__name__
    if getattr(cause, "sqlstate", None) == QUERY_CANCELED and "statement timeout" in first:
        return f"it ran longer than NURTURE_STATEMENT_TIMEOUT allows ({first}; 0 means no limit)"
    return first


def migrated_engine(url: str, make: Callable[[str], Engine] | None = None) -> Engine:
    """An engine on `url` whose schema is at the newest migration; else exit 1 with why.

    `make` builds it; the default is the runtime's engine, for commands that
    write beside running workers: on SQLite its transactions take the write
    lock at once (`nurture.runtime.database.runtime_engine`).
    """
    from alembic.migration import MigrationContext

    from nurture.runtime.database import runtime_engine

    make = make or runtime_engine
    where = _redacted(url)
    try:
        parsed = db.normalize_url(url)
        file = parsed.database if parsed.get_backend_name() == "sqlite" else None
        if file not in (None, "", ":memory:") and not Path(str(file)).is_file():
            _exit(f"no database at {where}; run `nurture db upgrade` first")
        engine = make(url)
        with engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
    except _FAILURES as e:
        _exit(f"cannot use the database {where}: {_why(e)}")
    head = db.head_revision()
    if revision != head:
        engine.dispose()
        now = "no nurture schema" if revision is None else f"schema revision {revision}"
        _exit(
            f"the database {where} has {now}, this nurture needs {head}; run `nurture db upgrade`"
        )
    return engine


def _exit(message: str) -> NoReturn:
    _say(f"[red]error:[/red] {escape(message)}", err=True)
    raise typer.Exit(1)
