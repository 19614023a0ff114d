"""Alembic's entry point, configured in code by ``nurture.db.alembic_config``.

The URL arrives in ``config.attributes["url"]`` rather than as an ini option,
so passwords containing ``%`` survive and no ``alembic.ini`` is needed.
``render_as_batch`` lets later migrations alter tables on SQLite, which has
almost no ``ALTER TABLE``.

On PostgreSQL the run holds an advisory lock named after the schema, taken
before Alembic reads the current revision: a second ``nurture db upgrade``
started meanwhile (two deploys at once) waits for the first, then finds
nothing to do, instead of failing on a ``duplicate key`` in the catalog.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import context
from sqlalchemy import URL, Connection, pool, text

from nurture.db import database_url, make_engine, normalize_url
from nurture.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> URL:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    return normalize_url(url or database_url())


def run_migrations_offline() -> None:
    """Write the SQL to stdout instead of running it (``alembic upgrade --sql``)."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations against the database."""
    # No statement timeout: an index built over millions of rows may take minutes, and a
    # cancelled migration would leave the operator with a database they cannot upgrade.
    engine = make_engine(_url(), poolclass=pool.NullPool, statement_timeout=0)
    try:
        with engine.connect() as connection, _upgrade_lock(connection):
            context.configure(
                connection=connection, target_metadata=target_metadata, render_as_batch=True
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


@contextmanager
def _upgrade_lock(connection: Connection) -> Iterator[None]:
    """On PostgreSQL, one migration run at a time per schema (a session advisory lock)."""
    if connection.dialect.name != "postgresql":
        yield
        return
    key = text("SELECT hashtextextended('nurture db upgrade ' || current_schema(), 0)")
    lock_id = connection.execute(key).scalar_one()
    connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": lock_id})
    connection.commit()  # Alembic runs its own transaction, which must not be nested in this one
    try:
        yield
    finally:
        connection.rollback()  # a failed run leaves its transaction to end first
        connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id})
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
