"""A lead's whole story, the 360 view: profile, account, tags, scores with the rules behind
their points, MQLs, notes from sales, and a timeline.

The timeline is every touch, event, stage change, assignment and note in
time order, each in words (`nurture.handoff.timeline`). `nurture leads show`
prints it whole; the notification to an owner carries it; the console's lead
page shows it a page at a time, newest first, reading only that page's rows.
One query per table, whatever the length of the story; the points' rules are
explained by `nurture.handoff.reasons`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.handoff.reasons import Explanations, reasons
from nurture.handoff.timeline import Cursor, timeline
from nurture.models import Lead, LeadNote, LifecycleTransition, MqlRecord, Tag
from nurture.store.views import view_of

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


def story(
    session: Session,
    lead: Lead,
    now: datetime,
    *,
    limit: int | None = None,
    before: Cursor | None = None,
    kept: Explanations | None = None,
) -> dict[str, Any]:
    """The lead's 360 view at `now` as plain data (JSON-ready: times as ISO text).

    The timeline is whole, oldest first, unless `limit` asks for a page: then
    it is the newest `limit` entries before `before`, and ``older`` (only
    then) the place of the page before them (None at the start of the story).
    `kept` keeps the points' explanation between views (`nurture.handoff.reasons`).
    """
    tags = sorted(session.scalars(select(Tag.tag).where(Tag.lead_id == lead.id)))
    mqls = _rows(session, MqlRecord, lead.id, MqlRecord.at)
    notes = _rows(session, LeadNote, lead.id, LeadNote.at)
    steps = _rows(session, LifecycleTransition, lead.id, LifecycleTransition.at)
    returned = max((step.at for step in steps if step.to_stage == "returned"), default=None)
    page = timeline(session, lead.id, steps, mqls, notes, limit=limit, before=before)
    because = reasons(session, lead.id, view_of(lead, tags), returned, now, kept)
    told: dict[str, Any] = {
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
                for r in because
            ],
        },
        "account": _account(lead),
        "mqls": [_mql(row) for row in mqls],
        "notes": [
            {"at": _iso(note.at), "author": note.author, "text": note.text} for note in notes
        ],
        "timeline": [
            {"at": _iso(e.at), "kind": e.kind, "what": e.what} for e in reversed(page.entries)
        ],
    }
    if limit is not None:
        told["older"] = None if page.older is None else page.older.text()
    return told


def _account(lead: Lead) -> dict[str, Any] | None:
    """The lead's account as its fields say (`nurture accounts import`), or None."""
    fields = lead.attributes or {}
    if lead.account_id is None:
        return None
    return {name: fields.get(f"account_{name}") for name in ("name", "status", "owner")}


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


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
