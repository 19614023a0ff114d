"""Assigning an MQL in the MQL's own transaction: read the desk, choose, record.

The round robin rows of every team are locked (``FOR UPDATE`` on PostgreSQL,
in one order) before the desk is read, so assignments are one at a time and
round robin stays fair with any number of workers; a lead gets its MQL once
(`nurture.store.lifecycle.mark_mql`), so it gets one owner. Every assignment,
to somebody or to nobody, is an `Assignment` row with its reason in words.

This module reads and writes rows only; it imports nothing of `nurture.store`,
which calls it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from nurture.engine.state import Event, LeadView, utc
from nurture.handoff import notices
from nurture.handoff.route import Choice, Desk, choose, teams
from nurture.models import Assignment, Lead, MqlRecord, RoundRobinTurn, SalesMember


def hand_over(
    session: Session,
    lead: Lead,
    record: MqlRecord,
    view: LeadView,
    events: Sequence[Event],
    routing: Mapping[str, Any],
    now: datetime,
) -> Assignment:
    """Route a new MQL to its owner by the routing rules and record why."""
    desk = read_desk(session, routing, now)
    owner = view.field("account_owner")
    choice = choose(routing, view, events, now, desk, account_owner=owner or None)
    record.remind_at = sla_times(routing, record.at)[1]
    return record_choice(session, lead, record, choice, "MQL: " + record.rule, routing, now)


def record_choice(
    session: Session,
    lead: Lead,
    record: MqlRecord,
    choice: Choice,
    cause: str,
    routing: Mapping[str, Any],
    now: datetime,
) -> Assignment:
    """Give the lead and its MQL to `choice.owner` (or to nobody), count the round robin turn,
    write the assignment row and queue the owner's notices."""
    previous = record.owner
    session.execute(
        update(Lead)
        .where(Lead.id == lead.id)
        .values(owner=choice.owner)
        .execution_options(synchronize_session=False)
    )
    set_committed_value(lead, "owner", choice.owner)
    record.owner = choice.owner
    if choice.team is not None:
        record.team = choice.team
    if choice.how == "round_robin" and choice.team and choice.owner:
        session.execute(
            update(RoundRobinTurn)
            .where(RoundRobinTurn.team == choice.team, RoundRobinTurn.member == choice.owner)
            .values(turns=RoundRobinTurn.turns + 1)
        )
    row = Assignment(
        lead_id=lead.id,
        mql_id=record.id,
        owner=choice.owner,
        team=choice.team,
        rule=choice.rule,
        how=choice.how,
        previous=previous,
        cause=cause,
        reason=choice.reason,
        at=utc(now),
    )
    session.add(row)
    session.flush()
    notices.queue(session, row, routing, "assigned", now)
    return row


def read_desk(session: Session, routing: Mapping[str, Any], now: datetime) -> Desk:
    """Lock the round robin rows of every team, then read who is away and who holds what."""
    turns = _lock_turns(session, routing)
    now = utc(now)
    away = session.scalars(select(SalesMember.email).where(SalesMember.away_until > now))
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = session.execute(
        select(Assignment.owner, func.count())
        .where(Assignment.at >= midnight, Assignment.owner.is_not(None))
        .group_by(Assignment.owner)
    )
    holding = session.execute(
        select(MqlRecord.owner, func.count())
        .where(
            MqlRecord.owner.is_not(None),
            MqlRecord.accepted_at.is_(None),
            MqlRecord.returned_at.is_(None),
        )
        .group_by(MqlRecord.owner)
    )
    return Desk(
        away=frozenset(away),
        today={str(owner): int(n) for owner, n in today},
        open={str(owner): int(n) for owner, n in holding},
        turns=turns,
    )


def _lock_turns(session: Session, routing: Mapping[str, Any]) -> dict[tuple[str, str], int]:
    """Every team member's round robin row, created at 0 if new, locked until commit."""
    rows = [
        {"team": team, "member": member.email, "turns": 0}
        for team, crew in teams(routing).items()
        for member in crew
    ]
    if not rows:
        return {}
    dialect = session.get_bind().dialect.name
    make = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(make(RoundRobinTurn).on_conflict_do_nothing(), rows)
    locked = session.execute(
        select(RoundRobinTurn.team, RoundRobinTurn.member, RoundRobinTurn.turns)
        .where(RoundRobinTurn.team.in_({row["team"] for row in rows}))
        .order_by(RoundRobinTurn.team, RoundRobinTurn.member)
        .with_for_update()
    )
    return {(team, member): int(turns) for team, member, turns in locked}


def sla_times(
    routing: Mapping[str, Any] | None, start: datetime
) -> tuple[datetime | None, datetime | None]:
    """(deadline, reminder) of an MQL handed over at `start`, by the routing's SLA."""
    sla = (routing or {}).get("sla") or {}
    if not sla.get("seconds"):
        return None, None
    due = utc(start) + timedelta(seconds=int(sla["seconds"]))
    remind = sla.get("remind_seconds")
    return due, (due - timedelta(seconds=int(remind)) if remind else None)
