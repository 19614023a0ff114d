"""The SLA clock: MQLs nobody accepted in time are reassigned, then escalated.

The scheduler calls `sweep` every tick. Due MQLs are read by their indexed
deadline, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number of
schedulers share the work and a restart loses nothing: the deadline is a
column. On expiry, by the routing's SLA:

- ``reassign``: the next available member of the MQL's team who has not had
  it yet (by the same way the team was chosen: round robin or fewest open);
  for an MQL nobody held, the routing rules again; when nobody is left, the
  escalation user, if there is one and they have not had it;
- ``escalate``: the escalation user;
- ``notify``: the owner is reminded and the clock starts again.

`remind` sends the routing's ``remind D before`` reminders, once per deadline.

A new owner gets the whole SLA again. When nobody is left, the MQL stays
where it is and its clock stops; that is recorded too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dsl.draw import duration_words
from nurture.engine.state import utc
from nurture.handoff import notices
from nurture.handoff.assign import read_desk, record_choice, sla_times
from nurture.handoff.route import Choice, Desk, after_deadline, choose
from nurture.models import Assignment, Lead, MqlRecord
from nurture.store.definitions import active_routing
from nurture.store.views import engine_events, last_returned_at, lead_view


def sweep(
    session: Session, now: datetime, limit: int, routing: Mapping[str, Any] | None = None
) -> list[int]:
    """Act on up to `limit` MQLs whose deadline has passed, by `routing` (default: the
    deployed one); their ids."""
    now = utc(now)
    due = list(
        session.scalars(
            select(MqlRecord)
            .where(
                MqlRecord.accepted_at.is_(None),
                MqlRecord.returned_at.is_(None),
                MqlRecord.sla_due_at <= now,
            )
            .order_by(MqlRecord.sla_due_at, MqlRecord.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not due:
        return []
    routing = (active_routing(session) if routing is None else routing) or {}
    for record in due:
        expire(session, record, routing, now)
    return [record.id for record in due]


def expire(session: Session, record: MqlRecord, routing: Mapping[str, Any], now: datetime) -> None:
    """What the SLA says when `record`'s deadline has passed."""
    sla = routing.get("sla") or {}
    lead = session.get(Lead, record.lead_id)
    if lead is None or not sla.get("seconds"):  # no SLA any more: the clock stops
        record.sla_due_at = None
        return
    late = f"not accepted within {duration_words(int(sla['seconds']))}"
    if sla.get("action") == "notify":
        record.sla_due_at = now + timedelta(seconds=int(sla["seconds"]))
        _remind(session, record, routing, now)
        return
    had = _had(session, record)
    desk = read_desk(session, routing, now)
    choice = _next(session, lead, record, routing, desk, had, now)
    if choice is None or choice.owner is None:
        _stays(session, record, f"{late}; nobody left to reassign to", now)
        return
    if choice.how == "escalation":
        record.escalated_at = now
    was = record.owner or "nobody"
    cause = f"{late} by {was}"
    record_choice(session, lead, record, choice, cause, routing, now)
    record.sla_due_at, record.remind_at = sla_times(routing, now)


def _next(
    session: Session,
    lead: Lead,
    record: MqlRecord,
    routing: Mapping[str, Any],
    desk: Desk,
    had: frozenset[str],
    now: datetime,
) -> Choice | None:
    """The owner after the deadline, or None when nobody is left (`route.after_deadline`)."""

    def again() -> Choice:
        view = lead_view(session, lead)
        after = last_returned_at(session, lead.id)
        return choose(
            routing, view, engine_events(session, lead.id, until=now, after=after), now, desk
        )

    way = _team_way(session, record) if record.team is not None else "team"
    return after_deadline(routing, record.owner, record.team, way, had, desk, again)


def remind(
    session: Session, now: datetime, limit: int, routing: Mapping[str, Any] | None = None
) -> list[int]:
    """Remind the owners of up to `limit` unanswered MQLs whose reminder time has come."""
    now = utc(now)
    due = list(
        session.scalars(
            select(MqlRecord)
            .where(
                MqlRecord.remind_at <= now,
                MqlRecord.accepted_at.is_(None),
                MqlRecord.returned_at.is_(None),
            )
            .order_by(MqlRecord.remind_at, MqlRecord.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    routing = (active_routing(session) if routing is None else routing) or {}
    for record in due:
        _remind(session, record, routing, now)
    return [record.id for record in due]


def _remind(session: Session, record: MqlRecord, routing: Mapping[str, Any], now: datetime) -> None:
    """Queue reminders to the owner on their assignment's channels; once per deadline."""
    record.remind_at = None
    given = session.scalar(
        select(Assignment)
        .where(Assignment.mql_id == record.id, Assignment.owner == record.owner)
        .order_by(Assignment.id.desc())
        .limit(1)
    )
    if given is not None and record.owner is not None:
        notices.queue(session, given, routing, "reminder", now)


def _had(session: Session, record: MqlRecord) -> frozenset[str]:
    """Everyone who has held this MQL: it never goes back to one of them."""
    owners = session.scalars(
        select(Assignment.owner).where(
            Assignment.mql_id == record.id, Assignment.owner.is_not(None)
        )
    )
    return frozenset(str(o) for o in owners) | ({record.owner} if record.owner else set())


def _team_way(session: Session, record: MqlRecord) -> str:
    """How the MQL's team was drawn from: round robin or fewest open."""
    how = session.scalar(
        select(Assignment.how)
        .where(Assignment.mql_id == record.id, Assignment.team == record.team)
        .order_by(Assignment.id)
        .limit(1)
    )
    return "round_robin" if how == "round_robin" else "team"


def _stays(session: Session, record: MqlRecord, why: str, now: datetime) -> None:
    """Nobody to hand the MQL to: it stays with its owner and its clock stops."""
    holder = record.owner or "nobody"
    record.sla_due_at, record.remind_at = None, None
    session.add(
        Assignment(
            lead_id=record.lead_id,
            mql_id=record.id,
            owner=None,
            team=record.team,
            rule=None,
            how="none",
            previous=record.owner,
            cause=why,
            reason=f"stays with {holder}; the SLA clock stopped",
            at=now,
        )
    )
