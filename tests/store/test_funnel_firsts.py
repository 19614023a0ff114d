"""The funnel's row of firsts per lead always equals a recount of the lead's stage changes:
after any sequence of stage changes, returns, won deals, merges, forgets and deletes, and
after the migration fills it from the transitions there were."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from nurture import db
from nurture.engine.state import utc
from nurture.models import FunnelFirst, Lead, LifecycleTransition
from nurture.store import LifecycleError, mark_mql, return_to_nurture, transition
from nurture.store.data_rights import forget_person
from nurture.store.funnel_firsts import recount
from nurture.store.merging import merge_leads

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEADS = 4
SERIAL = itertools.count()

lead_index = st.integers(0, LEADS - 1)
day = st.integers(0, 90)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("mql"), lead_index, day),
        st.tuples(
            st.just("move"),
            lead_index,
            st.sampled_from(["sql", "opportunity", "customer"]),
            day,
            st.none() | st.decimals(0, 100_000, places=2),
        ),
        st.tuples(st.just("return"), lead_index, day),
        st.tuples(st.just("merge"), lead_index, lead_index),
        st.tuples(st.just("forget"), lead_index),
        st.tuples(st.just("delete"), lead_index),
    ),
    max_size=30,
)


def kept(session: Session, ids: list[int]) -> set[tuple[Any, ...]]:
    """The rows of firsts the writes kept."""
    f = FunnelFirst
    rows = session.execute(
        select(
            f.lead_id,
            f.furthest,
            f.mql_at,
            f.sql_at,
            f.opportunity_at,
            f.customer_at,
            f.won,
            f.returned,
        ).where(f.lead_id.in_(ids))
    )
    return {_plain(row) for row in rows}


def counted(session: Session, ids: list[int]) -> set[tuple[Any, ...]]:
    """The same rows recounted from the transitions now."""
    return {_plain(row) for row in session.execute(recount(LifecycleTransition.lead_id.in_(ids)))}


def _plain(row: Any) -> tuple[Any, ...]:
    """Comparable values: times in UTC (SQLite hands aggregates back as text), amounts as
    Decimals, the flag as a bool."""
    lead_id, furthest, *ats, won, returned = row
    times = tuple(None if a is None else utc(_time(a)) for a in ats)
    amount = None if won is None else Decimal(str(won)).quantize(Decimal("0.01"))
    return (int(lead_id), int(furthest), *times, amount, bool(returned))


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def apply(session: Session, ops: list[tuple[Any, ...]]) -> list[int]:
    """Run `ops` on fresh leads through nurture's own functions; every lead id touched. An
    op's lead index picks among the leads still there, so merges and deletes keep mattering."""
    serial = next(SERIAL)
    live = [
        Lead(email=f"p{serial}-{i}@corp.example", source=f"s{i % 2}", owner="rep@t.io")
        for i in range(LEADS)
    ]
    session.add_all(live)
    session.flush()
    ids = [lead.id for lead in live]
    for op, i, *rest in ops:
        if not live:
            break
        lead = live[i % len(live)]
        try:
            if op == "mql":
                mark_mql(session, lead, "test", "rule", None, T + timedelta(days=rest[0]), None)
            elif op == "move":
                stage, days, amount = rest
                at = T + timedelta(days=days)
                transition(session, lead, stage, "test", at, by="rep@t.io", amount=amount)
            elif op == "return":
                return_to_nurture(session, lead, "not now", T + timedelta(days=rest[0]))
            elif op == "merge" and len(live) > 1:
                other = live[(live.index(lead) + 1 + rest[0] % (len(live) - 1)) % len(live)]
                merge_leads(session, lead, other, T, "same person")
                live.remove(other)
            elif op == "forget":
                forget_person(session, lead, T)
            elif op == "delete":
                session.delete(lead)
                session.flush()
                live.remove(lead)
        except LifecycleError:
            pass
    session.flush()
    return ids


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_the_row_of_firsts_equals_a_recount_after_any_history(
    session: Session, ops: list[tuple[Any, ...]]
) -> None:
    try:
        ids = apply(session, ops)

        assert kept(session, ids) == counted(session, ids)
    finally:
        session.rollback()


def test_a_merge_gives_the_survivor_both_histories(session: Session) -> None:
    ada = Lead(email="ada@corp.example")
    li = Lead(email="li@corp.example")
    session.add_all([ada, li])
    session.flush()
    mark_mql(session, ada, "test", "rule", None, T + timedelta(days=5), None)
    mark_mql(session, li, "test", "rule", None, T, None)
    transition(session, li, "customer", "won", T + timedelta(days=9), amount=Decimal("700"))

    merge_leads(session, ada, li, T + timedelta(days=10), "same person")

    row = session.scalars(select(FunnelFirst).where(FunnelFirst.lead_id == ada.id)).one()
    assert (row.furthest, utc(row.mql_at), utc(row.customer_at), row.won) == (  # type: ignore[arg-type]
        4,
        T,
        T + timedelta(days=9),
        Decimal("700"),
    )
    assert session.scalar(select(FunnelFirst).where(FunnelFirst.lead_id == li.id)) is None


def test_the_migration_fills_the_rows_from_the_transitions_there_were(db_url: str) -> None:
    # Given a database at 0015 with leads and stage changes, written before the summary existed
    config = db.alembic_config(db_url)
    command.upgrade(config, "0015")
    engine = db.make_engine(db_url)
    try:
        with Session(engine) as session:
            leads = [Lead(email=f"m{i}@corp.example") for i in range(3)]
            session.add_all(leads)
            session.flush()
            a, b, c = (lead.id for lead in leads)
            moves = [
                (a, "lead", "mql", T, None),
                (a, "mql", "sql", T + timedelta(days=2), None),
                (a, "sql", "returned", T + timedelta(days=3), None),
                (a, "returned", "mql", T + timedelta(days=8), None),
                (b, "lead", "customer", T + timedelta(days=1), Decimal("1200.50")),
            ]
            session.execute(
                insert(LifecycleTransition),
                [
                    {"lead_id": i, "from_stage": s, "to_stage": to, "cause": "t", "at": at}
                    | {"amount": amount}
                    for i, s, to, at, amount in moves
                ],
            )
            session.commit()

        # When it is upgraded
        command.upgrade(config, "head")

        # Then each lead with stage changes has its row, equal to a recount; c has none
        with Session(engine) as session:
            rows = kept(session, [a, b, c])
            assert rows == counted(session, [a, b, c])
            assert rows == {
                (a, 2, T, T + timedelta(days=2), None, None, None, True),
                (b, 4, *(T + timedelta(days=1),) * 4, Decimal("1200.50"), False),
            }
    finally:
        engine.dispose()
