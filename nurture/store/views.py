"""Rows as the pure core sees them: a `Lead` becomes a `LeadView`, events become `Event`s."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nurture.engine.state import DeliveryKey, Event, LeadView, Scores
from nurture.models import Delivery, Lead, LifecycleTransition, Tag
from nurture.models import Event as EventRow

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

SCORE_DELTA: Final = "score_delta"
"""The lead attribute holding the sum of ``score +N`` steps (`LeadView.score_delta`)."""


def manual_score(attributes: Mapping[str, Any] | None) -> float:
    """The sum of ``score +N`` steps kept in a lead's attributes (0: none, or not a number)."""
    value = (attributes or {}).get(SCORE_DELTA, 0)
    return value if isinstance(value, int | float) else 0


def with_manual_score(attributes: Mapping[str, Any] | None, total: float) -> dict[str, Any]:
    """A copy of the attributes holding `total` as that sum (an int when it is whole)."""
    return {**(attributes or {}), SCORE_DELTA: int(total) if float(total).is_integer() else total}


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
    tags = session.scalars(select(Tag.tag).where(Tag.lead_id == lead.id))
    return view_of(lead, tags, scores)


def view_of(lead: Any, tags: Iterable[str], scores: Scores | None = None) -> LeadView:
    """The core's view of a lead row (an ORM `Lead` or a selected row) and its tags.

    `score +N` steps are kept in the ``score_delta`` attribute; the view
    carries them as `LeadView.score_delta`, not as a profile field. The stored
    scores include the stored grade (as the fit grade, as segments read it).
    """
    fields: dict[str, Any] = dict(lead.attributes or {})
    delta = fields.pop(SCORE_DELTA, 0)
    for name in PROFILE:
        value = getattr(lead, name)
        if value is not None:
            fields[name] = value
    # The stored grade is the lead's grade (`Scores.grade`: of fit, else of interest), what
    # `grade` and `fit grade` read in a segment's SQL too; without it a campaign's `grade`
    # condition never held on a stored lead, while the segment sweep saw the grade.
    stored = Scores(
        fit=float(lead.fit or 0),
        interest=float(lead.interest or 0.0),
        fit_grade=lead.grade or None,
    )
    return LeadView(
        id=lead.id,
        fields=fields,
        tags=frozenset(tags),
        stage=lead.stage or "lead",
        suppressed=suppression(lead),
        score_delta=float(delta) if isinstance(delta, int | float) else 0.0,
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


EVENT_COLUMNS: Final = (
    EventRow.type,
    EventRow.name,
    EventRow.occurred_at,
    EventRow.link,
    Delivery.enrollment_id,
    Delivery.step_id,
    Delivery.iteration,
)
"""What `engine_event` reads: an event row outer-joined with its delivery."""


def engine_event(r: Any) -> Event:
    """An event row (with its delivery's key columns, if any) as the core sees it: the
    type, or a custom event's own name; the delivery it belongs to."""
    name = r.name if r.type == "custom" and r.name else r.type
    key = None
    if getattr(r, "enrollment_id", None) is not None:
        key = DeliveryKey(r.enrollment_id, r.step_id, r.iteration)
    return Event(name=name, at=r.occurred_at, delivery=key, link=r.link)


def engine_events(
    session: Session, lead_id: int, *, until: datetime, after: datetime | None = None
) -> list[Event]:
    """The lead's events up to `until` (and strictly after `after`), oldest first."""
    query = (
        select(*EVENT_COLUMNS)
        .outerjoin(Delivery, Delivery.id == EventRow.delivery_id)
        .where(EventRow.lead_id == lead_id, EventRow.occurred_at <= until)
    )
    if after is not None:
        query = query.where(EventRow.occurred_at > after)
    rows = session.execute(query.order_by(EventRow.occurred_at, EventRow.id))
    return [engine_event(row) for row in rows]


def last_returned_at(session: Session, lead_id: int) -> datetime | None:
    """When sales last returned the lead to nurture, or None if it never did."""
    return session.scalar(
        select(func.max(LifecycleTransition.at)).where(
            LifecycleTransition.lead_id == lead_id, LifecycleTransition.to_stage == "returned"
        )
    )
