"""Engine set-up: URLs, SQLite pragmas and transactions."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from nurture import db
from nurture.models import Lead
from nurture.runtime.database import runtime_engine


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = db.make_engine(sqlite_url)
    yield engine
    engine.dispose()


def test_the_default_database_is_a_sqlite_file_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NURTURE_DATABASE_URL", raising=False)

    assert db.database_url() == "sqlite:///nurture.db"


def test_the_environment_names_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NURTURE_DATABASE_URL", "postgresql://app@db.internal/nurture")

    assert db.database_url() == "postgresql://app@db.internal/nurture"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:s3cret@db/nurture",
        "postgres://app:s3cret@db/nurture",
        "postgresql+psycopg://app:s3cret@db/nurture",
    ],
)
def test_postgresql_urls_use_psycopg_3(url: str) -> None:
    normalized = db.normalize_url(url)

    assert normalized.drivername == "postgresql+psycopg"
    assert (normalized.username, normalized.password, normalized.host) == ("app", "s3cret", "db")


def test_sqlite_urls_are_left_alone() -> None:
    assert db.normalize_url("sqlite:///nurture.db").render_as_string() == "sqlite:///nurture.db"


def test_sqlite_gets_foreign_keys_and_wal(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_sqlite_reads_inside_a_transaction_are_repeatable(sqlite_engine: Engine) -> None:
    # Given a table with one row
    with sqlite_engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))

    with sqlite_engine.connect() as reader, sqlite_engine.connect() as writer:
        # When a transaction has read, and another connection then commits a row
        before = reader.execute(text("SELECT count(*) FROM t")).scalar()
        writer.execute(text("INSERT INTO t VALUES (2)"))
        writer.commit()

        # Then the first transaction still sees its snapshot: its SELECT began it
        assert reader.execute(text("SELECT count(*) FROM t")).scalar() == before == 1
        reader.rollback()
        assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 2


@pytest.mark.parametrize("make", [db.make_engine, runtime_engine])
def test_json_columns_keep_chinese_readable(sqlite_url: str, make: Callable[[str], Engine]) -> None:
    # Given a lead whose attributes are in Chinese, stored through an engine we build
    db.upgrade(sqlite_url)
    engine = make(sqlite_url)
    try:
        with Session(engine) as session, session.begin():
            session.add(Lead(email="li@client.example", attributes={"行业": "制造业"}))

        # Then the stored text reads as written, not as \\u escapes
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT attributes FROM leads")).scalar_one()
    finally:
        engine.dispose()
    assert stored == '{"行业": "制造业"}'
