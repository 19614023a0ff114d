"""Rows as the pure core sees them: a `Lead` becomes a `LeadView`, events become `Event`s."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nurture.engine.state import Event, LeadView, Scores
from nurture.models import Event as EventRow
from nurture.models import Lead, LifecycleTransition, Tag

PROFILE: Final = (
    "email",
    "phone",
    "messaging_id",
    "first_name",
    "last_name",
    "company",
    "title",
    "time_zone",
    "source",
    "owner",
    "created_at",
    "last_activity_at",
)
"""Lead columns that conditions read as `lead.<name>`; `attributes` hold the rest."""


class UnknownLead(LookupError):
    """Raised when a lead id names no lead."""


def get_lead(session: Session, lead_id: int) -> Lead:
    """The lead with `lead_id`; `UnknownLead` when there is none."""
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise UnknownLead(f"no lead with id {lead_id}")
    return lead


def lead_view(session: Session, lead: Lead, scores: Scores | None = None) -> LeadView:
    """The lead's profile, tags, stage and suppression; `scores` default to the stored ones."""
    fields: dict[str, Any] = dict(lead.attributes or {})
    for name in PROFILE:
        value = getattr(lead, name)
        if value is not None:
            fields[name] = value
    tags = session.scalars(select(Tag.tag).where(Tag.lead_id == lead.id))
    stored = Scores(fit=float(lead.fit or 0), interest=float(lead.interest or 0.0))
    return LeadView(
        id=lead.id,
        fields=fields,
        tags=frozenset(tags),
        stage=lead.stage or "lead",
        suppressed=suppression(lead),
        scores=stored if scores is None else scores,
    )


def suppression(lead: Lead) -> str | None:
    """Why the lead receives nothing (`unsubscribed`, `bounced`, `complained`), or None."""
    if lead.unsubscribed_at is not None:
        return "unsubscribed"
    if lead.hard_bounced_at is not None:
        return "bounced"
    if lead.complained_at is not None:
        return "complained"
    return None


def engine_event(row: EventRow) -> Event:
    """A stored event as the core names it: the type, or a custom event's own name."""
    name = row.name if row.type == "custom" and row.name else row.type
    return Event(name=name, at=row.occurred_at, link=row.link)


def engine_events(
    session: Session, lead_id: int, *, until: datetime, after: datetime | None = None
) -> list[Event]:
    """The lead's events up to `until` (and strictly after `after`), oldest first."""
    query = select(EventRow).where(EventRow.lead_id == lead_id, EventRow.occurred_at <= until)
    if after is not None:
        query = query.where(EventRow.occurred_at > after)
    rows = session.scalars(query.order_by(EventRow.occurred_at, EventRow.id))
    return [engine_event(row) for row in rows]


def last_returned_at(session: Session, lead_id: int) -> datetime | None:
    """When sales last returned the lead to nurture, or None if it never did."""
    return session.scalar(
        select(func.max(LifecycleTransition.at)).where(
            LifecycleTransition.lead_id == lead_id, LifecycleTransition.to_stage == "returned"
        )
    )
