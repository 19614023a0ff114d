"""Long chains of one operator compile to one set operation a group, and plan fast on PostgreSQL.

That they select what the runtime selects is checked in `test_sql_agrees_with_runtime`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dsl.graph import Json
from nurture import db
from nurture.models import Lead, Tag
from nurture.segments import to_sql
from nurture.segments.export import count_query

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def tagged(n: int) -> list[Json]:
    return [{"op": "tagged", "tag": f"t:{k}"} for k in range(n)]


def untagged(n: int) -> list[Json]:
    return [{"op": "not", "arg": t} for t in tagged(n)]


def sql(cond: Json, dialect: str) -> str:
    compiled = select(Lead.id).where(to_sql(cond, NOW))
    chosen = postgresql.dialect() if dialect == "postgresql" else sqlite.dialect()
    return str(compiled.compile(dialect=chosen, compile_kwargs={"render_postcompile": True}))


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@pytest.mark.parametrize(
    ("cond", "subqueries"),
    [
        ({"op": "or", "args": tagged(200)}, 1),
        ({"op": "and", "args": tagged(200)}, 1),
        ({"op": "and", "args": untagged(200)}, 1),
        ({"op": "or", "args": untagged(200)}, 1),
        ({"op": "or", "args": [*tagged(100), *untagged(100)]}, 2),
        ({"op": "or", "args": [{"op": "or", "args": tagged(100)}, *tagged(100)]}, 1),
        ({"op": "and", "args": [{"op": "not", "arg": {"op": "or", "args": tagged(200)}}]}, 1),
    ],
    ids=["or", "and", "and-not", "or-not", "or-mixed", "nested-or", "not-or"],
)
def test_a_chain_of_tagged_terms_is_one_subquery_over_tags(
    cond: Json, subqueries: int, dialect: str
) -> None:
    # Given a chain of 200 tagged / not tagged terms, When it is compiled
    text_ = sql(cond, dialect)
    # Then the tags table is read once a group, with every tag in one IN list
    assert text_.count("FROM tags") == subqueries, text_[:500]
    assert text_.count(" IN (") == subqueries


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_chain_of_equalities_on_one_field_is_one_in_list(dialect: str) -> None:
    # Given lead.title == "T0" or ... or lead.title == "T199"
    args = [
        {"op": "compare", "subject": "field", "field": "title", "cmp": "==", "value": f"T{k}"}
        for k in range(200)
    ]
    # When it is compiled, Then the column and the attribute it falls back to are each
    # compared with one IN list, not 200 times
    text_ = sql({"op": "or", "args": args}, dialect)
    assert text_.count(" IN (") == 2, text_[:500]
    assert text_.count("lower(leads.title)") == 1


def test_postgresql_plans_200_term_chains_in_a_moment(pg_url: str) -> None:
    # Given a migrated PostgreSQL database with a few tagged leads
    db.upgrade(pg_url)
    engine: Engine = db.make_engine(pg_url)
    try:
        with Session(engine) as session, session.begin():
            for k in range(3):
                session.add(Lead(id=k + 1, email=f"l{k}@x.cn"))
                session.flush()
                session.add(Tag(lead_id=k + 1, tag=f"t:{k}"))
        # When segment counts of 200-term chains are explained
        with engine.connect() as connection:
            for cond, expected in (
                ({"op": "and", "args": tagged(200)}, 0),
                ({"op": "or", "args": tagged(200)}, 3),
                ({"op": "or", "args": [*tagged(100), *untagged(100)]}, 3),
            ):
                query = count_query(cond, NOW)
                compiled = query.compile(
                    dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
                )
                plan = connection.exec_driver_sql(
                    f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled.string}", dict(compiled.params)
                ).scalar_one()[0]
                # Then PostgreSQL plans each in well under a second (it took 23 s for the
                # and-chain of EXISTS), and counts the leads the chain selects
                assert plan["Planning Time"] < 1000, plan["Planning Time"]
                assert connection.execute(query).scalar_one() == expected
    finally:
        engine.dispose()
