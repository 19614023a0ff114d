"""Alembic's entry point, configured in code by ``nurture.db.alembic_config``.

The URL arrives in ``config.attributes["url"]`` rather than as an ini option,
so passwords containing ``%`` survive and no ``alembic.ini`` is needed.
``render_as_batch`` lets later migrations alter tables on SQLite, which has
almost no ``ALTER TABLE``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import URL, pool

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
    engine = make_engine(_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection, target_metadata=target_metadata, render_as_batch=True
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
