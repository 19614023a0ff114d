"""The sales inbox's data: open MQLs with their SLA clocks, and accepted leads by stage.

A sales user sees the leads they own; the other roles see everyone's (with
the owner shown), at most `LIMIT` of each list. Two queries whatever the
number of rows: one for the open MQLs, one for the accepted leads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from nurture.console.permissions import Who
from nurture.engine.state import utc
from nurture.models import Lead, MqlRecord

LIMIT: Final = 200
"""Rows of each list on one page."""
WORKING: Final = ("mql", "sql", "opportunity", "customer")
"""The stages of accepted leads, in the order the inbox groups them."""


@dataclass(frozen=True, slots=True)
class Row:
    """One lead in the inbox, with its latest open MQL."""

    lead: Lead
    mql: MqlRecord
    left: timedelta | None
    """Time left to accept (negative: overdue); None: no SLA."""

    @property
    def name(self) -> str:
        return lead_name(self.lead)


@dataclass(frozen=True, slots=True)
class Inbox:
    waiting: list[Row]
    """Open MQLs not accepted yet, the nearest deadline first."""
    by_stage: dict[str, list[Row]]
    """Accepted leads, by stage (`WORKING` order), the newest MQL first."""
    everyone: bool
    """True when the lists are everyone's, not the user's own."""


def inbox(session: Session, user: Who, everyone: bool, now: datetime) -> Inbox:
    """The user's inbox at `now` (`everyone`: all owners')."""
    now = utc(now)
    waiting = [
        Row(lead, mql, None if mql.sla_due_at is None else mql.sla_due_at - now)
        for mql, lead in session.execute(
            _open(user, everyone)
            .where(MqlRecord.accepted_at.is_(None))
            .order_by(MqlRecord.sla_due_at.is_(None), MqlRecord.sla_due_at, MqlRecord.id)
            .limit(LIMIT)
        )
    ]
    by_stage: dict[str, list[Row]] = {stage: [] for stage in WORKING}
    accepted = (
        _open(user, everyone)
        .where(MqlRecord.accepted_at.is_not(None), Lead.stage.in_(WORKING))
        .order_by(MqlRecord.at.desc(), MqlRecord.id.desc())
        .limit(LIMIT)
    )
    for mql, lead in session.execute(accepted):
        by_stage[lead.stage].append(Row(lead, mql, None))
    return Inbox(waiting, by_stage, everyone)


def _open(user: Who, everyone: bool) -> Select[MqlRecord, Lead]:
    """MQLs not returned, held by the lead's current owner (the user, unless `everyone`)."""
    query = (
        select(MqlRecord, Lead)
        .join(Lead, Lead.id == MqlRecord.lead_id)
        .where(MqlRecord.returned_at.is_(None), MqlRecord.owner == Lead.owner)
    )
    return query if everyone else query.where(Lead.owner == user.email)


def lead_name(lead: Lead) -> str:
    """How a lead is called on a page: their name, else their address, else their id."""
    name = " ".join(p for p in (lead.first_name, lead.last_name) if p)
    return name or lead.email or lead.phone or f"lead {lead.id}"


def time_left(left: timedelta | None) -> str:
    """``5 h 12 min left``, ``overdue by 2 h 3 min``, or ``no deadline``."""
    if left is None:
        return "no deadline"
    minutes = int(abs(left.total_seconds()) // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    parts += [f"{hours} h"] if hours or days else []
    parts += [f"{mins} min"]
    words = " ".join(parts)
    return f"overdue by {words}" if left.total_seconds() < 0 else f"{words} left"
