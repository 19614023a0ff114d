"""Fixtures shared by the whole suite: a database URL per backend.

``sqlite_url`` is a fresh file per test. ``pg_url`` is a fresh schema per test
on the PostgreSQL server named by ``NURTURE_TEST_PG_URL`` (default: a local
server with trust auth and a ``test`` database), dropped afterwards, so tests
never see each other's rows. Without a server the PostgreSQL tests are
skipped, except on CI (``CI=true``), where a missing server is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import URL, Engine, create_engine, pool, text
from sqlalchemy.exc import OperationalError

from nurture.db import make_engine, normalize_url, upgrade

DEFAULT_TEST_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file that does not exist yet."""
    return f"sqlite:///{tmp_path / 'nurture.db'}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Engine]:
    """An engine on the test PostgreSQL server, or a skip (a failure on CI) without one."""
    url = normalize_url(os.environ.get("NURTURE_TEST_PG_URL") or DEFAULT_TEST_PG_URL)
    engine = create_engine(
        url,
        poolclass=pool.NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 5},
    )
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as e:
        engine.dispose()
        why = " ".join(str(e.orig).split())
        reason = f"PostgreSQL unreachable at {url.render_as_string()}: {why}"
        reason += " (set NURTURE_TEST_PG_URL to use another server)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_server: Engine) -> Iterator[str]:
    """A PostgreSQL URL whose ``search_path`` is a new, empty schema, dropped after the test."""
    schema = f"test_{uuid.uuid4().hex[:16]}"
    with pg_server.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url: URL = pg_server.url.update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with pg_server.connect() as connection:
        connection.execute(text("SET lock_timeout = '10s'"))  # a leaked session fails, not hangs
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated_url(request: pytest.FixtureRequest) -> str:
    """An empty database of each kind, upgraded to the newest migration, by URL."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "pg_url"}[request.param]
    url: str = request.getfixturevalue(fixture)
    upgrade(url)
    return url


@pytest.fixture
def migrated_engine(migrated_url: str) -> Iterator[Engine]:
    """An engine on `migrated_url`."""
    engine = make_engine(migrated_url)
    yield engine
    engine.dispose()
