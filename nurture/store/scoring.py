"""Scores on the lead row, recomputed from its profile and events; the MQL rule after events.

The stored ``fit``, ``interest`` and ``grade`` are a snapshot at the `now`
of the last rescore. Interest decays by whole periods, so the snapshot holds
until the next period boundary of one of the lead's scoring events: that
moment is stored as ``rescore_at``, and the scheduler's sweep rescores the
lead then (`rescore_decayed`), so segments, exports and campaign conditions
see decay without waiting for a new event.

A lead that sales returned counts only the events after its latest return:
its interest starts again from zero, so it becomes MQL again on new
behaviour, not on what sales already saw (fit is kept).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from dsl.draw import describe_condition
from nurture.engine.scoring import compute_scores, mql_due, next_decay
from nurture.engine.state import Event, LeadView, Scores, utc
from nurture.handoff.assign import hand_over
from nurture.models import EVENT_TYPES, Lead, MqlRecord
from nurture.models import Event as EventRow
from nurture.store.definitions import active_routing, active_scoring, sla_of
from nurture.store.lifecycle import mark_mql
from nurture.store.suppressions import ADDRESS_OF, close_lead_channel
from nurture.store.views import (
    engine_events,
    get_lead,
    last_returned_at,
    lead_view,
    manual_score,
    with_manual_score,
)

ACTIVITY: Final = frozenset(
    {"opened", "clicked", "replied", "form_submitted", "page_viewed", "custom"}
)
"""Event types that are the lead doing something: they move ``last_activity_at``."""

SUPPRESSING: Final = {
    "unsubscribed": "unsubscribed_at",
    "bounced_hard": "hard_bounced_at",
    "complained": "complained_at",
}
"""Event types that stop every send, and the lead column each one sets."""

CHANNEL_CLOSING: Final = frozenset({"unsubscribed", "bounced_hard"})
"""Event types that close only their channel when their data names one (``email``, ``sms``,
``wechat``): a WeChat 43004 stops WeChat, not email. A complaint, and an unsubscribe or a
hard bounce without a channel (or with ``all``), still stop every send."""


@dataclass(frozen=True, slots=True)
class Rules:
    """What `record_event` applies: the scoring model (with its MQL rule) and the SLA."""

    scoring: Mapping[str, Any] | None = None
    """Compiled scoring JSON; None scores everything zero and never makes an MQL."""
    routing: Mapping[str, Any] | None = None
    """Compiled routing JSON: who gets an MQL, and the SLA; None assigns nobody."""

    @property
    def sla(self) -> timedelta | None:
        """How long sales has to accept an MQL; None starts no clock."""
        return sla_of(self.routing)

    @classmethod
    def active(cls, session: Session) -> Rules:
        """The deployed scoring model and the deployed routing."""
        return cls(active_scoring(session), active_routing(session))


@dataclass(frozen=True, slots=True)
class Recorded:
    """What `record_event` did: the event row, the new scores, the MQL if one was made."""

    event: EventRow
    scores: Scores
    mql: MqlRecord | None


def rescore(
    session: Session, lead_id: int, scoring_json: Mapping[str, Any] | None, now: datetime
) -> Scores:
    """Recompute the lead's fit, interest and grade at `now` and store them on the lead."""
    scores, _view, _events = _rescore(session, get_lead(session, lead_id), scoring_json, now)
    return scores


def _rescore(
    session: Session, lead: Lead, model: Mapping[str, Any] | None, now: datetime
) -> tuple[Scores, LeadView, list[Event]]:
    now = utc(now)
    events = engine_events(session, lead.id, until=now, after=last_returned_at(session, lead.id))
    view = lead_view(session, lead)
    scores = compute_scores(dict(model) if model else None, view, events, now)
    lead.fit = round(scores.fit)
    lead.interest = scores.interest
    lead.grade = scores.grade
    lead.rescore_at = next_decay(dict(model) if model else None, events, now)
    return scores, replace(view, scores=scores), events


def record_event(
    session: Session,
    lead_id: int,
    event_type: str,
    name: str | None,
    at: datetime,
    *,
    now: datetime | None = None,
    link: str | None = None,
    delivery_id: int | None = None,
    data: Mapping[str, Any] | None = None,
    rules: Rules | None = None,
) -> Recorded:
    """Store an event, then rescore the lead at `now` (default `at`) and apply the MQL rule.

    `name` is a custom event's name (required for ``custom``). `rules`
    default to what is deployed. Raises `ValueError` for an unknown type and
    `UnknownLead` for an unknown lead.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}; types: {', '.join(EVENT_TYPES)}")
    if event_type == "custom" and not name:
        raise ValueError("a custom event needs a name")
    at, now = utc(at), utc(now or at)
    lead = get_lead(session, lead_id)
    row = EventRow(
        lead_id=lead.id,
        type=event_type,
        name=name,
        link=link,
        delivery_id=delivery_id,
        occurred_at=at,
        data=dict(data or {}),
    )
    session.add(row)
    _touch(session, lead, event_type, at, (data or {}).get("channel"))
    session.flush()
    rules = Rules.active(session) if rules is None else rules
    scores, view, events = _rescore(session, lead, rules.scoring, now)
    mql = _apply_mql_rule(session, lead, view, events, _event_words(row), row.id, rules, now)
    return Recorded(row, scores, mql)


def _touch(session: Session, lead: Lead, event_type: str, at: datetime, channel: Any) -> None:
    if event_type in ACTIVITY and (lead.last_activity_at is None or lead.last_activity_at < at):
        lead.last_activity_at = at
    if event_type in CHANNEL_CLOSING and channel in ADDRESS_OF:
        close_lead_channel(session, lead, channel, f"{event_type} at {at.isoformat()}", at)
        return
    column = SUPPRESSING.get(event_type)
    if column is not None and getattr(lead, column) is None:
        setattr(lead, column, at)
        lead.suppressed_reason = lead.suppressed_reason or f"{event_type} at {at.isoformat()}"


def _apply_mql_rule(
    session: Session,
    lead: Lead,
    view: LeadView,
    events: list[Event],
    what: str,
    event_id: int | None,
    rules: Rules,
    now: datetime,
) -> MqlRecord | None:
    """Make the lead an MQL if the rule holds now; `what` happened just before (for the cause)."""
    model = rules.scoring or {}
    rule = model.get("mql")
    if not mql_due(view, view.scores, rule, events=events, now=now):
        return None
    name = _q(str(model.get("name") or ""))
    rule_text = f"scoring {name}: mql when {describe_condition(rule)}"
    cause = f"MQL rule of scoring {name} held after {what}"
    return qualify(session, lead, view, events, cause, rule_text, event_id, now, rules)


def qualify(
    session: Session,
    lead: Lead,
    view: LeadView,
    events: Sequence[Event],
    cause: str,
    rule: str,
    event_id: int | None,
    now: datetime,
    rules: Rules,
) -> MqlRecord | None:
    """Make the lead an MQL (once) and, in the same transaction, hand it to its owner."""
    record = mark_mql(session, lead, cause, rule, event_id, now, rules.sla)
    if record is not None and rules.routing is not None:
        hand_over(session, lead, record, view, events, rules.routing, now)
    return record


def mql_step(
    session: Session, lead_id: int, cause: str, rule: str, now: datetime, rules: Rules
) -> MqlRecord | None:
    """A campaign's `mql` step: the lead is an MQL now, whatever the scoring rule says."""
    lead = session.get(Lead, lead_id)
    if lead is None:  # merged away meanwhile
        return None
    events = engine_events(session, lead.id, until=now, after=last_returned_at(session, lead.id))
    return qualify(session, lead, lead_view(session, lead), events, cause, rule, None, now, rules)


def add_score(session: Session, lead_id: int, delta: float) -> None:
    """Add a campaign's `score +N/-N` to the lead's manual part of `score` (a lead merged
    away meanwhile is left alone, as its other steps are)."""
    lead = session.get(Lead, lead_id)
    if lead is None:
        return
    lead.attributes = with_manual_score(lead.attributes, manual_score(lead.attributes) + delta)


def recheck_mql(
    session: Session, lead_id: int, what: str, now: datetime, rules: Rules | None = None
) -> MqlRecord | None:
    """Rescore at `now` and apply the MQL rule after something other than an event changed
    the lead (a campaign's `tag` or `score` step): `what` names it in the cause."""
    session.flush()
    lead = session.get(Lead, lead_id)
    if lead is None:  # merged away meanwhile
        return None
    rules = Rules.active(session) if rules is None else rules
    _scores, view, events = _rescore(session, lead, rules.scoring, now)
    return _apply_mql_rule(session, lead, view, events, what, None, rules, now)


def rescore_decayed(session: Session, now: datetime, limit: int) -> list[int]:
    """Rescore up to `limit` leads whose interest has decayed since their last rescore
    (``rescore_at`` passed), and apply the MQL rule; the ids of the leads rescored.

    Earliest first. On PostgreSQL rows another scheduler holds are skipped,
    not waited for; each lead rescored gets its next ``rescore_at``, so a
    lead is done once per decay boundary.
    """
    now = utc(now)
    query = (
        select(Lead.id)
        .where(Lead.rescore_at <= now)
        .order_by(Lead.rescore_at, Lead.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(session.scalars(query))
    if ids:
        rules = Rules.active(session)
        for lead_id in ids:
            recheck_mql(session, lead_id, "interest decay", now, rules)
    return ids


def _event_words(row: EventRow) -> str:
    what = f"event {_q(row.name)}" if row.type == "custom" and row.name else f"{row.type} event"
    return f"{what} #{row.id}"


def _q(text: str | None) -> str:
    return '"' + (text or "").replace('"', '\\"') + '"'
