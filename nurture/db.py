"""Engines, sessions and schema upgrades for SQLite (embedded) and PostgreSQL.

The embedded default needs no configuration: a ``nurture.db`` file in the
current directory. Production sets ``NURTURE_DATABASE_URL`` to PostgreSQL,
always driven by psycopg 3.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

import migrations

DEFAULT_DATABASE_URL = "sqlite:///nurture.db"
BACKENDS = ("sqlite", "postgresql")
"""The databases nurture runs on: its migrations and segment SQL are written for these."""


def database_url() -> str:
    """The configured database URL, or the embedded SQLite file."""
    return os.environ.get("NURTURE_DATABASE_URL") or DEFAULT_DATABASE_URL


def normalize_url(url: str | URL) -> URL:
    """Parse ``url``, sending every PostgreSQL URL to the psycopg 3 driver.

    Raises ``sqlalchemy.exc.ArgumentError`` for text that is not a URL.
    """
    try:
        parsed = make_url(url)
    except ValueError as e:  # SQLAlchemy lets int() fail on a port that is not a number
        raise ArgumentError("the port is not a number") from e
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def supported_url(url: str | URL) -> URL:
    """`normalize_url`, refusing a database nurture does not run on (its migrations are for two).

    Raises ``sqlalchemy.exc.ArgumentError`` naming the backend.
    """
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend not in BACKENDS:
        raise ArgumentError(f"use sqlite or postgresql, not {backend}")
    return parsed


def dump_json(value: Any) -> str:
    """JSON columns as text that keeps Chinese (any Unicode) readable in the database."""
    return json.dumps(value, ensure_ascii=False)


def make_engine(url: str | URL, *, statement_timeout: float | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys, WAL and real transactions.

    On PostgreSQL every connection gets a ``statement_timeout`` of that many
    seconds (None: ``NURTURE_STATEMENT_TIMEOUT``; 0: none), see `limit_statements`.
    """
    parsed = supported_url(url)
    engine = create_engine(parsed, json_serializer=dump_json, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        _configure_sqlite(engine, in_memory=parsed.database in (None, "", ":memory:"))
    else:
        limit_statements(
            engine, configured_timeout() if statement_timeout is None else statement_timeout
        )
        no_jit(engine)
    return engine


def configured_timeout() -> float:
    """``NURTURE_STATEMENT_TIMEOUT`` (or ``nurture.toml``'s), in seconds; `ConfigError` if bad."""
    from nurture.config import Settings  # config reads this module's URL helpers

    seconds: float = Settings.load_one("statement_timeout")
    return seconds


def limit_statements(engine: Engine, seconds: float) -> None:
    """Have PostgreSQL cancel any statement on `engine`'s connections that runs over `seconds`.

    A ``SET`` as each connection opens, so the options in the URL the user gave
    (a ``search_path``, say) stay as they are; a URL whose ``options`` set a
    ``statement_timeout`` of its own keeps it. The limit is PostgreSQL's, per
    statement: a transaction of many short statements is never cut, and the
    server stops a statement even when the client that sent it is gone.
    """
    options = engine.url.query.get("options", "")
    if seconds <= 0 or "statement_timeout" in str(options):
        return
    milliseconds = max(1, round(seconds * 1000))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {milliseconds}")
        dbapi_connection.commit()


def no_jit(engine: Engine) -> None:
    """Turn PostgreSQL's JIT compilation off on `engine`'s connections (``SET jit = off``),
    unless the URL's ``options`` say otherwise.

    The planner's cost estimates for the funnel's grouped queries over CTEs run
    far past ``jit_above_cost``, and compiling them with inlining and
    optimisation took 4.5 s of a 6.2 s query at 100,000 leads (``EXPLAIN
    ANALYZE``'s JIT timing); the queries run in a fraction of that without it.
    Nurture's other statements are short, where JIT never pays either.
    """
    if "jit" in str(engine.url.query.get("options", "")):
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET jit = off")
        dbapi_connection.commit()


def _configure_sqlite(engine: Engine, *, in_memory: bool) -> None:
    """Make SQLite behave like the database the engine's guarantees assume.

    Foreign keys are off by default in SQLite. WAL lets readers proceed while
    a writer commits. And pysqlite defers ``BEGIN`` until the first write, so
    a read-then-write (claiming an enrollment, checking a delivery key) would
    not be one transaction; taking over ``BEGIN`` ourselves fixes that, as the
    SQLAlchemy pysqlite documentation recommends.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic configuration built in code, so no ``alembic.ini`` is needed.

    For a new migration: ``command.revision(alembic_config(), "message",
    autogenerate=True, rev_id="0002")``; ruff then tidies the file it writes.
    """
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["url"] = supported_url(url or database_url())
    hooks = {"fix": "check --fix --quiet", "format": "format --quiet"}
    config.set_section_option("post_write_hooks", "hooks", " ".join(hooks))
    for name, options in hooks.items():
        config.set_section_option("post_write_hooks", f"{name}.type", "module")
        config.set_section_option("post_write_hooks", f"{name}.module", "ruff")
        config.set_section_option(
            "post_write_hooks", f"{name}.options", f"{options} REVISION_SCRIPT_FILENAME"
        )
    return config


def head_revision() -> str | None:
    """The newest migration: the revision a database must be at for this nurture."""
    return ScriptDirectory(str(Path(migrations.__file__).parent)).get_current_head()


def upgrade(url: str | URL | None = None, revision: str = "head") -> None:
    """Bring the schema at ``url`` (default: the configured database) to ``revision``."""
    command.upgrade(alembic_config(url), revision)
