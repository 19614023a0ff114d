"""Each lead's stage changes summed up in one row, kept in the same transaction as the changes.

The funnel (`nurture.funnel_tally`, for `nurture.reports`) needs, per lead,
the first time it reached each stage or a later one, its furthest stage,
what it won and whether sales returned it. Recounting those
from every `LifecycleTransition` took seconds per view at a million leads; the
``funnel_firsts`` row holds them instead. It is a function of the lead's
transitions alone, so whoever writes or moves transitions calls
`refresh` with the leads concerned, and the row is recounted from them (by
the ``(lead_id, at)`` index, a handful of rows): `nurture.store.lifecycle`
for every stage change, `nurture.store.merging` when a lead's history moves
to another. A deleted lead's row goes with it (``ON DELETE CASCADE``); a
lead without transitions has no row. The migration ``funnel_summary`` fills
the table the same way for all leads at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any, Final

from sqlalchemy import Connection, Insert, bindparam, case, func, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from nurture.models import FunnelFirst, LifecycleTransition

RANKS: Final = {"mql": 1, "sql": 2, "opportunity": 3, "customer": 4}
"""The stages after ``lead`` in funnel order; ``lead`` and ``returned`` rank 0."""
COLUMNS: Final = ("lead_id", "furthest", *(f"{s}_at" for s in RANKS), "won", "returned")


def refresh(session: Session, lead_ids: Iterable[int]) -> None:
    """Recount the rows of `lead_ids` from their transitions (call after flushing them), in
    one statement: an upsert. A lead's transitions are never taken away while it stays (a
    merge moves them to the survivor and deletes the other lead, and its row with it)."""
    ids = sorted(set(lead_ids))
    if ids:
        session.connection().execute(_upsert(session.get_bind().dialect.name), {"ids": ids})


@cache
def _upsert(dialect: str) -> Any:
    """The upsert, built once per dialect (building it took longer than running it)."""
    upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    ids: Any = bindparam("ids", expanding=True)
    statement = upsert(FunnelFirst).from_select(
        COLUMNS, recount(LifecycleTransition.lead_id.in_(ids))
    )
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[FunnelFirst.lead_id], set_={c: excluded[c] for c in COLUMNS[1:]}
    )


def backfill(connection: Session | Connection) -> None:
    """Count every lead's row from scratch into the empty table (the bench's loader, which
    writes transitions in SQL; the migration has its own copy of this)."""
    connection.execute(_insert(literal(True)))


def recount(condition: Any = None) -> Any:
    """The rows as the transitions say now: (lead_id, furthest, mql_at ... customer_at,
    won, returned) per lead with a transition."""
    t = LifecycleTransition
    rank = case(*((t.to_stage == s, r) for s, r in RANKS.items()), else_=0)
    query = select(
        t.lead_id,
        func.max(rank),
        *(func.min(case((rank >= r, t.at))) for r in RANKS.values()),
        func.sum(case((t.to_stage == "customer", t.amount))),
        func.max(case((t.to_stage == "returned", 1), else_=0)) == 1,
    )
    if condition is not None:
        query = query.where(condition)
    return query.group_by(t.lead_id)


def _insert(condition: Any) -> Insert:
    return insert(FunnelFirst).from_select(COLUMNS, recount(condition))
