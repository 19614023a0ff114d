"""A lead's whole story, the 360 view: profile, account, tags, scores with the rules behind
their points, MQLs, notes from sales, and a timeline.

The timeline is every touch, event, stage change, assignment and note in
time order, each in words. `nurture leads show` prints it; the notification to an
owner carries it; the console's lead page shows it. One query per table,
each read once (the events serve the timeline and the scoring rules), whatever
the length of the story.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.engine.scoring import Reason, explain
from nurture.engine.state import utc
from nurture.models import (
    Assignment,
    Campaign,
    CampaignVersion,
    Delivery,
    Enrollment,
    Event,
    Lead,
    LeadNote,
    LifecycleTransition,
    MqlRecord,
    Tag,
)
from nurture.store.definitions import active_scoring
from nurture.store.views import EVENT_COLUMNS, engine_event, view_of

PROFILE: Final = (
    "email",
    "first_name",
    "last_name",
    "company",
    "title",
    "phone",
    "messaging_id",
    "source",
    "time_zone",
    "stage",
    "owner",
)


def story(session: Session, lead: Lead, now: datetime) -> dict[str, Any]:
    """The lead's 360 view at `now` as plain data (JSON-ready: times as ISO text)."""
    events = _events(session, lead.id)
    tags = sorted(session.scalars(select(Tag.tag).where(Tag.lead_id == lead.id)))
    mqls = _rows(session, MqlRecord, lead.id, MqlRecord.at)
    notes = _rows(session, LeadNote, lead.id, LeadNote.at)
    steps = _rows(session, LifecycleTransition, lead.id, LifecycleTransition.at)
    returned = max((step.at for step in steps if step.to_stage == "returned"), default=None)
    timeline = sorted(_timeline(session, lead.id, events, steps, mqls, notes), key=lambda e: e[0])
    return {
        "lead": {"id": lead.id, **{name: getattr(lead, name) for name in PROFILE}},
        "fields": dict(sorted((lead.attributes or {}).items())),
        "created_at": _iso(lead.created_at),
        "tags": tags,
        "scores": {
            "fit": lead.fit,
            "interest": round(lead.interest, 2),
            "grade": lead.grade,
            "because": [
                {"part": r.part, "rule": r.rule, "points": round(r.points, 2), "times": r.times}
                for r in _reasons(session, lead, tags, events, returned, now)
            ],
        },
        "account": _account(lead),
        "mqls": [_mql(row) for row in mqls],
        "notes": [
            {"at": _iso(note.at), "author": note.author, "text": note.text} for note in notes
        ],
        "timeline": [{"at": _iso(at), "kind": kind, "what": what} for at, kind, what in timeline],
    }


def _account(lead: Lead) -> dict[str, Any] | None:
    """The lead's account as its fields say (`nurture accounts import`), or None."""
    fields = lead.attributes or {}
    if lead.account_id is None:
        return None
    return {name: fields.get(f"account_{name}") for name in ("name", "status", "owner")}


def _events(session: Session, lead_id: int) -> list[Any]:
    """Every event of the lead, oldest first, as rows of `EVENT_COLUMNS`: read once for both
    the timeline and the scoring rules (a long story has thousands)."""
    query = (
        select(*EVENT_COLUMNS)
        .outerjoin(Delivery, Delivery.id == Event.delivery_id)
        .where(Event.lead_id == lead_id)
        .order_by(Event.occurred_at, Event.id)
    )
    return list(session.execute(query))


def _reasons(
    session: Session,
    lead: Lead,
    tags: list[str],
    rows: list[Any],
    after: datetime | None,
    now: datetime,
) -> list[Reason]:
    """The scoring rules behind the lead's points, as its scores are computed: over the
    events up to `now` and after its latest return, `after` (`nurture.store.scoring`)."""
    model = active_scoring(session)
    if not model:
        return []
    now = utc(now)
    events = [
        engine_event(row)
        for row in rows
        if row.occurred_at <= now and (after is None or row.occurred_at > after)
    ]
    return explain(model, view_of(lead, tags), events, now)


def _rows(session: Session, model: Any, lead_id: int, at: Any) -> list[Any]:
    return list(session.scalars(select(model).where(model.lead_id == lead_id).order_by(at)))


def _mql(row: MqlRecord) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": _iso(row.at),
        "rule": row.rule,
        "scores": {"fit": row.fit, "interest": round(row.interest, 2), "grade": row.grade},
        "owner": row.owner,
        "team": row.team,
        "sla_due_at": _iso(row.sla_due_at),
        "accepted_at": _iso(row.accepted_at),
        "returned_at": _iso(row.returned_at),
        "return_reason": row.return_reason,
        "escalated_at": _iso(row.escalated_at),
    }


def _timeline(
    session: Session,
    lead_id: int,
    events: list[Any],
    steps: list[LifecycleTransition],
    mqls: list[MqlRecord],
    notes: list[LeadNote],
) -> list[tuple[datetime, str, str]]:
    entries: list[tuple[datetime, str, str]] = []
    touches = session.execute(
        select(Delivery, Campaign.name)
        .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
        .join(CampaignVersion, CampaignVersion.id == Enrollment.campaign_version_id)
        .join(Campaign, Campaign.id == CampaignVersion.campaign_id)
        .where(Delivery.lead_id == lead_id)
    )
    for touch, campaign in touches:
        what = f'{touch.channel} "{touch.template}" from campaign "{campaign}": {touch.status}'
        entries.append((touch.sent_at or touch.created_at, "touch", what))
    for event in events:
        entries.append((event.occurred_at, "event", _event_words(event)))
    for step in steps:
        what = f"{step.from_stage or 'new'} → {step.to_stage}: {step.cause}"
        if step.amount is not None:
            what += f" (amount {step.amount})"
        entries.append((step.at, "stage", what))
    for mql in mqls:
        if mql.accepted_at is not None:
            entries.append((mql.accepted_at, "accepted", f"accepted by {mql.owner}"))
    for note in notes:
        entries.append((note.at, "note", f"{note.author}: {note.text}"))
    for given in _rows(session, Assignment, lead_id, Assignment.at):
        who = given.owner or "nobody"
        entries.append((given.at, "assignment", f"to {who} ({given.cause}): {given.reason}"))
    return entries


def _event_words(event: Any) -> str:
    """An event (its type, name and link) in words."""
    what = f'"{event.name}"' if event.type == "custom" and event.name else event.type
    return what + (f" {event.link}" if event.link else "")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
