"""Stage changes: lead → mql → sql → opportunity → customer, and `returned`.

Every change is a `LifecycleTransition` row with its cause, written in the
same transaction as the stage itself, and so is the lead's row of firsts the
funnel reads (`nurture.store.funnel_firsts`). The stage moves by compare-and-set
(``UPDATE leads SET stage = :to WHERE id = :id AND stage = :seen``), so two
workers that both saw ``lead`` cannot both move it: on PostgreSQL the second
UPDATE waits for the first to commit, then matches no row and re-reads the
stage; on SQLite writers are serialised.

Rules:

- stages only move forward (by rank; skipping is allowed, e.g. a deal closed
  offline), except `returned`;
- a lead becomes MQL only through `mark_mql`, once per time in nurture: a lead
  at or past MQL is never demoted or re-emitted by it;
- sales may return an MQL, SQL or opportunity with a reason
  (`return_to_nurture`): the stage becomes `returned`, the owner is released
  (marketing owns nurture again) and the open MQL's SLA clock stops. A
  returned lead ranks with `lead` and may become MQL again, but only on new
  behaviour: interest counts the events after its latest return (see
  `nurture.store.scoring`), so the lead is not handed straight back;
- one owner at a time: `owner` changes only with a transition that says so.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from dsl.vocabulary import STAGE_RANK
from nurture.engine.state import utc
from nurture.models import STAGES, Lead, LifecycleTransition, MqlRecord
from nurture.store.funnel_firsts import refresh

MQL: Final = "mql"
RETURNED: Final = "returned"
RETURNABLE: Final = frozenset({"mql", "sql", "opportunity"})
"""Stages sales owns and may send back to nurture."""


class LifecycleError(ValueError):
    """Raised when a stage change is not allowed, such as customer → sql."""


class _Unchanged(Enum):
    UNCHANGED = "unchanged"


UNCHANGED: Final = _Unchanged.UNCHANGED
"""`transition(owner=...)` default: the owner stays as it is."""


def rank(stage: str) -> int:
    """The stage's place in the funnel; `returned` ranks with `lead`."""
    return STAGE_RANK[stage]


def transition(
    session: Session,
    lead: Lead,
    to_stage: str,
    cause: str,
    at: datetime,
    *,
    owner: str | _Unchanged | None = UNCHANGED,
    by: str | None = None,
    amount: Decimal | None = None,
) -> LifecycleTransition | None:
    """Move `lead` forward to `to_stage` (or to `returned`), recording `cause` (and who
    made the change and the deal's amount, when sales reports it).

    Returns None when the lead is already at `to_stage`, so a retried job is
    harmless. Raises `LifecycleError` for a move backwards, and for `mql`,
    which `mark_mql` owns because it also writes the MQL record.
    """
    if to_stage not in STAGES:
        raise LifecycleError(f"unknown stage {to_stage!r}; stages: {', '.join(STAGES)}")
    if to_stage == MQL:
        raise LifecycleError("a lead becomes MQL through mark_mql, which records the MQL")
    if not cause.strip():
        raise LifecycleError("a transition needs a cause")
    values: dict[str, Any] = {} if owner is UNCHANGED else {"owner": owner}
    seen = _move(session, lead, to_stage, lambda stage: _allowed(lead, stage, to_stage), values)
    if seen is None:
        return None
    return _record(session, lead, seen, to_stage, cause, at, by=by, amount=amount)


def _allowed(lead: Lead, seen: str, to_stage: str) -> bool:
    if seen == to_stage:
        return False
    if to_stage == RETURNED and seen in RETURNABLE:
        return True
    if to_stage != RETURNED and rank(to_stage) > rank(seen):
        return True
    raise LifecycleError(f"lead {lead.id} cannot go from {seen} to {to_stage}")


def mark_mql(
    session: Session,
    lead: Lead,
    cause: str,
    rule: str,
    event_id: int | None,
    at: datetime,
    sla: timedelta | None,
) -> MqlRecord | None:
    """Make `lead` an MQL at `at`, once: the transition and the MQL record with its scores.

    `cause` says what happened (the event or campaign statement), `rule` which
    rule held; `sla` starts the clock for sales to accept. Returns None, and
    writes nothing, when the lead is already MQL or further — also when
    another worker got there first.
    """
    seen = _move(session, lead, MQL, lambda stage: rank(stage) < rank(MQL), {})
    if seen is None:
        return None
    _record(session, lead, seen, MQL, cause, at)
    record = MqlRecord(
        lead_id=lead.id,
        rule=rule,
        cause_event_id=event_id,
        fit=lead.fit,
        interest=lead.interest,
        grade=lead.grade,
        at=at,
        sla_due_at=None if sla is None else utc(at) + sla,
    )
    session.add(record)
    session.flush()
    return record


def return_to_nurture(
    session: Session, lead: Lead, reason: str, at: datetime, *, by: str | None = None
) -> LifecycleTransition | None:
    """Sales sends `lead` back with `reason`: stage `returned`, owner released, SLA stopped.

    Returns None when the lead is already returned. Raises `LifecycleError`
    without a reason, or for a lead sales does not hold (lead, customer).
    """
    if not reason.strip():
        raise LifecycleError("returning a lead needs a reason")
    who = by or lead.owner or "sales"
    cause = f"returned by {who}: {reason}"
    done = transition(session, lead, RETURNED, cause, at, owner=None, by=by)
    if done is None:
        return None
    session.execute(
        update(MqlRecord)
        .where(MqlRecord.lead_id == lead.id, MqlRecord.returned_at.is_(None))
        .values(returned_at=at, return_reason=reason)
        .execution_options(synchronize_session="fetch")
    )
    return done


def history(session: Session, lead_id: int) -> list[LifecycleTransition]:
    """The lead's transitions, oldest first."""
    return list(
        session.scalars(
            select(LifecycleTransition)
            .where(LifecycleTransition.lead_id == lead_id)
            .order_by(LifecycleTransition.at, LifecycleTransition.id)
        )
    )


def _move(
    session: Session,
    lead: Lead,
    to_stage: str,
    allowed: Callable[[str], bool],
    values: dict[str, Any],
) -> str | None:
    """Compare-and-set the stage; the stage it moved from, or None when `allowed` says no."""
    while True:
        seen = session.scalar(select(Lead.stage).where(Lead.id == lead.id))
        if seen is None:
            raise LifecycleError(f"no lead with id {lead.id}")
        if not allowed(seen):
            set_committed_value(lead, "stage", seen)
            return None
        moved = session.execute(
            update(Lead)
            .where(Lead.id == lead.id, Lead.stage == seen)
            .values(stage=to_stage, **values)
            .execution_options(synchronize_session=False)
        )
        if getattr(moved, "rowcount", 0) == 1:
            set_committed_value(lead, "stage", to_stage)
            for name, value in values.items():
                set_committed_value(lead, name, value)
            session.expire(lead, ["updated_at"])
            return seen


def _record(
    session: Session,
    lead: Lead,
    seen: str,
    to_stage: str,
    cause: str,
    at: datetime,
    *,
    by: str | None = None,
    amount: Decimal | None = None,
) -> LifecycleTransition:
    row = LifecycleTransition(
        lead_id=lead.id,
        from_stage=seen,
        to_stage=to_stage,
        cause=cause,
        at=at,
        by=by,
        amount=amount,
    )
    session.add(row)
    session.flush()
    refresh(session, [lead.id])
    return row
