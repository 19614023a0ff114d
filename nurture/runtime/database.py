"""Engines and sessions for the runtime, and the few statements that differ by database.

PostgreSQL is used as the models' `nurture.db.make_engine` makes it, with a
pool sized for the worker threads. SQLite gets one more rule than the
embedded default: every transaction starts with ``BEGIN IMMEDIATE``, taking
the write lock at once. The runtime's transactions read and then write (claim
enrollments, check delivery keys); with a plain ``BEGIN`` two threads that
read the same snapshot would fail with "database is locked" when the second
writes, instead of waiting its turn.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    String,
    Table,
    any_,
    create_engine,
    event,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from nurture import db

BUSY_TIMEOUT_SECONDS = 30.0
"""How long a SQLite writer waits for another to finish before giving up."""


def runtime_engine(
    url: str, *, pool_size: int = 5, statement_timeout: float | None = None
) -> Engine:
    """An engine for the scheduler, the workers or ``nurture run``.

    `statement_timeout`: see `nurture.db.make_engine` (None: the configured one).
    """
    parsed = db.normalize_url(url)
    if parsed.get_backend_name() != "sqlite":
        return db.make_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            statement_timeout=statement_timeout,
        )
    engine = create_engine(
        parsed, connect_args={"timeout": BUSY_TIMEOUT_SECONDS}, json_serializer=db.dump_json
    )
    memory = parsed.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
            if not memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def sessions_for(engine: Engine) -> sessionmaker[Session]:
    """Sessions on `engine`; objects stay readable after commit."""
    return db.session_factory(engine)


def table_of(model: type[Any]) -> Table:
    """The Core table of a mapped class (typed, for Core statements and executemany)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def among(
    session: Session,
    column: ColumnElement[int] | InstrumentedAttribute[int],
    ids: Iterable[int],
) -> ColumnElement[bool]:
    """``column IN (ids)``; on PostgreSQL ``column = ANY(:array)``, one short statement.

    A batch's ``IN`` of 250 placeholders makes a statement too long for
    psycopg's statement cache, so it would be parsed again for every batch.
    """
    values = list(ids)
    if is_postgres(session):
        return column == any_(literal(values, ARRAY(Integer)))
    return column.in_(values)


def among_texts(
    session: Session,
    column: ColumnElement[str | None] | InstrumentedAttribute[str | None],
    values: Iterable[str],
) -> ColumnElement[bool]:
    """`among` for a text column (emails, phones, domains): one short statement on PostgreSQL,
    where a batch's ``IN`` of thousands of placeholders is parsed again by psycopg each time."""
    listed = list(values)
    if is_postgres(session):
        return column == any_(literal(listed, ARRAY(String)))
    return column.in_(listed)


def allocate_ids(session: Session, table: Table, count: int) -> list[int]:
    """`count` new primary keys for `table`, taken before inserting the rows.

    PostgreSQL: from the id sequence. SQLite: after the largest id, safe
    because every runtime transaction holds the write lock from its start.
    """
    if count <= 0:
        return []
    if is_postgres(session):
        sequence = func.pg_get_serial_sequence(table.name, "id")
        query = select(func.nextval(sequence)).select_from(func.generate_series(1, count))
        return [int(i) for i in session.scalars(query)]
    start = session.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0
    return list(range(int(start) + 1, int(start) + 1 + count))


def insert_ignoring(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows`, skipping those that hit a unique key (``ON CONFLICT DO NOTHING``)."""
    if not rows:
        return
    make = pg_insert if is_postgres(session) else sqlite_insert
    session.execute(make(table).on_conflict_do_nothing(), list(rows))
